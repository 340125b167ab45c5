"""One LOSO fold through the real Runner, timed: a process of the GPU
suite's ``protocol`` section (several run at once on one GPU).

    python -m benchmarks.gpu.fold_worker CONFIG --fold K --epochs E \
        --work-dir DIR --out FOLD.json

What ``tools/train.py CONFIG --fold K`` does (``RaICLRunner`` through the
config's ``runner_type``, the fold's dataset from the flow cache, every
hook, the fold scored on its test subject after the last epoch), with
``max_epochs = E`` and a time stamp around every training iteration. The
JSON: ``process_start_to_main_s`` (imports; from the parent's launch time in
``GPU_FOLD_T0``), ``build_s`` (config + Runner), ``train_s``, ``val_s``,
``wall_s``, ``steps``, ``steps_per_epoch``, ``period_s`` (median time from
one iteration's end to the next within an epoch, data included, first
``--warmup`` iterations left out), ``step_s`` (train_step + hooks alone),
``epoch_boundary_extra_s`` (the extra time of the first iteration of an
epoch: epoch-end hooks, sampler, loader restart), ``checkpoint_s`` (one
``save_checkpoint`` of the trained Runner, timed after training),
``max_memory_allocated_mib``.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import statistics
import sys
import time

T_MAIN = time.time()
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('--fold', required=True)
    p.add_argument('--epochs', type=int, required=True)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--work-dir', required=True)
    p.add_argument('--out', required=True)
    return p.parse_args(argv)


def stamp_hook(sync):
    from mmengine.hooks import Hook

    class FoldStampHook(Hook):
        priority = 'LOWEST'

        def __init__(self):
            self.rows = []   # (epoch, before, after)
            self.t_train = self.t_train_end = self.t_val = None
            self.t_val_end = None

        def before_train(self, runner):
            self.t_train = time.time()

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            sync()
            self._b = time.time()

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            sync()
            self.rows.append((runner.epoch, self._b, time.time()))

        def before_val(self, runner):
            self.t_val = time.time()

        def after_val(self, runner):
            self.t_val_end = time.time()

        def after_train(self, runner):
            self.t_train_end = time.time()

    return FoldStampHook()


def timings(rows, warmup):
    """Period, step, epoch-boundary figures from (epoch, before, after)."""
    periods, steps, boundary = [], [], []
    for i in range(1, len(rows)):
        ep, b, a = rows[i]
        prev = rows[i - 1]
        if i >= warmup:
            steps.append(a - b)
        if ep != prev[0]:
            boundary.append(a - prev[2])
        elif i >= warmup:
            periods.append(a - prev[2])
    period = statistics.median(periods) if periods else None
    extra = (max(0.0, statistics.median(boundary) - period)
             if boundary and period is not None else None)
    return dict(period_s=period,
                step_s=statistics.median(steps) if steps else None,
                epoch_boundary_extra_s=extra, timed_periods=len(periods))


def main(argv=None):
    args = parse_args(argv)
    t0 = float(os.environ.get('GPU_FOLD_T0', T_MAIN))
    import torch
    import raicl_mm  # noqa: F401
    from mmaction.registry import RUNNERS
    from raicl_mm.engine.cli import apply_fold, read_config
    from raicl_mm.engine.runner import RaICLRunner
    t_imported = time.time()
    cuda = torch.cuda.is_available()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    cfg = read_config(args.config)
    cfg.launcher = 'none'
    key = apply_fold(cfg, args.fold)
    cfg.train_cfg.max_epochs = args.epochs
    cfg.train_cfg.val_begin = args.epochs
    cfg.train_cfg.val_interval = args.epochs
    cfg.work_dir = args.work_dir
    runner = (RUNNERS.build(cfg) if 'runner_type' in cfg
              else RaICLRunner.from_cfg(cfg))
    hook = stamp_hook(sync)
    runner.register_hook(hook)
    t_built = time.time()
    runner.train()
    sync()
    t_done = time.time()
    t = time.time()
    runner.save_checkpoint(args.work_dir, 'bench_checkpoint.pth')
    ckpt_s = time.time() - t
    rows = hook.rows
    per_epoch = {}
    for ep, _, _ in rows:
        per_epoch[ep] = per_epoch.get(ep, 0) + 1
    out = dict(
        fold=key, pid=os.getpid(),
        device=torch.cuda.get_device_name(0) if cuda else 'cpu',
        threads=torch.get_num_threads(),
        process_start_to_main_s=round(T_MAIN - t0, 3),
        imports_s=round(t_imported - T_MAIN, 3),
        build_s=round(t_built - t_imported, 3),
        train_s=round((hook.t_train_end or t_done) - (hook.t_train
                                                      or t_built), 3),
        val_s=(round(hook.t_val_end - hook.t_val, 3)
               if hook.t_val and hook.t_val_end else None),
        checkpoint_s=round(ckpt_s, 3),
        wall_s=round(t_done - t0, 3),
        steps=len(rows), epochs=args.epochs,
        steps_per_epoch=sorted(per_epoch.values()),
        first_iter_s=round(rows[0][2] - (hook.t_train or t_built), 3)
        if rows else None,
        max_memory_allocated_mib=(round(torch.cuda.max_memory_allocated()
                                        / 2 ** 20, 1) if cuda else None))
    out.update({k: (round(v, 5) if isinstance(v, float) else v)
                for k, v in timings(rows, args.warmup).items()})
    tmp = args.out + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(out, f)
    os.replace(tmp, args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
