#!/usr/bin/env python
"""Run a whole leave-one-subject-out protocol, resumably, then report it.

    python tools/loso.py CONFIG [--work-dir DIR] [--folds K ...] [--workers N]

* Prepares the data once (the synthetic default when the config asks for it,
  then every clip's flow instances into the cache, on all cores).
* Writes ``WORK_DIR/loso_plan.json`` (folds, classes, config) and runs each
  fold as ``tools/train.py CONFIG --fold KEY`` in ``WORK_DIR/fold_KEY/`` --
  a process per fold, N at a time (on GPUs: one GPU per worker).
* A fold with ``predictions.json`` is finished and skipped; a fold with a
  checkpoint is resumed from it; a failed fold is reported and the others go
  on. Exit status 0 only when every fold finished.
* Then ``tools/loso_report.py WORK_DIR`` pools the predictions of all folds.
"""
import argparse
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from mmengine.config import DictAction  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Leave-one-subject-out runner')
    p.add_argument('config')
    p.add_argument('--work-dir', help='default: work_dirs/<config name>')
    p.add_argument('--folds', nargs='+',
                   help='only these folds (index, fold key or subject id)')
    p.add_argument('--workers', type=int, default=1,
                   help='folds trained at once (processes)')
    p.add_argument('--gpus', nargs='+', type=int,
                   help='GPU ids; worker i uses gpus[i %% len]. Default: all '
                   'visible GPUs, or CPU')
    p.add_argument('--no-report', action='store_true',
                   help='do not run loso_report at the end')
    p.add_argument('--amp', action='store_true')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return p.parse_args(argv)


def _atomic_json(path, obj):
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)


def _cfg_option_args(options: dict):
    out = []
    for k, v in options.items():
        if isinstance(v, (list, tuple)):
            v = '[' + ','.join(repr(x) if isinstance(x, str) else str(x)
                               for x in v) + ']'
        out.append(f'{k}={v}')
    return (['--cfg-options'] + out) if out else []


def prepare(cfg):
    """Embedded data + the whole protocol's flow cache, once, on all cores."""
    from raicl_mm.flow import FlowConfig
    from raicl_mm.flow.cache import (FlowCache, SamplingConfig,
                                              extract_all)
    from raicl_mm.runner_setup import load_records, prepare_embedded_data
    prepare_embedded_data(cfg)
    report = load_records(cfg)
    cache = FlowCache(cfg.flow_cache, FlowConfig(**cfg.flow_cfg),
                      SamplingConfig(**cfg.sampling))
    summary = extract_all(report.records, cache,
                          workers=cfg.get('flow_workers'), progress=True)
    for fail in summary['failed']:
        print(f"flow extraction failed: {fail['id']}: {fail['error']}",
              file=sys.stderr)
    return report, summary


def resume_point(fold_dir):
    """What an interrupted fold resumes from: 'auto' when mmengine's
    ``last_checkpoint`` marker (written after a checkpoint is complete) is
    there, else the newest ``epoch_N.pth`` that loads (a run killed between
    the two leaves a marker-less, possibly partial, newest file), else None."""
    marker = osp.join(fold_dir, 'last_checkpoint')
    if osp.isfile(marker):
        with open(marker) as f:
            if osp.isfile(f.read().strip()):
                return 'auto'
    from raicl_mm.compat import load_checkpoint_file
    epochs = sorted(
        (int(m.group(1)), osp.join(fold_dir, name))
        for name in os.listdir(fold_dir)
        for m in [re.fullmatch(r'epoch_(\d+)\.pth', name)] if m)
    for _, path in reversed(epochs):
        try:
            load_checkpoint_file(path, map_location='cpu')
            return path
        except Exception:  # noqa: BLE001 - partial or foreign file
            continue
    return None


