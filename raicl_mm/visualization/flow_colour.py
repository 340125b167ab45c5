"""Optical-flow direction maps: Algorithm 1 of the MEGC OF-direction paper.

Algorithm 1 ("OF Direction Generation"), followed literally::

    theta <- CartToPolar(flow[..., 1], flow[..., 0])   # radians, [0, 2*pi)
    h     <- theta * 180 / (2 * pi)                     # 8-bit hue [0, 180)
    s, v  <- 255, 255
    bgr   <- HSVtoBGR([h, s, v])

Note the argument order: ``cv2.cartToPolar(x, y)`` returns ``atan2(y, x)``, and
the algorithm passes the VERTICAL component as ``x`` and the HORIZONTAL one as
``y``, so ``theta = atan2(u, v)`` with ``u = flow[..., 0]``, ``v = flow[...,
1]`` (image coordinates, ``v`` grows downwards). Hence (OpenCV hue units):

* downward (v > 0):  theta = 0      -> h = 0   (red)
* rightward (u > 0): theta = pi/2   -> h = 45  (yellow-green)
* upward (v < 0):    theta = pi     -> h = 90  (cyan)
* leftward (u < 0):  theta = 3pi/2  -> h = 135 (violet)

The hue is rounded to the nearest integer (modulo 180) before the uint8
conversion, so that exact axis directions do not fall one step short by float
truncation.

The paper notes that "the OF components are normalized before calculating the
OF direction map" (its Fig. 3) without giving the formula;
:func:`normalise_flow` implements the reading we use: each component divided
by its own maximum absolute value over the field (sign kept, each component in
``[-1, 1]``), which lets a weak vertical motion show up next to a strong
horizontal one.
"""
from __future__ import annotations

import cv2
import numpy as np


def _check_flow(flow: np.ndarray) -> np.ndarray:
    arr = np.asarray(flow)
    if arr.ndim != 3 or arr.shape[-1] != 2:
        raise ValueError(f'flow must have shape (H, W, 2), got {arr.shape}')
    if not np.isfinite(arr).all():
        raise ValueError('flow holds NaN or infinite values')
    return arr.astype(np.float32)


