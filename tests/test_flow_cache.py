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


def test_float16_on_disk_float32_back(tmp_path):
    rec = make_clip(tmp_path / 'data')
    cache = cache_for(tmp_path)
    out = cache.load_or_build(rec)
    with np.load(cache.path_for(rec)) as data:
        assert data['flows'].dtype == np.float16
    n, h, w = 4, 32, 32
    assert os.path.getsize(cache.path_for(rec)) < n * h * w * 3 * 2 + 4096
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
    # The rebuilt file replaced the old one: the old config is now stale.
    assert base.load(rec) is None


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
    # A different image (different size) in place of a frame.
    cv2.imwrite(used, np.zeros((48, 48), np.uint8))
    after = cache.load_or_build(rec)
    assert len(counter) == 3
    assert not np.allclose(before['flows'], after['flows'])
    # A changed annotation (apex) changes the clip identity as well.
    rec.apex = 3
    assert cache.load(rec) is None


def test_garbage_file_is_a_miss_and_rebuilt(tmp_path, counter):
    rec = make_clip(tmp_path / 'data')
    cache = cache_for(tmp_path)
    good = cache.load_or_build(rec)
    path = cache.path_for(rec)
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
    path = cache.path_for(rec)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 30, 10):
        path.write_bytes(data[:cut])
        assert cache.load(rec) is None


def test_right_key_wrong_shape_is_not_accepted(tmp_path):
    rec = make_clip(tmp_path / 'data')
    cache = cache_for(tmp_path)
    out = cache.load_or_build(rec)
    np.savez(cache.path_for(rec), key=np.array(cache.key_for(rec)),
             flows=np.zeros((3, 32, 32, 3), np.float16),
             positions=np.asarray(out['positions']),
             frame_numbers=np.asarray(out['frame_numbers']))
    assert cache.load(rec) is None
    np.savez(cache.path_for(rec), key=np.array(cache.key_for(rec)),
             flows=np.full((4, 32, 32, 3), np.nan, np.float16),
             positions=np.asarray(out['positions']),
             frame_numbers=np.asarray(out['frame_numbers']))
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
    folder = cache.path_for(rec).parent
    assert not cache.path_for(rec).exists()
    assert list(folder.iterdir()) == []  # the temp file was removed
    assert cache.load(rec) is None


def test_leftover_temp_file_is_ignored(tmp_path, counter):
    rec = make_clip(tmp_path / 'data')
    cache = cache_for(tmp_path)
    cache.load_or_build(rec)
    path = cache.path_for(rec)
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
                       label='x', onset=1, apex=None, offset=2)
            for i in ids]
    paths = [cache.path_for(r) for r in recs]
    root = (tmp_path / 'cache').resolve()
    for p in paths:
        assert p.resolve().parent.parent.parent == root
        assert '/' not in p.name and not p.name.startswith('.')
    assert len(set(paths)) == len(paths)
    assert paths[-1].name == 'EP02_01f.npz'


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
        os.path.getsize(cache.path_for(r)) for r in recs)
    again = extract_all(recs, cache, workers=workers, progress=False)
    assert again['built'] == 0 and again['reused'] == 4
    assert again['failed'] == []
    assert again['bytes'] == summary['bytes']


# ----------------------------------------------------- tools/extract_flows.py


def _load_tool():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / 'tools' / 'extract_flows.py'
    spec = importlib.util.spec_from_file_location('extract_flows_tool', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_extract_flows_tool_on_a_synthetic_set(tmp_path, capsys):
    import json

    from raicl_mm.synthetic.generator import SyntheticConfig, generate
    data = tmp_path / 'synthetic'
    generate(str(data), SyntheticConfig(num_subjects=2, clips_per_subject=2,
                                        size=48, min_len=9, max_len=12,
                                        supersample=1), workers=1)
    cfg_file = tmp_path / 'flows_cfg.py'
    cfg_file.write_text(
        "protocol = 'casme2_3cls'\n"
        f"data_roots = dict(casme2={str(data / 'Cropped')!r})\n"
        "ann_files = dict(casme2="
        f"{str(data / 'CASME2-coding-synthetic.xlsx')!r})\n"
        "flow_cfg = dict(method='tvl1', size=(32, 32))\n"
        "sampling = dict(strategy='middle', num_instances=4)\n"
        f"flow_cache = {str(tmp_path / 'cache')!r}\n")
    tool = _load_tool()
    argv = [str(cfg_file), '--workers', '1', '--no-progress',
            '--cfg-options', "flow_cfg.method=farneback"]
    assert tool.main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary['clips'] == 4 and summary['built'] == 4
    assert summary['failed'] == [] and summary['bytes'] > 0
    assert summary['flow_cfg']['method'] == 'farneback'  # --cfg-options won
    files = sorted((tmp_path / 'cache').rglob('*.npz'))
    assert len(files) == 4
    # Second run reuses everything.
    assert tool.main(argv) == 0
    assert json.loads(capsys.readouterr().out)['reused'] == 4
    # An unreadable frame makes that clip fail, the run goes on, exit is 1.
    clip_dir = sorted(p for p in (data / 'Cropped').glob('*/*')
                      if p.is_dir())[0]
    for frame in clip_dir.glob('*.jpg'):
        frame.write_bytes(b'not a jpeg')
    assert tool.main(argv + ['sampling.num_instances=3']) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary['clips'] == 4 and summary['built'] == 3
    assert len(summary['failed']) == 1
    assert 'could not be decoded' in summary['failed'][0]['error']


def test_extract_flows_tool_rejects_incomplete_config(tmp_path, capsys):
    cfg_file = tmp_path / 'bad.py'
    cfg_file.write_text("protocol = 'cde'\n")
    assert _load_tool().main([str(cfg_file)]) == 2
    assert 'flow_cache' in capsys.readouterr().err