def run_fold(key, args, work_dir, slot, gpus, threads):
    fold_dir = osp.join(work_dir, f'fold_{key}')
    os.makedirs(fold_dir, exist_ok=True)
    if osp.isfile(osp.join(fold_dir, 'predictions.json')):
        return key, 'skipped', 0.0
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), args.config,
           '--fold', key, '--work-dir', fold_dir]
    resume = resume_point(fold_dir)
    if resume == 'auto':
        cmd.append('--resume')
    elif resume:
        cmd += ['--resume', resume]
    if args.amp:
        cmd.append('--amp')
    cmd += _cfg_option_args(args.cfg_options)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    if gpus:
        env['CUDA_VISIBLE_DEVICES'] = str(gpus[slot % len(gpus)])
    t0 = time.time()
    with open(osp.join(fold_dir, 'loso_stdout.log'), 'ab') as log:
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT,
                             env=env, cwd=os.getcwd())
    ok = rc == 0 and osp.isfile(osp.join(fold_dir, 'predictions.json'))
    return key, 'finished' if ok else f'failed (exit {rc})', time.time() - t0


def main(argv=None):
    args = parse_args(argv)
    import raicl_mm  # noqa: F401
    from raicl_mm.datasets.folds import list_folds, resolve_fold
    from raicl_mm.datasets.sources import get_classes
    from raicl_mm.runner_setup import ToolError, load_config
    try:
        cfg = load_config(args.config, args.cfg_options)
    except ToolError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    if args.workers < 1:
        print('error: --workers must be >= 1', file=sys.stderr)
        return 2
    work_dir = args.work_dir or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0])
    os.makedirs(work_dir, exist_ok=True)
    t_start = time.time()
    report, flow_summary = prepare(cfg)
    folds = list_folds(report.records)
    if args.folds:
        try:
            selected = [resolve_fold(f, folds) for f in args.folds]
        except ValueError as err:
            print(f'error: {err}', file=sys.stderr)
            return 2
    else:
        selected = folds
    plan_path = osp.join(work_dir, 'loso_plan.json')
    _atomic_json(plan_path, dict(
        config=args.config,
        cfg_options=args.cfg_options, protocol=cfg.protocol,
        classes=list(get_classes(cfg.protocol)), folds=folds,
        samples=len(report.records),
        flow=dict(cfg.flow_cfg), sampling=dict(cfg.sampling)))
    gpus = args.gpus
    if gpus is None:
        try:
            import torch
            gpus = list(range(torch.cuda.device_count()))
        except Exception:  # noqa: BLE001
            gpus = []
    threads = max(1, (os.cpu_count() or 1) // args.workers)
    print(f'LOSO: {len(selected)} folds of {len(folds)}, {args.workers} at a '
          f'time, {threads} threads each'
          + (f', GPUs {gpus}' if gpus else ', CPU'), flush=True)
    results = []
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(run_fold, key, args, work_dir, i % args.workers,
                               gpus, threads)
                   for i, key in enumerate(selected)]
        for fut in futures:
            key, status, secs = fut.result()
            results.append((key, status, secs))
            print(f'  fold {key}: {status}' +
                  (f' in {secs:.0f} s' if secs else ''), flush=True)
    failed = [(k, s) for k, s, _ in results if s.startswith('failed')]
    timing = dict(total_s=time.time() - t_start,
                  flow=dict((k, flow_summary[k]) for k in
                            ('built', 'reused', 'seconds', 'pairs_per_s')
                            if k in flow_summary),
                  folds={k: round(s, 1) for k, _, s in results})
    _atomic_json(osp.join(work_dir, 'loso_timing.json'), timing)
    for key, status in failed:
        print(f'fold {key} {status}: see '
              f'{osp.join(work_dir, "fold_" + key, "loso_stdout.log")}',
              file=sys.stderr)
    if not args.no_report and not failed:
        sys.path.insert(0, osp.join(ROOT, 'tools'))
        import loso_report
        rc = loso_report.main([work_dir] + (
            ['--allow-missing'] if args.folds else []))
        if rc:
            return rc
    print(f'LOSO wall time: {timing["total_s"]:.0f} s')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
