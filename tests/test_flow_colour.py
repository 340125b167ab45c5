"""Flow direction colours follow Algorithm 1 literally."""
import cv2
import numpy as np
import pytest

from raicl_mm.visualization.flow_colour import flow_to_colour, normalise_flow


def uniform(u, v, shape=(4, 5)):
    flow = np.zeros(shape + (2, ), np.float32)
    flow[..., 0], flow[..., 1] = u, v
    return flow


# theta = CartToPolar(x=flow[...,1], y=flow[...,0]) = atan2(u, v);
# h = theta * 180 / (2 pi). BGR by hand from HSV (S = V = 255):
#   down  (v>0): theta 0      -> h 0   (0 deg)   red     BGR (0, 0, 255)
#   right (u>0): theta pi/2   -> h 45  (90 deg)  R=.5,G=1 BGR (0, 255, 128)
#   up    (v<0): theta pi     -> h 90  (180 deg) cyan    BGR (255, 255, 0)
#   left  (u<0): theta 3pi/2  -> h 135 (270 deg) R=.5,B=1 BGR (255, 0, 128)
CASES = [
    ('down', 0.0, 2.0, 0, (0, 0, 255)),
    ('right', 3.0, 0.0, 45, (0, 255, 128)),
    ('up', 0.0, -1.5, 90, (255, 255, 0)),
    ('left', -0.7, 0.0, 135, (255, 0, 128)),
]


@pytest.mark.parametrize('name,u,v,hue,bgr', CASES, ids=[c[0] for c in CASES])
def test_direction_hue(name, u, v, hue, bgr):
    out = flow_to_colour(uniform(u, v))
    assert out.shape == (4, 5, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - np.array(bgr)).max() <= 2, out[0, 0]
    back = cv2.cvtColor(out, cv2.COLOR_BGR2HSV)
    assert abs(int(back[0, 0, 0]) - hue) <= 1
    assert (back[..., 1] == 255).all() and (back[..., 2] == 255).all()


def test_diagonal_and_magnitude_variant():
    flow = uniform(1.0, 1.0)  # atan2(1, 1) = pi/4 -> h = 22.5 -> 22 or 23
    hsv = cv2.cvtColor(flow_to_colour(flow), cv2.COLOR_BGR2HSV)
    assert abs(int(hsv[0, 0, 0]) - 22.5) <= 1

    flow = uniform(0.0, 0.0)
    flow[0, 0] = (2.0, 0.0)
    flow[0, 1] = (1.0, 0.0)
    out = flow_to_colour(flow, magnitude=True)
    hsv = cv2.cvtColor(out, cv2.COLOR_BGR2HSV)
    assert hsv[0, 0, 2] == 255 and abs(int(hsv[0, 1, 2]) - 128) <= 1
    assert (out[1:] == 0).all()  # zero motion -> black
    assert (flow_to_colour(flow)[..., :].max(axis=-1) == 255).all()


def test_normalise_flow():
    flow = uniform(0.0, 0.0)
    flow[0, 0] = (4.0, -0.1)
    flow[1, 1] = (-2.0, 0.05)
    out = normalise_flow(flow)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0], (1.0, -1.0))
    np.testing.assert_allclose(out[1, 1], (-0.5, 0.5))
    # Direction of (4, -0.1) is nearly rightward before, diagonal after.
    before = cv2.cvtColor(flow_to_colour(flow), cv2.COLOR_BGR2HSV)[0, 0, 0]
    after = cv2.cvtColor(flow_to_colour(flow, normalise=True),
                         cv2.COLOR_BGR2HSV)[0, 0, 0]
    assert abs(int(before) - 46) <= 1 and abs(int(after) - 68) <= 1
    assert (normalise_flow(np.zeros((2, 2, 2))) == 0).all()


def test_bad_shape():
    with pytest.raises(ValueError, match=r'\(H, W, 2\)'):
        flow_to_colour(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match='NaN'):
        flow_to_colour(uniform(np.nan, 0.0))
