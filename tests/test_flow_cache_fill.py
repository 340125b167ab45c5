"""Filling the flow cache for many clips (raicl_mm/flow/cache_fill.py):
extract_all in one process and a pool, failures named, concurrent writers,
an unwritable cache; tools/extract_flows.py; the Table 3 sweep computing
each distinct pair once; the cache-sharing benchmark."""
import os

import pytest

from raicl_mm.datasets.instance_sets import sampled_cache
from raicl_mm.datasets.sampling import SamplingConfig
from raicl_mm.flow import cache as fc
from raicl_mm.flow import cache_pairs as cp
from raicl_mm.flow.cache_fill import extract_all

from test_flow_cache import FAST, cache_for, make_clip, pair_files


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
        cache = sampled_cache(str(tmp_path / 'cache'), FAST, SamplingConfig(
            **dict(sampling, num_instances=4)))
        want = {(r.sample_id, p) for r in records for p in cache.positions(r)}
        summary = extract_all(records, cache, workers=1, progress=False)
        assert summary['failed'] == [], name
        assert summary['pairs_computed'] == len(want - seen), name
        assert summary['pairs_reused'] == len(want & seen), name
        seen |= want
        # Today's cache: one file per clip, keyed by the sampling, so a
        # config whose key differs from the file's rebuilds the whole set.
        for r in records:
            key = cache.positions_fn.sampling_cfg.key_dict()
            if old_slot.get(r.sample_id) != key:
                old_pairs += len(cache.positions(r))
                old_slot[r.sample_id] = key
    assert len(solved) == len(set(solved)) == len(seen)
    assert old_pairs > len(seen)
    assert len(list(cache.flow_dir.rglob('*.npy'))) == len(seen)
    for name, sampling in sweep:  # the whole sweep again: nothing solved
        cache = sampled_cache(str(tmp_path / 'cache'), FAST, SamplingConfig(
            **dict(sampling, num_instances=4)))
        assert extract_all(records, cache, workers=1,
                           progress=False)['pairs_computed'] == 0
    assert len(solved) == len(seen)


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


def test_unwritable_cache_is_one_line_naming_the_folder(tmp_path,
                                                        monkeypatch):
    """Issue 10 item 9: no 'need at least one array to concatenate'."""
    rec = make_clip(tmp_path / 'data')
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    cache = sampled_cache(str(blocker / 'cache'), FAST,
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

    monkeypatch.setattr(cp.tempfile, 'mkstemp', refuse)
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
        timeout=300, cwd=REPO, env=dict(os.environ))  # threads: conftest.THREADS
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
