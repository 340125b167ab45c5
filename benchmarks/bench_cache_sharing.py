#!/usr/bin/env python
"""One flow cache for the Table 3 sweep: the 12 ablation configs, one after
another, against the per-clip cache they had before.

    python benchmarks/bench_cache_sharing.py               # the synthetic config's set
    python benchmarks/bench_cache_sharing.py --quick       # CI size, seconds
    python benchmarks/bench_cache_sharing.py --subjects 2 --clips 4 --time-old

What runs: each of ``configs/ablations/m1..m12`` is read (``Config.fromfile``)
and its ``sampling`` taken from its dataset dict; the data and flow settings
are those of ``configs/raicl_synthetic.py`` (its embedded synthetic set,
CASME II layout, TV-L1 at 64 px; ``--subjects``/``--clips`` shrink the set).
For each config in turn ``extract_all`` fills ONE per-pair cache (cold at the
start) on all cores.

* figures: pairs solved per config and in total (must equal the number of
  distinct (clip, frame) pairs of the 12 samplings: checked, the script exits
  1 otherwise), the sweep's flow seconds; a second sweep (everything cached,
  0 pairs solved) for the reading cost.
* baseline: today's cache before this change -- one ``.npz`` per clip keyed
  by the sampling, so a config rebuilds a clip's whole set whenever the file
  there holds another sampling (evicted by the config before). Its pairs are
  counted by replaying that keying over the same sweep, and its time is
  pairs x this run's measured seconds per solved pair. ``--time-old`` also
  runs the old code itself (from git, ``OLD_COMMIT``) cold, in one process,
  beside the new one in one process, to check that estimate.
* load: reading one fold's instance sets (M6, ``middle`` N=16, all clips)
  from the per-pair ``.npy`` files, against the old per-clip ``.npz``
  holding the same flows and a per-pair ``.npz`` layout (page cache warm, as
  a training process reads them once into memory).

Goal: each distinct pair solved exactly once; ratio = baseline / new flow
time.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import time
import types

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from benchmarks import common  # noqa: E402

#: The cache before the per-pair layout (one .npz per clip and sampling).
OLD_COMMIT = '641b0ab'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--quick', action='store_true',
                   help='CI size: 2 subjects x 2 clips at 48 px, Farneback '
                   'at 32 px, N=4')
    p.add_argument('--config', default='configs/raicl_synthetic.py',
                   help='the config whose data and flow settings are used')
    p.add_argument('--subjects', type=int, default=None,
                   help='synthetic subjects (default: the config\'s)')
    p.add_argument('--clips', type=int, default=None,
                   help='clips per subject (default: the config\'s)')
    p.add_argument('--instances', type=int, default=None,
                   help='override num_instances of every sampling')
    p.add_argument('--method', default=None,
                   help='override flow_cfg.method (default: the config\'s)')
    p.add_argument('--workers', type=int, default=None,
                   help='extract_all processes (default: usable cores)')
    p.add_argument('--time-old', action='store_true',
                   help='also time the old per-clip cache (git '
                   f'{OLD_COMMIT}) and the new one in one process each')
    p.add_argument('--load-repeats', type=int, default=5)
    return p.parse_args(argv)


def ablation_samplings(repo):
    from mmengine.config import Config

    from raicl_mm.engine.config import data_settings
    out = []
    for i in range(1, 13):
        path, = [f for f in sorted(os.listdir(osp.join(repo, 'configs',
                                                       'ablations')))
                 if f.startswith(f'm{i}_')]
        cfg = Config.fromfile(osp.join(repo, 'configs', 'ablations', path))
        out.append((path[:-3], dict(data_settings(cfg)['sampling'])))
    return out


def synthetic_records(args, tmp):
    """The config's synthetic set (reduced on request) and its settings."""
    from mmengine.config import Config

    from raicl_mm.datasets.dataset import prepare_synthetic
    from raicl_mm.datasets.sources import build_records
    from raicl_mm.engine.config import data_settings
    ds = data_settings(Config.fromfile(osp.join(common.REPO, args.config)))
    spec = dict(ds['synthetic'])
    if args.quick:
        spec.update(num_subjects=2, clips_per_subject=2, size=48, min_len=9,
                    max_len=16, supersample=1)
    if args.subjects:
        spec['num_subjects'] = args.subjects
    if args.clips:
        spec['clips_per_subject'] = args.clips
    spec['out'] = osp.join(tmp, 'synthetic')
    prepare_synthetic(spec)
    roots = dict(casme2=osp.join(spec['out'], 'Cropped'))
    sheets = dict(casme2=osp.join(spec['out'],
                                  'CASME2-coding-synthetic.xlsx'))
    records = build_records(ds['protocol'], roots, sheets).records
    flow = dict(ds['flow_cfg'])
    if args.quick:
        flow.update(method='farneback', size=(32, 32))
    if args.method:
        flow['method'] = args.method
    spec.pop('out')
    return records, flow, spec


