"""Issue 20, cases 4 and 5: stated caps with one-line errors (clip length, frame
rate, frame size), regular-file checks before any open, inference that keeps
only the frames it uses, and a truncated video refused naming both counts."""
import os
import signal
from contextlib import contextmanager

import cv2
import numpy as np
import pandas as pd
import pytest

from raicl_mm.datasets.records import ClipRecord
from raicl_mm.datasets.sources import build_records
from raicl_mm.flow.instances import FrameLimitError, _read_gray, check_clip_frames

from test_sources import touch_frames


@contextmanager
def deadline(seconds=20):
    """Fail instead of hanging (a FIFO opened for reading blocks forever)."""
    def boom(*_):
        raise TimeoutError('hung')
    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _sheet(tmp_path, **row):
    base = dict(Participant='p1', Video='v1', Start=1, End=9, Emotion='a', FPS=100)
    base.update(row)
    path = tmp_path / 'labels.csv'
    pd.DataFrame([base]).to_csv(path, index=False)
    spec = dict(source='sheet', name='lab', dataset='lab', classes=['a', 'b'],
                columns=dict(subject='Participant', clip='Video', onset='Start',
                             offset='End', label='Emotion', fps='FPS'),
                frames='{subject}/{clip}')
    return spec, dict(lab=str(tmp_path / 'frames')), dict(lab=str(path))


def test_an_offset_of_10_to_the_12_is_refused_by_the_clip_length_cap(tmp_path, monkeypatch):
    spec, roots, anns = _sheet(tmp_path, End=10 ** 12)
    with deadline():
        with pytest.raises(ValueError, match=r'labels\.csv, row 2: the clip spans '
                                             r'1000000000000 frames .* over the cap of '
                                             r'100000 \(RAICL_MAX_CLIP_FRAMES raises it\)'):
            build_records(spec, roots, anns, check_frames=False)
    monkeypatch.setenv('RAICL_MAX_CLIP_FRAMES', '5')
    spec, roots, anns = _sheet(tmp_path)
    with pytest.raises(ValueError, match='spans 9 frames .* cap of 5'):
        build_records(spec, roots, anns, check_frames=False)


def test_a_frame_rate_of_1e_9_is_refused_naming_the_cell(tmp_path):
    spec, roots, anns = _sheet(tmp_path, FPS=1e-9)
    with pytest.raises(ValueError, match=r"row 2, column 'FPS': frame rate 1e-09 fps is "
                                         r'outside \[1, 10000\]'):
        build_records(spec, roots, anns, check_frames=False)
    with pytest.raises(ValueError, match=r"protocol.fps: frame rate 1e\+06 fps is outside"):
        build_records(dict(spec, fps=1e6, columns=dict(spec['columns'], fps=None)),
                      roots, anns, check_frames=False)


def _record(folder, names):
    return ClipRecord(dataset='lab', subject='p1', clip_id='v1', label='a', onset=1,
                      apex=None, offset=len(names),
                      frame_paths=[str(folder / n) for n in names],
                      frame_numbers=list(range(1, len(names) + 1)))


def test_a_fifo_and_dev_zero_named_like_frames_are_refused_without_hanging(tmp_path):
    folder = tmp_path / 'clip'
    folder.mkdir()
    cv2.imwrite(str(folder / 'img1.png'), np.zeros((8, 8), np.uint8))
    os.mkfifo(folder / 'img2.png')
    os.symlink('/dev/zero', folder / 'img3.png')
    rec = _record(folder, ['img1.png', 'img2.png', 'img3.png'])
    with deadline():
        problems = check_clip_frames(rec)
        assert [p['why'] for p in problems] == ['a FIFO, not a regular file',
                                                'a device, not a regular file']
        with pytest.raises(FrameLimitError, match=r"img2\.png' of sample lab/p1/v1 is a "
                                                  'FIFO, not a regular file'):
            _read_gray(rec.frame_paths[1], rec.sample_id)


def test_dataset_info_lists_a_fifo_frame_instead_of_hanging(tmp_path, capsys):
    import json
    from test_tool_errors import load_tool
    spec, roots, anns = _sheet(tmp_path, End=3)
    folder = touch_frames(tmp_path / 'frames' / 'p1' / 'v1', [1, 3])
    os.mkfifo(folder / 'img2.jpg')
    cfg = tmp_path / 'own.py'
    cfg.write_text(f'protocol = {spec!r}\ndata_roots = {roots!r}\nann_files = {anns!r}\n')
    with deadline():
        status = load_tool('dataset_info').main([str(cfg)])
    out = json.loads(capsys.readouterr().out)
    assert status == 0
    assert {p['why'] for p in out['corrupt_frames']} >= {'a FIFO, not a regular file'}


