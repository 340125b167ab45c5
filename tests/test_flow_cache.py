"""On-disk instance-set cache: hit, stale, corrupt, interrupted writes."""
import os

import cv2
import numpy as np
import pytest

from raicl_mm.flow import cache as fc
from raicl_mm.flow import FlowConfig
from raicl_mm.flow.cache import (FlowCache, SamplingConfig,
                                          clip_positions, extract_all)
from raicl_mm.datasets.records import ClipRecord

FAST = FlowConfig(method='farneback', size=(32, 32))


def make_clip(root, clip_id='c1', n=12, subject='01', seed=0, size=48):
    """A clip of ``n`` frames on disk: a texture drifting 0.5 px/frame."""
    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur(rng.random((size + 40, size + 40)).astype(
        np.float32), (0, 0), 2.0)
    big = (big - big.min()) / (big.max() - big.min())
    folder = root / subject / clip_id.replace('/', '_')
    folder.mkdir(parents=True)
    paths = []
    for k in range(n):
        m = np.float32([[1, 0, 0.5 * k], [0, 1, 0]])
        img = cv2.warpAffine(big, m, big.shape[::-1], flags=cv2.INTER_CUBIC,
                             borderMode=cv2.BORDER_REFLECT)[20:-20, 20:-20]
        p = folder / f'img{k + 1}.png'
        cv2.imwrite(str(p), np.uint8(img * 255 + 0.5))
        paths.append(str(p))
    return ClipRecord(dataset='synthetic', subject=subject, clip_id=clip_id,
                      label='positive', onset=1, apex=n // 2, offset=n,
                      frame_paths=paths, frame_numbers=list(range(1, n + 1)))


@pytest.fixture
def counter(monkeypatch):
    """Counts calls to the flow extractor behind the cache."""
    calls = []
    real = fc.extract_instance_set

    def counting(record, cfg, positions):
        calls.append(record.sample_id)
        return real(record, cfg, positions)

    monkeypatch.setattr(fc, 'extract_instance_set', counting)
    return calls


def cache_for(tmp_path, flow_cfg=FAST, **sampling):
    sampling.setdefault('num_instances', 4)
    return FlowCache(str(tmp_path / 'cache'), flow_cfg,
                     SamplingConfig(**sampling))


def test_build_then_hit_reads_without_recomputing(tmp_path, counter):
    rec = make_clip(tmp_path / 'data')
    cache = cache_for(tmp_path)
    assert cache.load(rec) is None
    first = cache.load_or_build(rec)
    assert counter == [rec.sample_id]
    assert first['flows'].shape == (4, 32, 32, 3)
    assert first['flows'].dtype == np.float32
    assert first['positions'] == clip_positions(rec, cache.sampling_cfg)
    assert first['frame_numbers'] == [rec.frame_numbers[p]
                                      for p in first['positions']]
    second = cache.load_or_build(rec)
    assert counter == [rec.sample_id]  # no second computation
    np.testing.assert_array_equal(first['flows'], second['flows'])
    # A fresh cache object on the same root reuses the file too.
    cache_for(tmp_path).load_or_build(rec)
    assert len(counter) == 1
    # The flows are the drifting texture's: u grows with the position.
    mean_u = first['flows'][:, 8:-8, 8:-8, 0].mean(axis=(1, 2))
    assert np.all(np.diff(mean_u) > 0)


def pair_files(cache, rec, positions=None):
    """The pair files of ``rec``'s instance set (or of ``positions``)."""
    return cache.paths_for(rec, positions)