def normalise_flow(flow: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Normalise each flow component by its own maximum absolute value.

    Args:
        flow: ``(H, W, 2)`` field, ``[..., 0]`` horizontal, ``[..., 1]``
            vertical.
        eps: A component whose max ``|.|`` is below ``eps`` is left as zeros.

    Returns:
        ``(H, W, 2)`` float32 field, each component in ``[-1, 1]``.
    """
    arr = _check_flow(flow)
    out = np.zeros_like(arr)
    for k in range(2):
        peak = float(np.abs(arr[..., k]).max(initial=0.0))
        if peak > eps:
            out[..., k] = arr[..., k] / peak
    return out


def flow_to_colour(flow: np.ndarray, magnitude: bool = False,
                   normalise: bool = False) -> np.ndarray:
    """Colour an optical-flow field by direction (Algorithm 1).

    Args:
        flow: ``(H, W, 2)`` field, ``[..., 0]`` horizontal (u), ``[..., 1]``
            vertical (v, positive downwards).
        magnitude: If False (Algorithm 1), value = 255 everywhere. If True,
            the common variant: value = magnitude min-max normalised to
            ``[0, 255]`` (hue unchanged).
        normalise: Apply :func:`normalise_flow` first, as the paper's note
            says.

    Returns:
        ``(H, W, 3)`` uint8 BGR image.
    """
    arr = normalise_flow(flow) if normalise else _check_flow(flow)
    # Algorithm 1, step 2: theta = CartToPolar(flow[..., 1], flow[..., 0]).
    mag, theta = cv2.cartToPolar(np.ascontiguousarray(arr[..., 1]),
                                 np.ascontiguousarray(arr[..., 0]),
                                 angleInDegrees=False)
    # Step 3: h = theta * 180 / (2 pi), OpenCV's 8-bit hue range [0, 180).
    hue = np.mod(np.rint(theta * 180.0 / (2.0 * np.pi)), 180.0)
    hsv = np.empty(arr.shape[:2] + (3, ), dtype=np.uint8)
    hsv[..., 0] = hue.astype(np.uint8)
    hsv[..., 1] = 255  # step 4
    if magnitude:
        hsv[..., 2] = cv2.normalize(mag, None, 0, 255,
                                    cv2.NORM_MINMAX).astype(np.uint8)
    else:
        hsv[..., 2] = 255
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)  # step 6


def colour_wheel(size: int = 96, magnitude: bool = True) -> np.ndarray:
    """The key of :func:`flow_to_colour`: each pixel coloured as a flow
    pointing from the centre to it (hue = direction by Algorithm 1; with
    ``magnitude`` the brightness grows with the distance, as in
    ``flow_to_colour(..., magnitude=True)``). Outside the disc is white.

    Returns:
        ``(size, size, 3)`` uint8 BGR image.
    """
    r = (size - 1) / 2.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    u, v = (xx - r) / r, (yy - r) / r
    wheel = flow_to_colour(np.dstack([u, v]), magnitude=False)
    rad = np.sqrt(u ** 2 + v ** 2)
    if magnitude:
        scale = np.clip(rad, 0, 1)[..., None]
        wheel = np.rint(wheel.astype(np.float32) * scale).astype(np.uint8)
    wheel[rad > 1.0] = 255
    return wheel


def _put(img, text, org, scale=0.4, colour=(0, 0, 0)):
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1,
                cv2.LINE_AA)


def flow_picture(flow: np.ndarray, size: int = 256, title: str = '',
                 unit: str = 'px') -> np.ndarray:
    """A readable flow picture: the colour map at ``size`` px, its direction
    wheel, and a brightness bar in ``unit`` (0 to the largest magnitude).

    Args:
        flow: ``(H, W, 2)`` field (``[u, v]``, v downwards).
        size: Side of the colour map in pixels (nearest-neighbour upscaling,
            so each flow pixel stays a visible block).
        title: Line above the picture.
        unit: Unit of the flow (pixels of the flow's grid).

    Returns:
        ``(H_img, W_img, 3)`` uint8 BGR image.
    """
    arr = _check_flow(flow)
    mag = np.sqrt(arr[..., 0] ** 2 + arr[..., 1] ** 2)
    top = float(mag.max(initial=0.0))
    img = flow_to_colour(arr, magnitude=True)
    h, w = arr.shape[:2]
    side = (size, max(1, int(round(size * w / h))))
    img = cv2.resize(img, (side[1], side[0]), interpolation=cv2.INTER_NEAREST)
    wheel_side = max(64, size // 3)
    panel_w = wheel_side + 24
    head = 24
    canvas = np.full((head + side[0] + 44, side[1] + panel_w + 12, 3), 255,
                     np.uint8)
    canvas[head:head + side[0], 4:4 + side[1]] = img
    if title:
        _put(canvas, title, (4, 16), 0.45)
    x0 = side[1] + 12
    canvas[head:head + wheel_side, x0:x0 + wheel_side] = colour_wheel(
        wheel_side)
    c = x0 + wheel_side // 2
    _put(canvas, 'down', (c - 14, head + wheel_side + 12), 0.35)
    _put(canvas, 'direction', (x0, head + wheel_side + 26), 0.35)
    _put(canvas, 'up', (c - 7, head - 3), 0.35)
    # brightness bar: 0 .. max |flow| in the unit
    y = head + side[0] + 8
    bar = np.linspace(0, 255, side[1]).astype(np.uint8)
    canvas[y:y + 10, 4:4 + side[1]] = np.repeat(bar[None, :, None], 3,
                                                axis=2)[:, :, :][0][None]
    _put(canvas, '0', (4, y + 24), 0.35)
    label = f'brightness: |flow| 0 - {top:.2f} {unit} (max of this field)'
    _put(canvas, label, (24, y + 24), 0.35)
    return canvas