def test_frame_size_cap_is_checked_from_the_header(tmp_path, monkeypatch):
    path = tmp_path / 'big.png'
    cv2.imwrite(str(path), np.zeros((40, 50), np.uint8))
    assert _read_gray(str(path), 's').shape == (40, 50)
    monkeypatch.setenv('RAICL_MAX_FRAME_PIXELS', '1000')
    with pytest.raises(FrameLimitError, match=r'is 50x40 pixels, over the cap of 1000 '
                                              r'\(RAICL_MAX_FRAME_PIXELS raises it\)'):
        _read_gray(str(path), 's')


def _video(path, n, fourcc='mp4v', size=(64, 48)):
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25, size)
    for _ in range(n):
        writer.write((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8))
    writer.release()
    return path


def test_inference_keeps_only_the_frames_it_uses(tmp_path):
    from raicl_mm.apis.inference import FrameStore, read_clip
    video = _video(tmp_path / 'long.mp4', 40)
    clip = read_clip(str(video), select=lambda numbers, fps: [5, 20, 39])
    assert isinstance(clip.frames, FrameStore)
    assert len(clip.frames) == 40 and sorted(clip.frames.kept) == [0, 5, 20, 39]
    assert clip.positions == [5, 20, 39] and clip.fps == 25.0
    with pytest.raises(IndexError, match='was not kept'):
        clip.frames[3]
    # a frame folder: only those files are decoded
    folder = tmp_path / 'frames'
    folder.mkdir()
    for k in range(10):
        cv2.imwrite(str(folder / f'img{k}.png'), np.full((8, 8), k, np.uint8))
    os.remove(folder / 'img7.png')
    os.mkfifo(folder / 'img7.png')   # never opened: not among the kept frames
    with deadline():
        clip = read_clip(str(folder), select=lambda numbers, fps: [2, 9])
    assert sorted(clip.frames.kept) == [0, 2, 9] and int(clip.frames[9][0, 0]) == 9
    # over the caps: one line before decoding
    with pytest.raises(ValueError, match=r'frames of 64x48 pixels are over the cap of 100'):
        os.environ['RAICL_MAX_FRAME_PIXELS'] = '100'
        try:
            read_clip(str(video))
        finally:
            del os.environ['RAICL_MAX_FRAME_PIXELS']
    with pytest.raises(ValueError, match=r'frame rate 0.001 fps is outside'):
        read_clip(str(video), fps=0.001)


def test_a_truncated_video_is_refused_naming_both_counts(tmp_path):
    from raicl_mm.apis.inference import InferenceError, read_clip
    video = _video(tmp_path / 'whole.avi', 25, fourcc='MJPG')
    data = video.read_bytes()
    cut = tmp_path / 'cut.avi'
    cut.write_bytes(data[:len(data) // 2])
    assert len(read_clip(str(video)).frames) == 25
    with pytest.raises(InferenceError, match=r'cut\.avi: decoded (\d+) frames but its '
                                             r'container reports 25 \(a truncated or '
                                             r'damaged video\); pass --allow-truncated'):
        read_clip(str(cut), select=lambda numbers, fps: [len(numbers) // 2])
    clip = read_clip(str(cut), select=lambda numbers, fps: [len(numbers) // 2],
                     allow_truncated=True)
    assert 2 <= len(clip.frames) < 25
    assert clip.warnings and 'the container reports 25' in clip.warnings[0]


def test_a_fifo_or_device_named_like_a_sheet_or_list_is_refused(tmp_path):
    spec, roots, anns = _sheet(tmp_path)      # writes labels.csv
    os.rename(tmp_path / 'labels.csv', tmp_path / 'ok.csv')
    os.mkfifo(tmp_path / 'labels.csv')
    os.symlink('/dev/zero', tmp_path / 'exclude.txt')
    with deadline():
        with pytest.raises(ValueError, match=r'lab sheet .*labels\.csv is a FIFO, not a '
                                             'regular file'):
            build_records(spec, roots, dict(lab=str(tmp_path / 'labels.csv')),
                          check_frames=False)
        with pytest.raises(ValueError, match=r'exclusion list .*exclude\.txt is a device'):
            build_records(spec, roots, dict(lab=str(tmp_path / 'ok.csv')),
                          exclude_file=str(tmp_path / 'exclude.txt'), check_frames=False)
