"""The evidence grid at the paper's schedule, in one call on one GPU.

    python benchmarks/gpu/evidence.py --out OUTDIR --device cuda --budget-s 240 \
        --grids v3:cpu v3:paper v2:paper v2:cpu
    python benchmarks/gpu/evidence.py --out OUTDIR --tiny --device cpu   # test

The rows of ``tools/ablation.py --grid v3`` and ``--grid v2`` (M1, M2, M4,
M5, M6, the label-shuffled control, the IRC readings M6-fcdetach and
M6-zscore, the noise floor M2-reinit) at the paper's schedule: 100 epochs,
tau = 0.99 (Eq. 3 as published), Adam 1e-3 with ExponentialLR 0.9; 5 seeds,
k = 2 folds by subject (split seed 0), the statistics and the decision rule of
docs/benchmark.md. Benchmark v3 first, then v2; rows in the order of the
declared questions (M2, M6, the noise floor, M5, M4, M1, the IRC readings,
the control), each with all its seeds, so that a budget cut leaves whole rows.
Fold-runs train ``--jobs`` at a time in worker processes that share the GPU.

Writes into ``--out``: ``ablation_{v3,v2}_paper.json`` / ``.md`` (the records
and tables of :mod:`raicl_mm.protocol.ablation`) and ``evidence.json`` (the
device, the settings, the wall time of each step, what was cut). Exit status
0 when every step ran (a budget cut is recorded, not a failure), 1 when a
step failed.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
import traceback
from typing import Dict, List

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

#: The paper's schedule (Sec. 4.1): 100 epochs, tau = 0.99, Adam 1e-3 with an
#: exponential decay of 0.9 per epoch; validation (and the teacher's score)
#: at the end only; a log line every 10 iterations.
PAPER_SCHEDULE = [
    'model.tau=0.99', 'train_cfg.max_epochs=100', 'train_cfg.val_begin=100',
    'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=100',
    'param_scheduler.0.gamma=0.9', 'default_hooks.logger.interval=10',
    'log_processor.window_size=10']
#: The CPU schedule of benchmark v3 (configs/benchmark_v3/m6_ours.py; the
#: same options bring v2 to it): 16 epochs, tau = 0.9, decay 0.92 per epoch.
CPU_SCHEDULE = [
    'model.tau=0.9', 'train_cfg.max_epochs=16', 'train_cfg.val_begin=16',
    'train_cfg.val_interval=16', 'default_hooks.checkpoint.interval=16',
    'param_scheduler.0.gamma=0.92']
SCHEDULES = {'paper': PAPER_SCHEDULE, 'cpu': CPU_SCHEDULE}
#: Row order: the declared questions first (docs/benchmark.md).
ROW_ORDER = ['M2', 'M6', 'M2-reinit', 'M5', 'M4', 'M1', 'M6-zscore',
             'M6-fcdetach', 'shuffled']
LOADERS = ('train', 'val', 'test')


def tiny_options(name: str) -> List[str]:
    """A set that generates and trains in seconds on a CPU (the test)."""
    opts = ['train_cfg.max_epochs=1', 'train_cfg.val_begin=1',
            'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1',
            'model.tau=0.99']
    for loader in LOADERS:
        pre = f'{loader}_dataloader.dataset'
        opts += [f'{pre}.synthetic.num_subjects=4',
                 f'{pre}.synthetic.clips_range=[3,4]',
                 f'{pre}.synthetic.size=32', f'{pre}.synthetic.supersample=1',
                 f'{pre}.synthetic.min_len=6', f'{pre}.synthetic.max_len=9',
                 f'{pre}.flow_cfg.size=[32,32]',
                 f'{pre}.sampling.num_instances=4']
    return opts


def _grid(name: str, tiny: bool):
    from raicl_mm.protocol.ablation import GRIDS, Method
    rows = {m.name: m for m in GRIDS[name]}
    order = ROW_ORDER[:2] if tiny else ROW_ORDER
    methods = [rows[n] for n in order]
    if not tiny:
        return methods
    # Tiny: its own data folders and cache, so no real set is touched.
    out = []
    for m in methods:
        opts = list(m.cfg_options)
        for loader in LOADERS:
            pre = f'{loader}_dataloader.dataset'
            opts += [f'{pre}.synthetic.out=data/gpu_tiny_{name}',
                     f'{pre}.data_roots.casme2=data/gpu_tiny_{name}/Cropped',
                     f'{pre}.ann_files.casme2=data/gpu_tiny_{name}/'
                     'CASME2-coding-synthetic.xlsx',
                     f'{pre}.flow_cache=cache/gpu_tiny_{name}']
        out.append(Method(m.name, m.config, opts))
    return out


def _prepare_flows(methods, extra: List[str], workers: int, log) -> float:
    """Generate each config's set and fill its flow cache once, before the
    fold-runs start (so that they do not all compute the same flows)."""
    t0 = time.perf_counter()
    seen = set()
    for m in methods:
        key = (m.config, tuple(o for o in m.cfg_options if 'synthetic' in o
                               or 'flow' in o or 'data_roots' in o))
        if key in seen:
            continue
        seen.add(key)
        cmd = [sys.executable, osp.join(REPO, 'tools', 'extract_flows.py'),
               m.config, '--workers', str(workers), '--no-progress',
               '--cfg-options', *[o for o in m.cfg_options if '{' not in o],
               *extra]
        rc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if rc.returncode != 0:
            raise RuntimeError(f'extract_flows {m.config}: exit '
                               f'{rc.returncode}: {rc.stderr.strip()[-400:]}')
        log(f'flows ready: {m.config} {rc.stdout.strip()[-200:]}')
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', required=True)
    p.add_argument('--device', default='cuda', choices=['cuda', 'cpu'])
    p.add_argument('--tiny', action='store_true')
    p.add_argument('--budget-s', type=float, default=None,
                   help='no fold-run starts after this many seconds from the '
                   'start (default 240; none with --tiny)')
    p.add_argument('--reserve-s', type=float, default=None,
                   help='no fold-run starts in the last this many seconds of '
                   'the budget, so that the runs under way finish and are '
                   'recorded (default 100; 0 with --tiny)')
    p.add_argument('--jobs', type=int, default=None,
                   help='fold-runs at once (default: CPU cores - 2, at most '
                   '14; 2 with --tiny)')
    p.add_argument('--seeds', type=int, nargs='+', default=None)
    p.add_argument('--grids', nargs='+', default=None,
                   help='GRID:SCHEDULE in order (GRID of tools/ablation.py '
                   "--grid, SCHEDULE 'paper' or 'cpu'); a budget cut leaves "
                   'the later ones out; default v3:paper v2:paper, with '
                   '--tiny v3:paper)')
    args = p.parse_args(argv)
    os.chdir(REPO)  # the configs' data folders are relative to the repo
    os.makedirs(args.out, exist_ok=True)
    if args.device == 'cpu':
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    import torch

    from raicl_mm.protocol.ablation import device_name, run_ablation
    start = time.time()
    budget = args.budget_s if args.budget_s is not None else (
        None if args.tiny else 240.0)
    reserve = args.reserve_s if args.reserve_s is not None else (
        0.0 if args.tiny else 100.0)
    deadline = (None if budget is None
                else start + max(float(budget) - float(reserve), 0.0))
    jobs = args.jobs or (2 if args.tiny else
                         max(1, min(14, (os.cpu_count() or 4) - 2)))
    seeds = args.seeds or ([0, 1] if args.tiny else [0, 1, 2, 3, 4])
    # RAICL_EVIDENCE_GRIDS: the order for a suite run (benchmarks/gpu/run.sh)
    env_grids = os.environ.get('RAICL_EVIDENCE_GRIDS', '').split()
    grids = args.grids or (['v3:paper'] if args.tiny else
                           env_grids or ['v3:paper', 'v2:paper'])
    summary: Dict = dict(
        device=device_name(), cuda=torch.cuda.is_available(),
        torch=torch.__version__, tiny=bool(args.tiny), jobs=jobs, seeds=seeds,
        k_folds=2, fold_seed=0, budget_s=budget, reserve_s=reserve,
        schedules=SCHEDULES if not args.tiny else 'tiny', grids={})
    if args.device == 'cuda' and not torch.cuda.is_available():
        summary['error'] = 'CUDA requested but torch.cuda.is_available() is False'
        _write(args.out, summary)
        print(summary['error'], file=sys.stderr)
        return 1
    failed = False
    logs: List[str] = []

    def log(msg: str) -> None:
        line = f'[{time.time() - start:6.1f} s] {msg}'
        logs.append(line)
        print(line, flush=True)

    for spec in grids:
        name, _, schedule = spec.partition(':')
        schedule = schedule or 'paper'
        entry: Dict = dict(results=f'ablation_{name}_{schedule}.json',
                           schedule=schedule)
        summary['grids'][spec] = entry
        t0 = time.perf_counter()
        try:
            if schedule not in SCHEDULES:
                raise ValueError(f'--grids {spec}: schedule must be one of '
                                 f'{sorted(SCHEDULES)}')
            methods = _grid(name, args.tiny)
            extra = (tiny_options(name) if args.tiny
                     else list(SCHEDULES[schedule]))
            entry['flow_s'] = round(_prepare_flows(
                methods, extra, 1 if args.tiny else max(1, os.cpu_count() or 2),
                log), 1)
            left = None if deadline is None else deadline - time.time()
            if left is not None and left <= 0:
                entry['cut'] = 'budget spent before this grid started'
                continue
            res = run_ablation(
                methods, seeds, 2, osp.join(args.out, entry['results']),
                osp.join('work_dirs', 'gpu_evidence', f'{name}_{schedule}'),
                extra_options=extra,
                attention=False, log=log, jobs=jobs, budget_s=left)
            done = {(r['method'], r['seed']) for r in res['runs']}
            entry['runs'] = len(done)
            entry['missing'] = [f'{m.name} seed {s}' for m in methods
                                for s in seeds if (m.name, s) not in done]
            entry['teacher_gap'] = {
                r['method'] + f' seed {r["seed"]}':
                round(r['uf1'] - r['target_uf1'], 2)
                for r in res['runs'] if r.get('target_uf1') is not None}
        except Exception as err:  # noqa: BLE001 - recorded, next grid runs
            failed = True
            entry['error'] = f'{type(err).__name__}: {err}'
            entry['traceback'] = traceback.format_exc()[-2000:]
            log(f'{name}: {entry["error"]}')
        entry['wall_s'] = round(time.perf_counter() - t0, 1)
        _write(args.out, summary)
    summary['wall_s'] = round(time.time() - start, 1)
    summary['log_tail'] = logs[-40:]
    if torch.cuda.is_available():
        summary['gpu_name'] = torch.cuda.get_device_name(0)
    _write(args.out, summary)
    return 1 if failed else 0


def _write(out: str, summary: Dict) -> None:
    with open(osp.join(out, 'evidence.json'), 'w', encoding='utf-8') as fh:
        json.dump(summary, fh, indent=1)


if __name__ == '__main__':
    sys.exit(main())