def old_cache_module():
    """The cache module of ``OLD_COMMIT``, loaded beside the new one."""
    src = subprocess.run(['git', 'show', f'{OLD_COMMIT}:raicl_mm/flow/cache.py'],
                         cwd=common.REPO, capture_output=True, text=True,
                         check=True).stdout
    mod = types.ModuleType('raicl_mm.flow._cache_v1')
    mod.__package__ = 'raicl_mm.flow'
    sys.modules[mod.__name__] = mod
    exec(compile(src, f'{OLD_COMMIT}:raicl_mm/flow/cache.py', 'exec'),
         mod.__dict__)
    return mod


def replay_old_keying(sweep_positions):
    """Pairs the old per-clip cache solves over the sweep (one slot a clip,
    keyed by the sampling; another sampling's file is rebuilt whole)."""
    slot, pairs, per_config = {}, 0, []
    for key, positions in sweep_positions:
        n = 0
        for sid, pos in positions.items():
            if slot.get(sid) != key:
                n += len(pos)
                slot[sid] = key
        per_config.append(n)
        pairs += n
    return pairs, per_config


def time_loads(records, cache, flow_cfg, sampling_cfg, tmp, repeats):
    """ms per clip to read a fold's instance sets.

    ``api_*``: the cache's own ``load`` (positions, frame stats, keys,
    validation), new and old (the old module from git, its files written
    by its own ``store`` from the same flows). ``raw_*``: the file reads
    alone, three layouts holding the same float16 flows.
    """
    import numpy as np
    sets = [cache.load(r) for r in records]
    out = {}
    try:
        old = old_cache_module()
    except (OSError, subprocess.CalledProcessError):  # no git history here
        old = None
    if old is not None:
        old_cache = old.FlowCache(osp.join(tmp, 'old_layout_api'), flow_cfg,
                                  sampling_cfg)
        for r, st in zip(records, sets):
            old_cache.store(r, st['flows'], st['positions'])
    raw = {name: osp.join(tmp, name) for name in ('pair_npy', 'pair_npz',
                                                  'clip_npz')}
    for folder in raw.values():
        os.makedirs(folder)
    for i, st in enumerate(sets):
        f16 = st['flows'].astype(np.float16)
        np.savez(osp.join(raw['clip_npz'], f'{i}.npz'), flows=f16)
        for j in range(len(f16)):
            np.save(osp.join(raw['pair_npy'], f'{i}_{j}.npy'), f16[j])
            np.savez(osp.join(raw['pair_npz'], f'{i}_{j}.npz'), flow=f16[j])

    def api_new():
        for r in records:
            assert cache.load(r) is not None

    def api_old():
        for r in records:
            assert old_cache.load(r) is not None

    def raw_pair_npy():
        for i, st in enumerate(sets):
            np.stack([np.load(osp.join(raw['pair_npy'], f'{i}_{j}.npy'))
                      for j in range(len(st['positions']))])

    def raw_pair_npz():
        for i, st in enumerate(sets):
            fl = []
            for j in range(len(st['positions'])):
                with np.load(osp.join(raw['pair_npz'], f'{i}_{j}.npz')) as d:
                    fl.append(d['flow'])
            np.stack(fl)

    def raw_clip_npz():
        for i in range(len(sets)):
            with np.load(osp.join(raw['clip_npz'], f'{i}.npz')) as d:
                d['flows']

    fns = [('api_new', api_new), ('raw_pair_npy', raw_pair_npy),
           ('raw_pair_npz', raw_pair_npz), ('raw_clip_npz', raw_clip_npz)]
    if old is not None:
        fns.insert(1, ('api_old', api_old))
    for name, fn in fns:
        fn()  # warm the page cache (a training process reads them once)
        runs = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - t)
        out[name] = 1e3 * common.median(runs) / len(records)
    return out


