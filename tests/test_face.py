"""face_crop='landmarks' on a real face: matplotlib's photograph of Grace Hopper.

The clips are built here (nothing is stored in the repository): the photo on a
larger grey canvas, offset and rotated by a known angle, with a smooth local
warp of the mouth corners that grows and fades over the clip, written as a
frame folder (PNG) and as an mp4.
"""
import json
import os

import cv2
import matplotlib
import numpy as np
import pytest

from raicl_mm.datasets.records import ClipRecord
from raicl_mm.flow import FlowConfig, extract_instance_set, load_clip_frames
from raicl_mm.flow import face as face_mod

pytest.importorskip('dlib')

GRACE = os.path.join(matplotlib.get_data_path(), 'sample_data',
                     'grace_hopper.jpg')
# Mouth corners of the photo (dlib points 48 and 54, source pixels).
MOUTH = ((232.0, 280.0), (311.0, 272.0))
#: Eye-line angle tolerance in degrees: dlib's 68 points on this face, placed
#: at 8 angles in -8..20 degrees, measured the relative angle within 0.94.
ANGLE_TOL = 1.5


def _smile(img, amount):
    """Pull the mouth corners outwards and up by ``amount`` px (smooth)."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx = np.zeros((h, w), np.float32)
    dy = np.zeros((h, w), np.float32)
    for (cx, cy), sign in zip(MOUTH, (-1.0, 1.0)):
        g = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 14.0 ** 2))
        dx += sign * amount * g
        dy -= 0.5 * amount * g
    # remap pulls: out(x) = in(x - d) moves content by +d.
    return cv2.remap(img, xx - dx, yy - dy, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)


def make_face_clip(folder, angle=7.0, n=20, canvas=(240, 320), scale=0.35,
                   offset=(70, 15), amplitude=6.0, mp4=True, fps=30.0):
    """Write a test clip of the photo; returns where and how it was placed.

    Args:
        folder: Output folder (``frames/`` PNGs and ``clip.mp4`` inside).
        angle: Rotation of the placed face in degrees (OpenCV's sense:
            counter-clockwise on screen), about the face's centre.
        n: Number of frames; the warp is ``amplitude * sin(pi t / (n-1))``.
        canvas: ``(H, W)`` of the frames.
        scale: Size of the photo on the canvas.
        offset: ``(x, y)`` of the photo's top-left corner before rotation.
        amplitude: Peak mouth-corner displacement in photo pixels.
        mp4: Also write ``clip.mp4`` (mp4v).
        fps: Frame rate written into the mp4.

    Returns:
        dict(frames_dir, mp4, frames (BGR list), matrix (photo -> canvas,
        2x3), angle).
    """
    os.makedirs(os.path.join(folder, 'frames'), exist_ok=True)
    photo = cv2.imread(GRACE)
    h, w = canvas
    ph, pw = photo.shape[:2]
    m = np.array([[scale, 0, offset[0]], [0, scale, offset[1]]], np.float64)
    centre = (offset[0] + pw * scale / 2, offset[1] + ph * scale / 2)
    rot = np.vstack([cv2.getRotationMatrix2D(centre, angle, 1.0), [0, 0, 1]])
    matrix = (rot @ np.vstack([m, [0, 0, 1]]))[:2]
    frames = []
    for t in range(n):
        amount = amplitude * np.sin(np.pi * t / max(n - 1, 1))
        img = cv2.warpAffine(_smile(photo, amount), matrix, (w, h),
                             flags=cv2.INTER_AREA, borderValue=(90, 90, 90))
        frames.append(img)
        cv2.imwrite(os.path.join(folder, 'frames', f'img{t + 1:03d}.png'),
                    img)
    path = None
    if mp4:
        path = os.path.join(folder, 'clip.mp4')
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                                 (w, h))
        for img in frames:
            writer.write(img)
        writer.release()
    return dict(frames_dir=os.path.join(folder, 'frames'), mp4=path,
                frames=frames, matrix=matrix, angle=angle)


def _record(frames_dir, sid='user/clip'):
    paths = sorted(os.path.join(frames_dir, f) for f in os.listdir(frames_dir))
    return ClipRecord(dataset='user', subject=sid.split('/')[0],
                      clip_id=sid.split('/')[1], label='positive', onset=1,
                      apex=None, offset=len(paths), frame_paths=paths,
                      frame_numbers=list(range(1, len(paths) + 1)))


@pytest.fixture(scope='module')
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp('faces')
    return dict(level=make_face_clip(str(root / 'level'), angle=0.0, n=6,
                                     mp4=False),
                rotated=make_face_clip(str(root / 'rot'), angle=7.0, n=20))


LM = FlowConfig(method='farneback', size=(64, 64), face_crop='landmarks',
                crop_margin=0.1)


def _onset(clip):
    return cv2.cvtColor(clip['frames'][0], cv2.COLOR_BGR2GRAY)


def test_face_box_is_found_around_the_placed_face(clips):
    clip = clips['rotated']
    al = face_mod.align_clip(_onset(clip), LM, 'onset.png', 'user/clip')
    assert al.face_found and al.mode == 'landmarks'
    x1, y1, x2, y2 = al.face_box
    # The photo's eye midpoint and mouth, carried onto the canvas, lie inside.
    for px, py in [(263.0, 195.0)] + list(MOUTH):
        cx, cy = clip['matrix'] @ np.array([px, py, 1.0])
        assert x1 < cx < x2 and y1 < cy < y2
    side = x2 - x1
    assert side == pytest.approx(y2 - y1)
    face_w = 215 * 0.35  # dlib's box on the photo is 215 px wide
    assert 0.9 * face_w < side < 2.0 * face_w
    # The cut region is the box rotated by -angle about its centre.
    c = np.asarray(al.corners)
    assert np.linalg.norm(c[1] - c[0]) == pytest.approx(side, rel=1e-6)
    assert np.degrees(np.arctan2(*(c[1] - c[0])[::-1])) == pytest.approx(
        al.angle, abs=1e-6)


def test_alignment_undoes_the_rotation(clips):
    level = face_mod.align_clip(_onset(clips['level']), LM, 'a', 'level')
    rot = face_mod.align_clip(_onset(clips['rotated']), LM, 'b', 'rot')
    # OpenCV's +7 degrees (counter-clockwise) tilts the eye line by -7.
    assert rot.angle - level.angle == pytest.approx(-7.0, abs=ANGLE_TOL)
    # On the aligned crop (at its own resolution) the eye line is level.
    crop = cv2.warpAffine(_onset(clips['rotated']), rot.matrix,
                          (rot.crop_side, rot.crop_side))
    boxes = face_mod.detect_faces(crop)
    assert boxes
    pts = face_mod.face_landmarks(crop, boxes[0])
    assert abs(face_mod.eye_line_angle(pts)) < ANGLE_TOL
    # And the two clips' aligned onsets show the same face: the rotated
    # clip through its own alignment matches the level one much better than
    # through the level clip's (which leaves the rotation in). Measured:
    # 0.87 against 0.76 (64 px crops, blurred by sigma 1.5 px).
    def corr(x, y):
        x, y = (cv2.GaussianBlur(v.astype(np.float32), (0, 0), 1.5).ravel()
                for v in (x, y))
        return np.corrcoef(x, y)[0, 1]

    ref = level.apply(_onset(clips['level']))
    own = corr(ref, rot.apply(_onset(clips['rotated'])))
    other = corr(ref, level.apply(_onset(clips['rotated'])))
    assert own > 0.8 and own > other + 0.06


def test_same_transform_for_every_frame_and_motion_only_at_the_mouth(clips):
    clip = clips['rotated']
    rec = _record(clip['frames_dir'])
    calls = []
    real = face_mod._landmark_alignment

    def counting(*args):
        calls.append(args[2])
        return real(*args)

    face_mod._landmark_alignment = counting
    try:
        onset, frames = load_clip_frames(rec, [5, 10], LM)
        inst = extract_instance_set(rec, LM, [10])
    finally:
        face_mod._landmark_alignment = real
    assert calls == [rec.frame_paths[0]] * 2  # the onset only, once per clip
    assert onset.shape == frames[0].shape == (64, 64)
    mag = np.hypot(inst[0, ..., 0], inst[0, ..., 1])
    # The warp peaks at t = 9.5: motion in the lower half (mouth), little in
    # the upper half (eyes, forehead) once the head is aligned.
    assert mag[40:56].mean() > 3 * mag[4:24].mean()
    assert mag.max() > 0.3


def test_no_face_error_names_clip_and_frame(tmp_path):
    blank = np.full((120, 160), 90, np.uint8)
    d = tmp_path / 'frames'
    d.mkdir()
    for i in range(3):
        cv2.imwrite(str(d / f'img{i + 1}.png'), blank)
    rec = _record(str(d), 'sub9/blank')
    with pytest.raises(ValueError) as err:
        extract_instance_set(rec, LM, [1])
    msg = str(err.value)
    assert rec.frame_paths[0] in msg and rec.sample_id in msg
    assert "no_face='whole_frame'" in msg
    # The option: the whole frame, flagged (warning) and counted.
    cfg = FlowConfig(method='farneback', size=(32, 32),
                     face_crop='landmarks', no_face='whole_frame')
    before = len(face_mod.no_face_clips())
    with pytest.warns(UserWarning, match=rec.sample_id):
        out = extract_instance_set(rec, cfg, [1, 2])
    assert out.shape == (2, 32, 32, 3)
    assert face_mod.no_face_clips()[rec.sample_id] == rec.frame_paths[0]
    assert len(face_mod.no_face_clips()) == before + 1
    al = face_mod.align_clip(blank, cfg, 'x', 'y')
    assert not al.face_found and al.face_box == [0.0, 0.0, 160.0, 120.0]


def test_landmarks_config_key_and_validation(tmp_path):
    base = FlowConfig(face_crop='landmarks').key_dict()
    json.dumps(base)
    assert base['align'] == face_mod.ALIGN_VERSION
    assert base['landmark_model'][0] == face_mod.LANDMARK_MODEL
    assert base['landmark_model'][1] > 10_000_000  # the real 68-point model
    assert base != FlowConfig(face_crop='landmarks',
                              crop_margin=0.2).key_dict()
    assert base != FlowConfig(face_crop='landmarks',
                              no_face='whole_frame').key_dict()
    assert base != FlowConfig().key_dict()
    # Settings of other modes do not split the whole-frame key.
    assert FlowConfig().key_dict() == FlowConfig(no_face='whole_frame'
                                                 ).key_dict()
    with pytest.raises(ValueError, match='no_face'):
        FlowConfig(face_crop='landmarks', no_face='skip')
    # A named model that is missing: one line naming it and the option.
    cfg = FlowConfig(face_crop='landmarks',
                     landmark_model=str(tmp_path / 'none.dat'))
    with pytest.raises(RuntimeError, match='landmark_model'):
        face_mod.align_clip(np.full((200, 200), 90, np.uint8), cfg, 'x', 'y')
    # A hostile model file: dlib refuses it, we name the file and option.
    bad = tmp_path / 'bad.dat'
    bad.write_bytes(b'\x00not a dlib model' * 10)
    cfg = FlowConfig(face_crop='landmarks', landmark_model=str(bad))
    photo = cv2.imread(GRACE, cv2.IMREAD_GRAYSCALE)
    with pytest.raises(RuntimeError, match='bad.dat'):
        face_mod.align_clip(photo, cfg, 'x', 'y')


def test_haar_without_face_falls_back_by_option(monkeypatch):
    def no_face(onset, cfg, path, sample_id):
        raise ValueError(f'no face on {path} of {sample_id}')

    monkeypatch.setattr(face_mod, '_haar_box', no_face)
    img = np.full((60, 80), 90, np.uint8)
    with pytest.raises(ValueError, match='frame.png'):
        face_mod.align_clip(img, FlowConfig(face_crop='haar'), 'frame.png',
                            's/1/a')
    cfg = FlowConfig(face_crop='haar', no_face='whole_frame', size=(16, 16))
    with pytest.warns(UserWarning, match='s/1/b'):
        al = face_mod.align_clip(img, cfg, 'frame.png', 's/1/b')
    assert not al.face_found and al.apply(img).shape == (16, 16)
    assert 's/1/b' in face_mod.no_face_clips()
