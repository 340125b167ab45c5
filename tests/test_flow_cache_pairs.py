"""One pair file of the flow cache (raicl_mm/flow/cache_pairs.py): a
garbage, truncated, wrong-shaped or hostile file is a miss, never a crash; an
interrupted write leaves nothing accepted; files are the group's to read; no
write goes through a linked folder. Read and written through the cache."""
import os

import numpy as np
import pytest

from raicl_mm.datasets.sampling import SamplingConfig
from raicl_mm.datasets.instance_sets import sampled_cache
from raicl_mm.flow import cache as fc
from raicl_mm.flow import cache_pairs as cp

from test_flow_cache import (FAST, cache_for, counter,  # noqa: F401
                             make_clip, pair_files)


def test_garbage_file_is_a_miss_and_rebuilt(tmp_path, counter):
    rec = make_clip(tmp_path / 'data')
    cache = cache_for(tmp_path)
    good = cache.load_or_build(rec)
    path = pair_files(cache, rec)[1]
    path.write_bytes(b'\x00garbage' * 100)
    assert cache.load(rec) is None  # does not raise
    again = cache.load_or_build(rec)
    assert len(counter) == 2
    np.testing.assert_array_equal(good['flows'], again['flows'])
    assert cache.load(rec) is not None


def test_truncated_file_is_not_accepted(tmp_path):
    rec = make_clip(tmp_path / 'data')
    cache = cache_for(tmp_path)
    cache.load_or_build(rec)
    path = pair_files(cache, rec)[0]
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 30, len(data) - 1, 10, 0):
        path.write_bytes(data[:cut])
        assert cache.load(rec) is None
    # Torn by a crash (pairs are not fsynced): right size, wrong bytes.
    path.write_bytes(data)
    assert cache.load(rec) is not None
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(flipped))
    assert cache.load(rec) is None
    zeros = data[:128] + b'\x00' * (len(data) - 128)  # header kept, data lost
    path.write_bytes(zeros)
    assert cache.load(rec) is None


def test_right_key_wrong_shape_is_not_accepted(tmp_path):
    rec = make_clip(tmp_path / 'data')
    cache = cache_for(tmp_path)
    cache.load_or_build(rec)
    path = pair_files(cache, rec)[0]
    for bad in (np.zeros((32, 32, 2), np.float16),          # wrong shape
                np.zeros((32, 32, 3), np.float32),          # wrong dtype
                np.full((32, 32, 3), np.nan, np.float16),   # not finite
                np.full((32, 32, 3), np.inf, np.float16),
                np.zeros((16, 64, 3), np.float16)):         # same bytes
        np.save(path, bad)
        assert cache.load(rec) is None


def test_hostile_pair_files_never_unpickle_or_allocate(tmp_path):
    rec = make_clip(tmp_path / 'data')
    cache = cache_for(tmp_path)
    cache.load_or_build(rec)
    path = pair_files(cache, rec)[0]
    marker = tmp_path / 'ran'

    class Payload:
        def __reduce__(self):
            return (os.system, (f'touch {marker}',))

    arr = np.empty((32, 32, 3), dtype=object)
    arr[0, 0, 0] = Payload()
    with open(path, 'wb') as f:
        np.save(f, arr, allow_pickle=True)
    assert cache.load(rec) is None and not marker.exists()
    # A header that declares a huge array, in a file of the right size.
    header = {'descr': '<f2', 'fortran_order': False, 'shape': (10 ** 12,)}
    with open(path, 'wb') as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b'\x00' * (32 * 32 * 3 * 2))
    assert cache.load(rec) is None
    # A link to something that is not a file, and a FIFO (must not hang).
    path.unlink()
    path.symlink_to('/dev/zero')
    assert cache.load(rec) is None
    path.unlink()
    os.mkfifo(path)
    assert cache.load(rec) is None


def test_interrupted_write_leaves_nothing_accepted(tmp_path, monkeypatch):
    rec = make_clip(tmp_path / 'data')
    cache = cache_for(tmp_path)

    def crash(src, dst):
        raise KeyboardInterrupt('power cut between write and rename')

    monkeypatch.setattr(cp.os, 'replace', crash)
    with pytest.raises(KeyboardInterrupt):
        cache.load_or_build(rec)
    monkeypatch.undo()
    folder = cache.clip_dir(rec)
    assert not any(p.exists() for p in pair_files(cache, rec))
    assert list(folder.iterdir()) == []  # the temp file was removed
    assert cache.load(rec) is None


def test_leftover_temp_file_is_ignored(tmp_path, counter):
    rec = make_clip(tmp_path / 'data')
    cache = cache_for(tmp_path)
    cache.load_or_build(rec)
    path = pair_files(cache, rec)[2]
    # Simulate a crash that left a complete temp file but no final file.
    leftover = path.parent / f'.{path.name}.abc123.tmp'
    os.rename(path, leftover)
    assert cache.load(rec) is None
    cache.load_or_build(rec)
    assert len(counter) == 2 and path.is_file()


@pytest.mark.parametrize('umask,mode', [(0o022, 0o644), (0o002, 0o664)])
def test_files_are_readable_by_the_group(tmp_path, umask, mode):
    rec = make_clip(tmp_path / 'data')
    old = os.umask(umask)
    try:
        cache = cache_for(tmp_path)
        cache.load_or_build(rec)
    finally:
        os.umask(old)
    files = pair_files(cache, rec) + [cache.flow_dir / 'flow_key.json']
    for path in files:
        assert os.stat(path).st_mode & 0o777 == mode, path
    assert os.stat(cache.clip_dir(rec)).st_mode & 0o777 == mode | 0o111


def test_a_linked_clip_folder_is_refused_and_nothing_is_written_through_it(tmp_path):
    """Issue 20, case 6: a clip folder of the cache linked elsewhere."""
    rec = make_clip(tmp_path / 'data')
    cache = cache_for(tmp_path)
    clip_dir = cache.clip_dir(rec)
    clip_dir.parent.mkdir(parents=True)
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    # a file the stale-pair clean-up would delete, were the link followed
    victim = elsewhere / (os.path.basename(rec.frame_paths[3]) + '.0123456789abcdef.npy')
    victim.write_bytes(b'keep me')
    clip_dir.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(fc.FlowCacheError, match=rf'flow cache folder {clip_dir} is a '
                                                rf'symbolic link \(to {elsewhere}\)'):
        cache.load_or_build(rec)
    assert victim.read_bytes() == b'keep me'
    assert sorted(p.name for p in elsewhere.iterdir()) == [victim.name]
    # a linked subject folder too; the root itself may be a link
    clip_dir.unlink()
    subject_dir = clip_dir.parent
    subject_dir.rmdir()
    subject_dir.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(fc.FlowCacheError, match=f'{subject_dir} is a symbolic link'):
        cache.load_or_build(rec)
    linked_root = tmp_path / 'root_link'
    linked_root.symlink_to(tmp_path / 'real_root', target_is_directory=True)
    (tmp_path / 'real_root').mkdir()
    ok = sampled_cache(str(linked_root), FAST, SamplingConfig(num_instances=4))
    assert ok.load_or_build(rec)['flows'].shape[0] == 4
