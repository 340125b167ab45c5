"""Onset->frame flow and optical strain (paper Eq. 1-2)."""
import cv2
import numpy as np
import pytest

from raicl_mm.flow import face as face_mod, tvl1 as tvl1_mod
from raicl_mm.flow import (FlowConfig, compute_flow,
                                    extract_instance_set, flow_instance,
                                    load_clip_frames, optical_strain)
from raicl_mm.datasets.records import ClipRecord

# Tolerances: mean end-point error (px) in the interior (a 12 px border is
# left out: flow at the image border is extrapolated) for a global
# translation of a smoothed-noise texture. Measured at 64-112 px: TV-L1
# 0.002-0.007 px, Farneback 0.0001-0.06 px (its sub-pixel estimate is biased
# towards zero); the bounds leave a margin of about 2x.
EPE_TOL = {'tvl1': 0.02, 'farneback': 0.12}
BORDER = 12


def texture(h, w, seed=0, sigma=2.0):
    """Smoothed noise in [0, 1]: a texture with gradients everywhere."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0),
                           sigma)
    return (img - img.min()) / (img.max() - img.min())


def shifted_pair(size, dx, dy, seed=0, pad=20):
    """uint8 onset and frame where the frame is the onset moved by (dx, dy)."""
    base = texture(size + 2 * pad, size + 2 * pad, seed)
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    moved = cv2.warpAffine(base, m, base.shape[::-1], flags=cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_REFLECT)
    crop = slice(pad, pad + size)

    def u8(img):
        return np.uint8(np.clip(img[crop, crop] * 255 + 0.5, 0, 255))

    return u8(base), u8(moved)


def interior_epe(flow, dx, dy):
    inner = flow[BORDER:-BORDER, BORDER:-BORDER]
    return float(np.hypot(inner[..., 0] - dx, inner[..., 1] - dy).mean())


@pytest.mark.parametrize('method', ['tvl1', 'farneback'])
@pytest.mark.parametrize('dx,dy', [(0.5, -0.3), (1.0, 0.0), (2.0, 1.5)])
def test_recovers_known_translation(method, dx, dy):
    onset, frame = shifted_pair(64, dx, dy)
    flow = compute_flow(onset, frame, method)
    assert flow.shape == (64, 64, 2) and flow.dtype == np.float32
    assert interior_epe(flow, dx, dy) < EPE_TOL[method]


@pytest.mark.parametrize('method', ['tvl1', 'farneback'])
def test_identical_frames_give_zero_flow(method):
    onset, _ = shifted_pair(48, 0, 0)
    flow = compute_flow(onset, onset.copy(), method)
    if method == 'farneback':
        # OpenCV's Farneback leaves artefacts of up to ~0.1 px near the image
        # border even for identical frames; only its interior is exact.
        flow = flow[BORDER:-BORDER, BORDER:-BORDER]
    assert np.abs(flow).max() < 1e-3


def test_strain_matches_analytic_field():
    h, w = 40, 50
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    # Quadratic field: central differences are exact for it in the interior.
    u = 0.01 * x ** 2 + 0.02 * x * y - 0.3 * y
    v = -0.015 * y ** 2 + 0.05 * x + 0.01 * x * y
    u_x, u_y = 0.02 * x + 0.02 * y, 0.02 * x - 0.3
    v_x, v_y = 0.05 + 0.01 * y, -0.03 * y + 0.01 * x
    want = np.sqrt(u_x ** 2 + v_y ** 2 + 0.5 * (u_y + v_x) ** 2)
    got = optical_strain(u, v)
    assert got.dtype == np.float32 and got.shape == (h, w)
    np.testing.assert_allclose(got[1:-1, 1:-1], want[1:-1, 1:-1], rtol=1e-5,
                               atol=1e-6)


def test_strain_of_elementary_motions():
    y, x = np.mgrid[0:30, 0:30].astype(np.float64)
    zero = np.zeros_like(x)
    # Translation and rigid rotation do not deform: zero strain.
    assert np.abs(optical_strain(zero + 1.5, zero - 0.7)).max() < 1e-6
    assert np.abs(optical_strain(-0.1 * y, 0.1 * x)).max() < 1e-6
    # Uniform scaling by s: sqrt(2) * s; simple shear u = k y: k / sqrt(2).
    np.testing.assert_allclose(optical_strain(0.2 * x, 0.2 * y),
                               np.sqrt(2) * 0.2, rtol=1e-5)
    np.testing.assert_allclose(optical_strain(0.4 * y, zero),
                               0.4 / np.sqrt(2), rtol=1e-5)
    # Horizontal stretch u = s x: strain s (x is the column axis).
    np.testing.assert_allclose(optical_strain(0.3 * x, zero), 0.3, rtol=1e-5)
    with pytest.raises(ValueError):
        optical_strain(zero, zero[:-1])


def test_flow_instance_channels():
    onset, frame = shifted_pair(48, 0.5, 0.5)
    inst = flow_instance(onset, frame, 'farneback')
    assert inst.shape == (48, 48, 3) and inst.dtype == np.float32
    flow = compute_flow(onset, frame, 'farneback')
    np.testing.assert_array_equal(inst[..., :2], flow)
    np.testing.assert_allclose(inst[..., 2],
                               optical_strain(flow[..., 0], flow[..., 1]))


def test_compute_flow_rejects_bad_input():
    a, b = shifted_pair(32, 1, 0)
    with pytest.raises(ValueError, match='size'):
        compute_flow(a, b[:-2], 'farneback')
    with pytest.raises(ValueError, match='uint8'):
        compute_flow(a.astype(np.float32), b, 'farneback')
    with pytest.raises(ValueError, match='farneback'):
        compute_flow(a, b, 'deepflow')


def test_tvl1_uses_require_optflow(monkeypatch):
    import raicl_mm.compat as compat

    def broken():
        raise RuntimeError('reinstall opencv-contrib-python-headless')

    monkeypatch.setattr(compat, 'require_optflow', broken)
    monkeypatch.setattr(tvl1_mod, '_TVL1', {})
    a, b = shifted_pair(32, 1, 0)
    with pytest.raises(RuntimeError, match='opencv-contrib'):
        compute_flow(a, b, 'tvl1')


# -------------------------------------------------------------- clips on disk


def write_clip(tmp_path, frames, name='c1'):
    """Write uint8 frames as PNGs and return a ClipRecord over them."""
    folder = tmp_path / name
    folder.mkdir()
    paths = []
    for i, img in enumerate(frames):
        p = folder / f'img{i + 1}.png'
        assert cv2.imwrite(str(p), img)
        paths.append(str(p))
    n = len(frames)
    return ClipRecord(dataset='synthetic', subject='01', clip_id=name,
                      label='positive', onset=1, apex=n // 2, offset=n,
                      frame_paths=paths, frame_numbers=list(range(1, n + 1)))


def translated_frames(size, shifts, seed=0):
    return [shifted_pair(size, dx, 0.0, seed)[1] for dx in shifts]


def test_extract_instance_set_flow_is_in_pixels_at_the_configured_size(
        tmp_path):
    # Frame k moves by 2k px at 128 px; at size 64 that is k px.
    rec = write_clip(tmp_path, translated_frames(128, [0, 2, 4, 6]))
    cfg = FlowConfig(method='tvl1', size=(64, 64))
    out = extract_instance_set(rec, cfg, [1, 2, 3])
    assert out.shape == (3, 64, 64, 3) and out.dtype == np.float32
    for k in range(3):
        assert interior_epe(out[k, ..., :2], k + 1, 0.0) < 0.1


def test_non_square_size(tmp_path):
    rec = write_clip(tmp_path, translated_frames(96, [0, 1]))
    cfg = FlowConfig(method='farneback', size=(40, 56))
    onset, frames = load_clip_frames(rec, [1], cfg)
    assert onset.shape == (40, 56) and frames[0].shape == (40, 56)
    assert extract_instance_set(rec, cfg, [1]).shape == (1, 40, 56, 3)


def _frames_changed_outside(box, n=3, h=160, w=200):
    """Onset texture; later frames differ from it only outside ``box``."""
    onset = np.uint8(texture(h, w, 0) * 255)
    x, y, bw, bh = box
    frames = [onset]
    for k in range(1, n):
        other = np.uint8(texture(h, w, 10 + k) * 255)
        other[y:y + bh, x:x + bw] = onset[y:y + bh, x:x + bw]
        frames.append(other)
    return frames


def test_box_crop_ignores_motion_outside(tmp_path):
    box = (60, 40, 90, 100)
    rec = write_clip(tmp_path, _frames_changed_outside(box))
    cropped = extract_instance_set(
        rec, FlowConfig(method='tvl1', size=(48, 48), face_crop='box',
                        crop_box=box), [1, 2])
    assert np.abs(cropped[..., :2]).max() < 0.05
    # Control: without the crop the changed surroundings do give flow.
    whole = extract_instance_set(rec, FlowConfig(method='farneback',
                                                 size=(48, 48)), [1, 2])
    assert np.abs(whole[..., :2]).max() > 0.5


def test_haar_box_is_found_on_the_onset_and_reused(tmp_path, monkeypatch):
    box = (50, 30, 100, 110)
    rec = write_clip(tmp_path, _frames_changed_outside(box, n=4))
    calls = []

    def fake_detector(onset, cfg, path, sample_id):
        calls.append((onset.copy(), path))
        return box

    monkeypatch.setattr(face_mod, '_haar_box', fake_detector)
    out = extract_instance_set(
        rec, FlowConfig(method='tvl1', size=(48, 48), face_crop='haar'),
        [1, 2, 3])
    assert len(calls) == 1 and calls[0][1] == rec.frame_paths[0]
    np.testing.assert_array_equal(calls[0][0],
                                  cv2.imread(rec.frame_paths[0], 0))
    assert np.abs(out[..., :2]).max() < 0.05


class FakeCascade:
    """Stands in for cv2.CascadeClassifier (opencv 5.0 wheels ship no XML)."""

    def __init__(self, faces):
        self.faces = faces

    def detectMultiScale(self, img, **kwargs):
        return np.array(self.faces, dtype=np.int32).reshape(-1, 4)


def _with_fake_cascade(monkeypatch, tmp_path, faces):
    xml = tmp_path / 'cascade.xml'
    xml.write_text('<opencv_storage/>')
    monkeypatch.setattr(face_mod, '_load_cascade',
                        lambda path: FakeCascade(faces))
    return str(xml)


def test_haar_takes_largest_face_with_margin(tmp_path, monkeypatch):
    xml = _with_fake_cascade(monkeypatch, tmp_path,
                             [(10, 10, 20, 20), (40, 30, 50, 60)])
    cfg = FlowConfig(face_crop='haar', crop_margin=0.1, haar_cascade=xml)
    onset = np.zeros((120, 120), np.uint8)
    assert face_mod._haar_box(onset, cfg, 'x.png', 'a/b/c') == (35, 24, 60,
                                                               72)


def test_haar_without_a_face_names_the_frame_and_sample(tmp_path,
                                                        monkeypatch):
    xml = _with_fake_cascade(monkeypatch, tmp_path, [])
    rec = write_clip(tmp_path, [np.full((120, 120), 128, np.uint8)] * 2)
    with pytest.raises(ValueError) as err:
        extract_instance_set(rec, FlowConfig(method='farneback',
                                             face_crop='haar',
                                             haar_cascade=xml), [1])
    assert rec.frame_paths[0] in str(err.value)
    assert rec.sample_id in str(err.value)


def test_haar_missing_cascade_file_says_which_option(tmp_path):
    rec = write_clip(tmp_path, [np.full((120, 120), 128, np.uint8)] * 2)
    cfg = FlowConfig(method='farneback', face_crop='haar',
                     haar_cascade=str(tmp_path / 'nope.xml'))
    with pytest.raises(RuntimeError, match='haar_cascade'):
        extract_instance_set(rec, cfg, [1])


def test_missing_or_corrupt_frame_names_path_and_sample(tmp_path):
    rec = write_clip(tmp_path, translated_frames(48, [0, 1, 2]))
    cfg = FlowConfig(method='farneback', size=(32, 32))
    missing = rec.frame_paths[2]
    import os
    os.remove(missing)
    with pytest.raises(FileNotFoundError) as err:
        extract_instance_set(rec, cfg, [1, 2])
    assert missing in str(err.value) and rec.sample_id in str(err.value)
    with open(rec.frame_paths[1], 'wb') as f:
        f.write(b'not an image at all')
    with pytest.raises(ValueError) as err:
        extract_instance_set(rec, cfg, [1])
    assert rec.frame_paths[1] in str(err.value)
    assert rec.sample_id in str(err.value)
    with pytest.raises(ValueError, match='outside sample'):
        extract_instance_set(rec, cfg, [5])


def test_flow_config_validation_and_key():
    with pytest.raises(ValueError, match='method'):
        FlowConfig(method='raft')
    with pytest.raises(ValueError, match='crop_box'):
        FlowConfig(face_crop='box')
    with pytest.raises(ValueError, match='face_crop'):
        FlowConfig(face_crop='dlib')
    base = FlowConfig().key_dict()
    assert base == FlowConfig(crop_margin=0.3).key_dict()  # unused field
    assert base != FlowConfig(size=(64, 64)).key_dict()
    assert base != FlowConfig(method='farneback').key_dict()
    assert (FlowConfig(face_crop='haar').key_dict() !=
            FlowConfig(face_crop='haar', crop_margin=0.2).key_dict())
    assert (FlowConfig(face_crop='box', crop_box=(0, 0, 10, 10)).key_dict() !=
            FlowConfig(face_crop='box', crop_box=(0, 0, 12, 10)).key_dict())
    import json
    json.dumps(FlowConfig(face_crop='box', crop_box=(1, 2, 3, 4)).key_dict())