def test_float16_on_disk_float32_back(tmp_path):
    rec = make_clip(tmp_path / 'data')
    cache = cache_for(tmp_path)
    out = cache.load_or_build(rec)
    files = pair_files(cache, rec)
    assert len(files) == 4
    for path in files:
        assert np.load(path).dtype == np.float16
    n, h, w = 4, 32, 32
    assert sum(os.path.getsize(p) for p in files) < n * h * w * 3 * 2 + 4096
    direct = fc.extract_instance_set(rec, FAST, out['positions'])
    np.testing.assert_allclose(out['flows'], direct, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize('change', [
    dict(flow_cfg=FlowConfig(method='farneback', size=(24, 24))),
    dict(flow_cfg=FlowConfig(method='tvl1', size=(32, 32))),
    dict(num_instances=6),
    dict(strategy='uniform'),
])
def test_changed_parameter_rebuilds(tmp_path, counter, change):
    rec = make_clip(tmp_path / 'data')
    base = cache_for(tmp_path)
    base.load_or_build(rec)
    other = cache_for(tmp_path, **change)
    assert other.key_for(rec) != base.key_for(rec)
    assert other.load(rec) is None
    out = other.load_or_build(rec)
    assert len(counter) == 2
    assert out['flows'].shape[1:3] == other.flow_cfg.size
    # Settings coexist: the first config's instance set is still on disk.
    assert base.load(rec) is not None
    if 'flow_cfg' in change:
        assert other.flow_dir != base.flow_dir
    else:
        # Same flow setting: only the pairs the first sampling lacked were
        # computed.
        shared = set(base.positions(rec)) & set(other.positions(rec))
        assert shared
        assert other.stats['pairs_computed'] == len(other.positions(rec)) - \
            len(shared)


def test_changed_frame_file_rebuilds(tmp_path, counter):
    rec = make_clip(tmp_path / 'data')
    cache = cache_for(tmp_path)
    before = cache.load_or_build(rec)
    used = rec.frame_paths[before['positions'][0]]
    # Same-size rewrite with another mtime: still detected.
    st = os.stat(used)
    os.utime(used, ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))
    assert cache.load(rec) is None
    cache.load_or_build(rec)
    assert len(counter) == 2
    assert cache.stats['pairs_computed'] == 4 + 1  # only the edited frame
    # A different image (different size) in place of a frame.
    cv2.imwrite(used, np.zeros((48, 48), np.uint8))
    after = cache.load_or_build(rec)
    assert len(counter) == 3
    assert not np.allclose(before['flows'], after['flows'])
    # The edited frame's older files were replaced, not kept beside.
    name = os.path.basename(used)
    assert len(list(cache.clip_dir(rec).glob(f'{name}.*.npy'))) == 1
    # An edited onset changes every pair of the clip.
    st = os.stat(rec.frame_paths[0])
    os.utime(rec.frame_paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))
    assert cache.load(rec) is None
    # A changed annotation (apex) changes the instance set of an apex-based
    # sampling (another pair); flows never depend on the annotation itself.
    apex = cache_for(tmp_path, strategy='apex_single')
    apex.load_or_build(rec)
    assert apex.load(rec) is not None
    rec.apex = 3
    assert apex.load(rec) is None


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

    monkeypatch.setattr(fc.os, 'replace', crash)
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


def test_paths_are_filesystem_safe_and_distinct(tmp_path):
    cache = cache_for(tmp_path)
    ids = ['a/b', 'a_b', '..', 'x y:z', 'EP02_01f']
    recs = [ClipRecord(dataset='casme2', subject='sub/01', clip_id=i,
                       label='x', onset=1, apex=None, offset=2,
                       frame_paths=['/d/../x y/img 1.jpg', '/d/ok/img2.jpg'],
                       frame_numbers=[1, 2])
            for i in ids]
    paths = [cache.clip_dir(r) for r in recs]
    root = cache.flow_dir.resolve()
    assert root.parent == (tmp_path / 'cache').resolve()
    for p in paths:
        assert p.resolve().parent.parent.parent == root
        assert '/' not in p.name and not p.name.startswith('.')
    assert len(set(paths)) == len(paths)
    assert paths[-1].name == 'EP02_01f'
    for r in recs:
        keys = cache.pair_keys(r, [0, 1])
        for pos in (0, 1):
            pair = cache.pair_path(r, pos, keys[pos])
            assert pair.parent == cache.clip_dir(r)
            assert ' ' not in pair.name and not pair.name.startswith('.')
            assert pair.name.endswith('.npy')


def test_random_sampling_is_reproducible_per_clip(tmp_path):
    rec = make_clip(tmp_path / 'data', n=40)
    a = clip_positions(rec, SamplingConfig('random', 8, seed=1))
    b = clip_positions(rec, SamplingConfig('random', 8, seed=1))
    c = clip_positions(rec, SamplingConfig('random', 8, seed=2))
    assert a == b and a != c
    other = make_clip(tmp_path / 'data', clip_id='c2', n=40)
    assert clip_positions(other, SamplingConfig('random', 8, seed=1)) != a


def test_sampling_config_validation():
    with pytest.raises(ValueError, match='strategy'):
        SamplingConfig(strategy='median')
    with pytest.raises(ValueError, match='num_instances'):
        SamplingConfig(num_instances=0)