def main(argv=None):
    out = common.json_stdout()
    args = parse_args(argv)
    workers = args.workers or common.usable_cores()
    from raicl_mm.datasets.instance_sets import sampled_cache
    from raicl_mm.datasets.sampling import SamplingConfig
    from raicl_mm.flow import FlowConfig
    from raicl_mm.flow.cache_fill import extract_all
    tmp = tempfile.mkdtemp(prefix='bench_cache_sharing_')
    try:
        t0 = time.perf_counter()
        records, flow, spec = synthetic_records(args, tmp)
        print(f'{len(records)} clips ready in {time.perf_counter() - t0:.1f}'
              ' s', file=sys.stderr)
        flow_cfg = FlowConfig(**flow)
        sweep = ablation_samplings(common.REPO)
        if args.instances or args.quick:
            n = args.instances or 4
            sweep = [(name, dict(s, num_instances=n)) for name, s in sweep]
        root = osp.join(tmp, 'cache')
        runs, seen, sweep_positions = [], set(), []
        solved = seconds = 0.0
        for name, sampling in sweep:
            cache = sampled_cache(root, flow_cfg, SamplingConfig(**sampling))
            positions = {r.sample_id: cache.positions(r) for r in records}
            want = {(sid, p) for sid, pos in positions.items() for p in pos}
            sweep_positions.append((json.dumps(
                cache.positions_fn.sampling_cfg.key_dict(), sort_keys=True),
                positions))
            summ = extract_all(records, cache, workers=workers,
                               progress=False)
            if summ['failed']:
                raise SystemExit(f'{name}: extraction failed: '
                                 f'{summ["failed"]}')
            new = len(want - seen)
            seen |= want
            solved += summ['pairs_computed']
            seconds += summ['seconds']
            runs.append(dict(what=name, strategy=sampling['strategy'],
                             pairs_wanted=len(want), distinct_new=new,
                             pairs_computed=summ['pairs_computed'],
                             pairs_reused=summ['pairs_reused'],
                             seconds=summ['seconds'],
                             load_avg=common.loadavg()))
            print(f'{name}: {summ["pairs_computed"]} solved, '
                  f'{summ["pairs_reused"]} reused, {summ["seconds"]} s',
                  file=sys.stderr)
            if summ['pairs_computed'] != new:
                raise SystemExit(f'{name}: solved {summ["pairs_computed"]} '
                                 f'pairs, {new} were new')
        distinct = len(seen)
        if solved != distinct:
            raise SystemExit(f'solved {solved} pairs, {distinct} distinct')
        # Everything cached: the sweep again reads only.
        t = time.perf_counter()
        again = 0
        for name, sampling in sweep:
            cache = sampled_cache(root, flow_cfg, SamplingConfig(**sampling))
            again += extract_all(records, cache, workers=workers,
                                 progress=False)['pairs_computed']
        warm_sweep = time.perf_counter() - t
        if again:
            raise SystemExit(f'the second sweep solved {again} pairs')
        old_pairs, old_per_config = replay_old_keying(sweep_positions)
        for run, n in zip(runs, old_per_config):
            run['old_cache_pairs'] = n
        # Each extract_all call costs a fixed start (process pool, key
        # checks) plus a cost per solved pair: fitted over the 12 calls, the
        # old keying's time is 12 starts + its pairs at that cost.
        import numpy as np
        per_pair, start_s = np.polyfit([r['pairs_computed'] for r in runs],
                                       [r['seconds'] for r in runs], 1)
        per_pair = max(float(per_pair), 0.0)
        start_s = max(float(start_s), 0.0)
        figures = dict(
            distinct_pairs=distinct, pairs_solved=solved,
            pairs_solved_second_sweep=again,
            flow_seconds=seconds, fitted_seconds_per_solved_pair=per_pair,
            fitted_seconds_per_call=start_s,
            second_sweep_seconds=warm_sweep,
            pair_files=sum(len(f) for _, _, f in os.walk(root)) - 1)
        baseline = dict(old_cache_pairs_solved=old_pairs,
                        old_cache_flow_seconds_estimated=len(runs) * start_s +
                        old_pairs * per_pair)
        m6 = SamplingConfig(**dict(sweep[5][1]))
        loads = time_loads(records, sampled_cache(root, flow_cfg, m6),
                           flow_cfg, m6, tmp, args.load_repeats)
        figures['load_ms_per_clip'] = loads['api_new']
        for name in ('raw_pair_npy', 'raw_pair_npz', 'raw_clip_npz'):
            figures[f'{name}_ms_per_clip'] = loads[name]
        if 'api_old' in loads:
            baseline['old_cache_load_ms_per_clip'] = loads['api_old']
        if args.time_old:
            old = old_cache_module()
            t_old = t_new = 0.0
            for name, sampling in sweep:
                sc = SamplingConfig(**sampling)
                t = time.perf_counter()
                summ = old.extract_all(records, old.FlowCache(
                    osp.join(tmp, 'old_cache'), flow_cfg, sc), workers=1,
                    progress=False)
                t_old += time.perf_counter() - t
                t = time.perf_counter()
                extract_all(records, sampled_cache(osp.join(tmp, 'new_1proc'),
                                                   flow_cfg, sc),
                            workers=1, progress=False)
                t_new += time.perf_counter() - t
                runs.append(dict(what=f'{name} one process: old vs new',
                                 old_built=summ['built'],
                                 old_cumulative_s=round(t_old, 3),
                                 new_cumulative_s=round(t_new, 3),
                                 load_avg=common.loadavg()))
            figures['one_process_flow_seconds'] = t_new
            baseline['old_cache_one_process_flow_seconds'] = t_old
        ratio = baseline['old_cache_flow_seconds_estimated'] / seconds
        res = common.result(
            what='Table 3 sweep (configs/ablations m1..m12) over one per-pair '
                 'flow cache vs the old per-clip cache',
            inputs=dict(quick=args.quick, config=args.config,
                        clips=len(records), synthetic=spec,
                        flow_cfg=flow_cfg.key_dict(), workers=workers,
                        samplings={n: s for n, s in sweep},
                        time_old=args.time_old),
            device=common.machine(),
            figures=figures, baseline=baseline, ratio=ratio,
            goal='every distinct (clip, frame) pair solved exactly once over '
                 'the 12 configs; ratio = old / new flow time > 1',
            runs=runs,
            notes=('old pairs are replayed from the old keying (one slot per '
                   'clip, rebuilt when another sampling wrote it); old '
                   'seconds = 12 calls x fitted_seconds_per_call + old pairs '
                   'x fitted_seconds_per_solved_pair (seconds = a + b x pairs '
                   'fitted over this run\'s 12 calls); --time-old runs the '
                   'old code itself'))
        common.emit(res, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
