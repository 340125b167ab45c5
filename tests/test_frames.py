"""Corrupt frames: truncated, empty or wrong-size files are refused, naming file and clip."""
import json

import cv2
import numpy as np
import pytest

from raicl_mm.datasets.records import ClipRecord
from raicl_mm.flow import FlowConfig
from raicl_mm.flow.instances import (CorruptFrameError, _read_gray, check_clip_frames,
                                     frame_problem, load_clip_frames)


def _frames(folder, n=4, size=(48, 40), ext='.jpg'):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        img = cv2.GaussianBlur(rng.integers(0, 255, size, dtype=np.uint8), (5, 5), 2)
        path = folder / f'img{i + 1}{ext}'
        cv2.imwrite(str(path), img)
        paths.append(str(path))
    return paths


def _record(paths):
    return ClipRecord(dataset='casme2', subject='01', clip_id='EP01', label='negative',
                      onset=1, apex=2, offset=len(paths), frame_paths=list(paths),
                      frame_numbers=list(range(1, len(paths) + 1)), fps=200.0)


@pytest.mark.parametrize('ext', ['.jpg', '.png', '.bmp'])
def test_truncated_frame_is_refused_not_grey_filled(tmp_path, ext):
    paths = _frames(tmp_path / 'clip', ext=ext)
    whole = open(paths[2], 'rb').read()
    assert frame_problem(whole) is None
    # OpenCV decodes a truncated JPEG silently with a grey remainder:
    open(paths[2], 'wb').write(whole[:len(whole) // 3])
    with pytest.raises(CorruptFrameError) as err:
        _read_gray(paths[2], 'casme2/01/EP01')
    text = str(err.value)
    assert '\n' not in text and paths[2] in text and 'casme2/01/EP01' in text
    assert 'truncated' in text
    with pytest.raises(CorruptFrameError, match='truncated'):
        load_clip_frames(_record(paths), [1, 2], FlowConfig(size=(32, 32)))


def test_empty_and_garbage_frames(tmp_path):
    paths = _frames(tmp_path / 'clip')
    open(paths[1], 'wb').close()
    with pytest.raises(CorruptFrameError, match=r'img2\.jpg.*EP01 is corrupt: empty file'):
        _read_gray(paths[1], 'casme2/01/EP01')
    open(paths[3], 'wb').write(b'not an image at all')
    with pytest.raises(CorruptFrameError, match='could not be decoded'):
        _read_gray(paths[3], 'casme2/01/EP01')
    # trailing zero padding after the JPEG end marker is whole
    data = open(paths[0], 'rb').read()
    assert frame_problem(data + b'\x00' * 16) is None


def test_check_clip_frames_lists_every_bad_file(tmp_path):
    paths = _frames(tmp_path / 'clip', n=5)
    data = open(paths[1], 'rb').read()
    open(paths[1], 'wb').write(data[:100])
    open(paths[2], 'wb').close()
    cv2.imwrite(paths[4], np.zeros((20, 20), np.uint8))  # whole, but the wrong size
    record = _record(paths)
    quick = check_clip_frames(record)
    assert [(p['file'], p['why'].split(' ')[0]) for p in quick] == [
        (paths[1], 'truncated'), (paths[2], 'empty')]
    full = check_clip_frames(record, decode=True)
    assert [p['file'] for p in full] == [paths[1], paths[2], paths[4]]
    assert full[-1]['why'] == 'wrong size 20x20, the onset is 40x48'
    assert all(p['id'] == 'casme2/01/EP01' for p in full)
    json.dumps(full)