@pytest.mark.parametrize('workers', [1, 2])
def test_extract_all_reports_failures_and_goes_on(tmp_path, workers):
    data = tmp_path / 'data'
    recs = [make_clip(data, f'c{i}', n=8, seed=i) for i in range(4)]
    broken = make_clip(data, 'broken', n=8)
    os.remove(broken.frame_paths[0])
    cache = cache_for(tmp_path)
    summary = extract_all(recs + [broken], cache, workers=workers,
                          progress=True)
    assert summary['built'] == 4 and summary['reused'] == 0
    assert [f['id'] for f in summary['failed']] == [broken.sample_id]
    assert broken.frame_paths[0] in summary['failed'][0]['error']
    assert summary['pairs_per_s'] > 0 and summary['seconds'] > 0
    assert summary['bytes'] == sum(
        os.path.getsize(p) for r in recs for p in pair_files(cache, r))
    assert summary['pairs_computed'] == 16 and summary['pairs_reused'] == 0
    again = extract_all(recs, cache, workers=workers, progress=False)
    assert again['built'] == 0 and again['reused'] == 4
    assert again['failed'] == []
    assert again['bytes'] == summary['bytes']
    assert again['pairs_computed'] == 0 and again['pairs_reused'] == 16


# ----------------------------------------------------- tools/extract_flows.py


