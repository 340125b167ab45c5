"""The flow cache (raicl_mm/flow/cache.py): hits, keys, stale frames,
sharing pairs between samplings, flows at any positions, what float16 holds.

The pair files themselves (corrupt, hostile, interrupted, linked) are
tested in test_flow_cache_pairs.py, the bulk fill (extract_all, the
extract_flows tool) in test_flow_cache_fill.py; both use this file's
helpers (make_clip, cache_for, counter, pair_files).
"""
import os

import cv2
import numpy as np
import pytest

from raicl_mm.datasets.instance_sets import SampledPositions, sampled_cache
from raicl_mm.datasets.records import ClipRecord
from raicl_mm.datasets.sampling import SamplingConfig, clip_positions
from raicl_mm.flow import FlowConfig
from raicl_mm.flow import cache as fc
from raicl_mm.flow.cache import FlowCache
from raicl_mm.flow.cache_fill import extract_all

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
    return sampled_cache(str(tmp_path / 'cache'), flow_cfg,
                         SamplingConfig(**sampling))


def test_build_then_hit_reads_without_recomputing(tmp_path, counter):
    rec = make_clip(tmp_path / 'data')
    cache = cache_for(tmp_path)
    assert cache.load(rec) is None
    first = cache.load_or_build(rec)
    assert counter == [rec.sample_id]
    assert first['flows'].shape == (4, 32, 32, 3)
    assert first['flows'].dtype == np.float32
    assert first['positions'] == clip_positions(
        rec, cache.positions_fn.sampling_cfg)
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


def test_switching_strategies_never_recomputes(tmp_path, counter):
    rec = make_clip(tmp_path / 'data', n=20)
    total = 0
    for strategy in ('middle', 'apex_single', 'full', 'middle', 'uniform'):
        cache = cache_for(tmp_path, strategy=strategy)
        out = cache.load_or_build(rec)
        total += cache.stats['pairs_computed']
        assert out['positions'] == clip_positions(
            rec, cache.positions_fn.sampling_cfg)
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



def test_positions_are_handed_to_the_cache(tmp_path, counter):
    """The cache knows no sampling: a positions function chooses a clip's
    instance set; without one, pairs at given positions still work."""
    rec = make_clip(tmp_path / 'data')
    bare = FlowCache(str(tmp_path / 'cache'), FAST)
    flows = bare.flows_at(rec, [1, 2])
    assert flows.shape == (2, 32, 32, 3) and len(counter) == 1
    assert bare.build_status(rec, [1, 2])[1:] == (0, 2)
    for needs_positions in (bare.load, bare.build, bare.key_for):
        with pytest.raises(ValueError, match='no positions function'):
            needs_positions(rec)
    with pytest.raises(TypeError, match='sampled_cache'):
        FlowCache(str(tmp_path / 'cache'), FAST, SamplingConfig())
    # Any record -> positions callable; the datasets' is SampledPositions.
    plain = FlowCache(str(tmp_path / 'cache'), FAST, lambda r: [2, 1])
    assert plain.load(rec)['positions'] == [2, 1] and len(counter) == 1
    sampled = cache_for(tmp_path)
    assert isinstance(sampled.positions_fn, SampledPositions)
    assert sampled.positions(rec) == clip_positions(
        rec, SamplingConfig(num_instances=4))
    # Pickled (a dataset copied to a worker): the sampling travels, the
    # motion function (a closure over the cache) stays behind.
    import pickle
    sampled.positions_fn.motion_fn = lambda r: [0.0] * r.num_frames
    copy = pickle.loads(pickle.dumps(sampled))
    assert copy.positions_fn.motion_fn is None
    assert copy.positions(rec) == sampled.positions(rec)
    assert sampled.positions_fn.motion_fn is not None