def _load_tool():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / 'tools' / 'extract_flows.py'
    spec = importlib.util.spec_from_file_location('extract_flows_tool', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SYNTHETIC_CONFIG = """
_base_ = [{base!r}]
__data = dict(
    synthetic=None,
    data_roots=dict(_delete_=True, casme2={roots!r}),
    ann_files=dict(_delete_=True, casme2={sheet!r}),
    flow_cfg=dict(method='tvl1', size=(32, 32)),
    sampling=dict(strategy='middle', num_instances=4),
    flow_cache={cache!r},
    flow_workers=1)
train_dataloader = dict(dataset=__data)
val_dataloader = dict(dataset=__data)
test_dataloader = dict(dataset=__data)
"""


def loaders(key, value):
    """``--cfg-options`` setting ``dataset.<key>`` of the three loaders."""
    return [f'{n}_dataloader.dataset.{key}={value}'
            for n in ('train', 'val', 'test')]


def write_config(tmp_path, data, cache=None):
    from conftest import REPO
    cfg_file = tmp_path / 'flows_cfg.py'
    cfg_file.write_text(SYNTHETIC_CONFIG.format(
        base=str(REPO / 'configs' / 'raicl_synthetic.py'),
        roots=str(data / 'Cropped'),
        sheet=str(data / 'CASME2-coding-synthetic.xlsx'),
        cache=str(cache or tmp_path / 'cache')))
    return cfg_file


def tiny_synthetic(out):
    from raicl_mm.synthetic.generator import SyntheticConfig, generate
    generate(str(out), SyntheticConfig(num_subjects=2, clips_per_subject=2,
                                       size=48, min_len=9, max_len=12,
                                       supersample=1), workers=1)
    return out


def test_extract_flows_tool_on_a_synthetic_set(tmp_path, capsys):
    import json

    data = tiny_synthetic(tmp_path / 'synthetic')
    cfg_file = write_config(tmp_path, data)
    tool = _load_tool()
    argv = [str(cfg_file), '--workers', '1', '--no-progress',
            '--cfg-options', *loaders('flow_cfg.method', 'farneback')]
    assert tool.main(argv) == 0
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1  # ONE JSON line
    summary = json.loads(out)
    assert summary['clips'] == 4 and summary['built'] == 4
    assert summary['failed'] == [] and summary['bytes'] > 0
    assert summary['pairs_computed'] == 16 and summary['pairs_reused'] == 0
    assert summary['flow_cfg']['method'] == 'farneback'  # --cfg-options won
    files = sorted((tmp_path / 'cache').rglob('*.npy'))
    assert len(files) == 16
    # Second run reuses everything.
    assert tool.main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert again['reused'] == 4 and again['pairs_computed'] == 0
    assert again['pairs_reused'] == 16
    # Another sampling of the same flows computes only its new pairs.
    assert tool.main(argv + loaders('sampling.strategy', 'full')) == 0
    full = json.loads(capsys.readouterr().out)
    assert full['pairs_reused'] == 16
    assert full['pairs_computed'] == len(list(
        (tmp_path / 'cache').rglob('*.npy'))) - 16
    # An unreadable frame makes that clip fail, the run goes on, exit is 1.
    clip_dir = sorted(p for p in (data / 'Cropped').glob('*/*')
                      if p.is_dir())[0]
    for frame in clip_dir.glob('*.jpg'):
        frame.write_bytes(b'not a jpeg')
    assert tool.main(argv + loaders('sampling.num_instances', 3)) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary['clips'] == 4 and summary['reused'] == 3
    assert len(summary['failed']) == 1
    assert 'could not be decoded' in summary['failed'][0]['error']
    assert clip_dir.name in summary['failed'][0]['id']


def test_extract_flows_tool_rejects_incomplete_config(tmp_path, capsys):
    cfg_file = tmp_path / 'bad.py'
    cfg_file.write_text("protocol = 'cde'\n")
    assert _load_tool().main([str(cfg_file)]) == 2
    err = capsys.readouterr().err
    assert 'protocol' in err and len(err.strip().splitlines()) == 1
    # A dataset dict without its data settings names them.
    cfg_file.write_text(
        "train_dataloader = dict(batch_size=1, dataset=dict("
        "type='MicroExpressionFlowDataset', pipeline=[], flow_cache=''))\n")
    assert _load_tool().main([str(cfg_file)]) == 2
    err = capsys.readouterr().err
    assert 'flow_cache' in err and 'data_roots' in err
    assert len(err.strip().splitlines()) == 1


def test_extract_flows_tool_one_line_errors(tmp_path, capsys):
    """Issue 10 item 9: unknown protocol, dead key, read-only cache."""
    data = tiny_synthetic(tmp_path / 'synthetic')
    tool = _load_tool()
    cfg_file = write_config(tmp_path, data)
    for extra, needle in ((loaders('protocol', 'no_such_protocol'),
                           'no_such_protocol'),
                          (['flow_cfg.method=farneback'], 'flow_cfg')):
        argv = [str(cfg_file), '--no-progress', '--cfg-options', *extra]
        assert tool.main(argv) == 2
        captured = capsys.readouterr()
        assert captured.out == ''
        assert needle in captured.err
        assert len(captured.err.strip().splitlines()) == 1
    # A cache folder that cannot be written: one line naming the folder.
    blocker = tmp_path / 'not_a_folder'
    blocker.write_text('x')
    cfg_file = write_config(tmp_path, data, cache=blocker / 'cache')
    assert tool.main([str(cfg_file), '--workers', '1', '--no-progress']) == 2
    captured = capsys.readouterr()
    assert str(blocker) in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert 'concatenate' not in captured.err


# ------------------------------------------------- one cache for every setting

ABLATIONS = [f'm{i}' for i in range(1, 13)]


def ablation_samplings():
    """``(name, sampling dict)`` of the 12 Table 3 configs, as they load."""
    from mmengine.config import Config

    from conftest import REPO
    from raicl_mm.engine.config import data_settings
    out = []
    for name in ABLATIONS:
        path, = (REPO / 'configs' / 'ablations').glob(f'{name}_*.py')
        sampling = dict(data_settings(Config.fromfile(str(path)))['sampling'])
        out.append((path.stem, sampling))
    return out


def test_table3_sweep_computes_each_distinct_pair_once(tmp_path, monkeypatch):
    """The 12 ablation configs' samplings, one after another, on a tiny
    synthetic set: every distinct onset->frame pair is solved exactly once
    (counted at the solver), a second sweep solves nothing, and today's
    per-clip keying would have solved several times more."""
    from raicl_mm.datasets.sources import build_records
    data = tiny_synthetic(tmp_path / 'synthetic')
    records = build_records(
        'casme2_3cls', dict(casme2=str(data / 'Cropped')),
        dict(casme2=str(data / 'CASME2-coding-synthetic.xlsx'))).records
    assert len(records) == 4
    solved = []
    real = fc.extract_instance_set

    def counting(record, cfg, positions):
        solved.extend((record.sample_id, int(p)) for p in positions)
        return real(record, cfg, positions)

    monkeypatch.setattr(fc, 'extract_instance_set', counting)
    sweep = ablation_samplings()
    strategies = [s['strategy'] for _, s in sweep]
    assert len(set(strategies)) == 8  # middle x4, apex_single x2, 6 others
    seen, old_slot, old_pairs = set(), {}, 0
    for name, sampling in sweep:
        # N=4 so that 9-12-frame clips make the strategies differ.
        cache = FlowCache(str(tmp_path / 'cache'), FAST,
                          SamplingConfig(**dict(sampling, num_instances=4)))
        want = {(r.sample_id, p) for r in records for p in cache.positions(r)}
        summary = extract_all(records, cache, workers=1, progress=False)
        assert summary['failed'] == [], name
        assert summary['pairs_computed'] == len(want - seen), name
        assert summary['pairs_reused'] == len(want & seen), name
        seen |= want
        # Today's cache: one file per clip, keyed by the sampling, so a
        # config whose key differs from the file's rebuilds the whole set.
        for r in records:
            key = cache.sampling_cfg.key_dict()
            if old_slot.get(r.sample_id) != key:
                old_pairs += len(cache.positions(r))
                old_slot[r.sample_id] = key
    assert len(solved) == len(set(solved)) == len(seen)
    assert old_pairs > len(seen)
    assert len(list(cache.flow_dir.rglob('*.npy'))) == len(seen)
    for name, sampling in sweep:  # the whole sweep again: nothing solved
        cache = FlowCache(str(tmp_path / 'cache'), FAST,
                          SamplingConfig(**dict(sampling, num_instances=4)))
        assert extract_all(records, cache, workers=1,
                           progress=False)['pairs_computed'] == 0
    assert len(solved) == len(seen)


def test_switching_strategies_never_recomputes(tmp_path, counter):
    rec = make_clip(tmp_path / 'data', n=20)
    total = 0
    for strategy in ('middle', 'apex_single', 'full', 'middle', 'uniform'):
        cache = cache_for(tmp_path, strategy=strategy)
        out = cache.load_or_build(rec)
        total += cache.stats['pairs_computed']
        assert out['positions'] == clip_positions(rec, cache.sampling_cfg)
    assert total == 19  # full = positions 1..19, each solved once
    assert len(counter) == 2  # middle, then full's remaining pairs


def test_flow_settings_coexist(tmp_path):
    rec = make_clip(tmp_path / 'data')
    a = cache_for(tmp_path)
    b = cache_for(tmp_path, flow_cfg=FlowConfig(method='farneback',
                                                size=(24, 24)))
    fa, fb = a.load_or_build(rec), b.load_or_build(rec)
    assert a.flow_dir != b.flow_dir and a.flow_dir.parent == b.flow_dir.parent
    np.testing.assert_array_equal(a.load(rec)['flows'], fa['flows'])
    np.testing.assert_array_equal(b.load(rec)['flows'], fb['flows'])
    import json
    key = json.loads((b.flow_dir / 'flow_key.json').read_text())
    assert key['flow']['size'] == [24, 24]
    assert b.flow_dir.name.startswith('farneback-24x24-')


def test_flows_at_any_positions(tmp_path, counter):
    """What the apex spotter reads: every frame's flow, from the cache."""
    rec = make_clip(tmp_path / 'data', n=10)
    cache = cache_for(tmp_path)
    assert cache.flows_at(rec, [1, 2, 3], compute=False) is None
    every = list(range(rec.num_frames))
    flows = cache.flows_at(rec, every)
    assert flows.shape == (10, 32, 32, 3) and flows.dtype == np.float32
    # onset->onset: (Farneback's) ~0, far below the 0.5 px/frame drift
    assert np.abs(flows[0, 8:-8, 8:-8, :2]).mean() < 0.05 < \
        np.abs(flows[9, 8:-8, 8:-8, 0]).mean()
    assert len(counter) == 1
    again = cache.flows_at(rec, [5, 5, 2])
    assert len(counter) == 1
    np.testing.assert_array_equal(again, flows[[5, 5, 2]])
    # The instance set of any sampling now costs nothing.
    cache_for(tmp_path, strategy='full').load_or_build(rec)
    cache.load_or_build(rec)
    assert len(counter) == 1
    with pytest.raises(ValueError, match='outside sample'):
        cache.flows_at(rec, [10])


def test_concurrent_writers_compute_each_pair_once(tmp_path):
    """Two worker processes given the same clips at the same time: the
    clip lock makes one compute and the other read."""
    data = tmp_path / 'data'
    recs = [make_clip(data, f'c{i}', n=10, seed=i) for i in range(3)]
    cache = cache_for(tmp_path)
    twice = [r for r in recs for _ in range(2)]  # each clip to both workers
    summary = extract_all(twice, cache, workers=2, progress=False)
    assert summary['failed'] == []
    assert summary['pairs_computed'] == 3 * 4
    assert summary['pairs_reused'] == 3 * 4
    for r in recs:
        assert cache.load(r) is not None


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


def test_unwritable_cache_is_one_line_naming_the_folder(tmp_path,
                                                        monkeypatch):
    """Issue 10 item 9: no 'need at least one array to concatenate'."""
    rec = make_clip(tmp_path / 'data')
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    cache = FlowCache(str(blocker / 'cache'), FAST,
                      SamplingConfig(num_instances=4))
    for workers in (1, 2):
        with pytest.raises(fc.FlowCacheError) as err:
            extract_all([rec, make_clip(tmp_path / 'data', f'w{workers}')],
                        cache, workers=workers, progress=False)
        assert str(blocker) in str(err.value)
        assert '\n' not in str(err.value)
    # A complete cache that has become read-only still loads; a write it
    # would need is one line naming the folder.
    good = cache_for(tmp_path)
    good.load_or_build(rec)

    def refuse(*a, **k):
        raise PermissionError(13, 'Permission denied')

    monkeypatch.setattr(fc.tempfile, 'mkstemp', refuse)
    assert good.load(rec) is not None
    assert extract_all([rec], good, workers=1,
                       progress=False)['reused'] == 1
    other = make_clip(tmp_path / 'data', 'other')
    with pytest.raises(fc.FlowCacheError, match='not writable') as err:
        good.build(other)
    assert str(good.clip_dir(other)) in str(err.value)
    monkeypatch.undo()
    if os.geteuid() != 0:  # root ignores permission bits
        os.chmod(good.flow_dir, 0o555)
        try:
            with pytest.raises(fc.FlowCacheError, match=str(good.flow_dir)):
                good.build(make_clip(tmp_path / 'data', 'ro'))
        finally:
            os.chmod(good.flow_dir, 0o755)


def test_out_of_range_flows_are_refused_naming_the_clip(tmp_path,
                                                        monkeypatch):
    """Issue 10 item 10: float16 would store inf, which load rejects."""
    rec = make_clip(tmp_path / 'data')
    cache = cache_for(tmp_path)
    positions = cache.positions(rec)
    flows = np.zeros((4, 32, 32, 3), np.float32)
    flows[2, 5, 5, 0] = 7.0e4
    with pytest.raises(ValueError, match='float16') as err:
        cache.store(rec, flows, positions)
    msg = str(err.value)
    assert rec.sample_id in msg and f'frame {rec.frame_numbers[positions[2]]}' \
        in msg and '\n' not in msg
    # The pairs that fit are stored (nothing computed is lost), not the other.
    got = cache.fill(rec, positions, compute=False)[0]
    assert [got[p] is None for p in positions] == [False, False, True, False]
    flows[2, 5, 5, 0] = 65504.0  # the largest float16 is fine
    cache.store(rec, flows, positions)
    assert cache.load(rec) is not None
    # Through extract_all the clip is a named failure, the others go on.
    good = make_clip(tmp_path / 'data', 'good')
    bad = make_clip(tmp_path / 'data', 'bad')
    real = fc.extract_instance_set

    def blow_up(record, cfg, pos):
        out = real(record, cfg, pos)
        if record.sample_id == bad.sample_id:
            out[0, 0, 0, 1] = np.inf
        return out

    monkeypatch.setattr(fc, 'extract_instance_set', blow_up)
    summary = extract_all([good, bad], cache, workers=1, progress=False)
    assert summary['built'] == 1
    assert [f['id'] for f in summary['failed']] == [bad.sample_id]
    assert 'not finite' in summary['failed'][0]['error']
    assert cache.load(bad) is None


@pytest.mark.slow
def test_cache_sharing_benchmark_quick():
    """benchmarks/bench_cache_sharing.py --quick: one JSON line whose counts
    hold (every distinct pair solved once, none in the second sweep)."""
    import json
    import subprocess
    import sys

    from conftest import REPO
    res = subprocess.run(
        [sys.executable, str(REPO / 'benchmarks' / 'bench_cache_sharing.py'),
         '--quick', '--load-repeats', '1'], capture_output=True, text=True,
        timeout=300, cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS='2'))
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1
    obj = json.loads(lines[0])
    fig, base = obj['figures'], obj['baseline']
    assert fig['pairs_solved'] == fig['distinct_pairs'] == fig['pair_files']
    assert fig['pairs_solved_second_sweep'] == 0
    assert base['old_cache_pairs_solved'] > fig['pairs_solved']
    assert [r['pairs_computed'] for r in obj['runs']] == [
        r['distinct_new'] for r in obj['runs']]
    assert len(obj['runs']) == 12 and obj['input']['quick'] is True


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
    ok = FlowCache(str(linked_root), FAST, SamplingConfig(num_instances=4))
    assert ok.load_or_build(rec)['flows'].shape[0] == 4
