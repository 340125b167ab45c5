#!/usr/bin/env python
"""Whole-protocol wall time: a reduced LOSO run through ``tools/loso.py``,
projected to the MEGC2019 composite (CDE: 442 clips, 68 folds).

    python benchmarks/bench_protocol.py                     # 3 synthetic subjects
    python benchmarks/bench_protocol.py --subjects 4 --workers 2 --epochs 30
    python benchmarks/bench_protocol.py configs/my_reduced.py --no-reduce
    python benchmarks/bench_protocol.py --quick             # CI size

What is measured: ``tools/loso.py CONFIG --workers N`` as a user runs it
(data preparation, flow cache, one ``tools/train.py`` process per fold, the
pooled report), on a reduced copy of a config that has a ``synthetic`` entry
(``--subjects`` subjects x ``--clips`` clips, generated into a temporary
folder; ``--no-reduce`` runs the config as given). Per-fold wall times and
the flow rate come from ``WORK_DIR/loso_timing.json``; each fold's training
iterations and mean iteration time from its ``vis_data/scalars.json``.

Projections to CDE size (68 folds; fold k trains floor((442 - n_k) / 32)
steps an epoch, n_k from the shipped official list), each for the measured
config's epochs and for the paper's 100 epochs:

* ``naive``: 68 x mean fold time x (mean CDE steps per fold / measured
  steps per fold) / workers -- every second of a fold scaled by steps.
* ``split``: per fold, the measured fixed overhead (process start, data,
  checkpoints, scoring: fold time - steps x iteration time) plus CDE steps
  x the measured iteration time, / workers. Assumes a CDE step costs what a
  step of the measured config costs.
* ``split_cde_step``: the same with the iteration time scaled by the
  measured cost of one step of the CDE model (``--cde-config``: full-width
  ResNet18 at 112 px, batch 32) over one step of the measured model, both
  timed here with the fold's thread count (``--probe-steps``; 0 skips).
* flow: 442 x 16 pairs at the rate measured in the run (and scaled by pixel
  count to 112 px when the run's flow size differs: TV-L1's cost grows with
  the pixel count).

The baseline is the measured reduced run itself (ratio = projected CDE wall
time at the paper's 100 epochs / measured wall time); the goal is a
statement of feasibility, see ``goal``.
"""
import argparse
import collections
import csv
import glob
import json
import math
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from benchmarks import common  # noqa: E402
from raicl_mm.engine.config import data_settings  # noqa: E402

CDE_LIST = osp.join(common.REPO, 'raicl_mm', 'data',
                    'combined_3class_gt.csv')
CDE_INSTANCES = 16

REDUCED = """\
_base_ = [{base!r}]
__data = dict(
    synthetic=dict(out={out!r}, num_subjects={subjects},
                   clips_per_subject={clips}, size={gen_size}, seed=0{extra_syn}),
    data_roots=dict(casme2={out!r} + '/Cropped'),
    ann_files=dict(casme2={out!r} + '/CASME2-coding-synthetic.xlsx'),
    flow_cache={cache!r}{extra_data})
train_dataloader = dict(dataset=__data{extra_loader})
val_dataloader = dict(dataset=__data{extra_loader})
test_dataloader = dict(dataset=__data{extra_loader})
{extra}
"""

QUICK_DATA = """,
    flow_cfg=dict(method='farneback', size=(32, 32)),
    sampling=dict(num_instances=4),
    flow_workers=1"""
QUICK_LOADER = ', batch_size=2'
QUICK_EXTRA = """\
model = dict(
    backbone=dict(stem_channels=8, base_channels=8),
    mrd_head=dict(embed_dim=16, proj_hidden=16, pred_hidden=16))
default_hooks = dict(checkpoint=dict(interval=1), logger=dict(interval=1))
"""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', nargs='?',
                   default=osp.join(common.REPO, 'configs',
                                    'raicl_synthetic.py'))
    p.add_argument('--quick', action='store_true',
                   help='CI size: 2 subjects x 2 clips, 32 px Farneback, '
                   'width-8 model, 1 epoch, first fold only, 1 worker, no '
                   'report, no probe')
    p.add_argument('--no-reduce', action='store_true',
                   help='run the config as given (no synthetic reduction)')
    p.add_argument('--subjects', type=int, default=3)
    p.add_argument('--clips', type=int, default=12,
                   help='clips per subject')
    p.add_argument('--gen-size', type=int, default=128)
    p.add_argument('--epochs', type=int, default=None,
                   help='train_cfg.max_epochs of the run (default: the '
                   "config's)")
    p.add_argument('--workers', type=int, default=2,
                   help='folds at a time (tools/loso.py --workers)')
    p.add_argument('--folds', nargs='+', help='only these folds')
    p.add_argument('--work-dir', help='keep the LOSO work dir here '
                   '(default: a temporary folder, removed)')
    p.add_argument('--no-report', action='store_true',
                   help='pass --no-report to tools/loso.py')
    p.add_argument('--probe-steps', type=int, default=2,
                   help='timed steps of the CDE-vs-measured step-cost probe '
                   '(0 = skip)')
    p.add_argument('--cde-config',
                   default=osp.join(common.REPO, 'configs', 'raicl_cde.py'))
    p.add_argument('--paper-epochs', type=int, default=100)
    p.add_argument('--cde-flow-size', type=int, default=112)
    p.add_argument('--timeout', type=int, default=3600,
                   help='seconds allowed for the LOSO run')
    args = p.parse_args(argv)
    if args.quick:
        args.subjects, args.clips, args.gen_size = 2, 2, 32
        args.epochs = args.epochs or 1
        args.no_report, args.probe_steps = True, 0
        # one fold process: the fixed cost of a fold dominates at this size
        args.folds, args.workers = args.folds or ['0'], 1
    return args


def cde_fold_sizes():
    """Clips per LOSO fold (dataset, subject) of the official CDE list."""
    counts = collections.Counter()
    with open(CDE_LIST, newline='') as f:
        for row in csv.reader(f):
            if row:
                counts[(row[0], row[1])] += 1
    return list(counts.values())


def cde_steps(batch, epochs, drop_last=True):
    sizes = cde_fold_sizes()
    total = sum(sizes)
    per = [((total - n) // batch if drop_last else
            math.ceil((total - n) / batch)) * epochs for n in sizes]
    return per, total


def fold_stats(fold_dir):
    """Training iterations and mean logged iteration time of one fold."""
    paths = sorted(glob.glob(osp.join(fold_dir, '*', 'vis_data',
                                      'scalars.json')))
    iters, times = 0, []
    for path in paths:  # a resumed fold has several runs
        with open(path) as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if 'loss' in row and 'iter' in row:
                    iters = max(iters, int(row['iter']))
                    times.append(float(row['time']))
    return iters, (sum(times) / len(times) if times else float('nan'))


def probe_step_cost(cfg_path, threads, steps, warmup=1, device=None):
    """Seconds per bare training step of a config's model on random data,
    on ``device`` (default: CUDA when available, the device the folds of
    tools/loso.py train on), synchronised at both ends."""
    import torch
    import raicl_mm  # noqa: F401
    from mmaction.registry import MODELS
    from mmaction.structures import ActionDataSample
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(cfg_path)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    if device is None:
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    sync = torch.cuda.synchronize if device == 'cuda' else None
    try:
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        model.init_weights()
        model.to(device).train()
        opt_cfg = dict(cfg.optim_wrapper.optimizer)
        opt = getattr(torch.optim, opt_cfg.pop('type'))(
            model.parameters(), **opt_cfg)
        bs = int(cfg.train_dataloader.batch_size)
        h, w = data_settings(cfg)['flow_cfg']['size']
        x = torch.randn(bs, 2, 3, h, w, device=device)
        samples = [ActionDataSample().set_gt_label(
            i % cfg.model.num_classes).to(device) for i in range(bs)]

        def step():
            loss, _ = model.parse_losses(model(x, samples, mode='loss'))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            model.update_target()

        for _ in range(warmup):
            step()
        with common.Timer(sync) as t:
            for _ in range(steps):
                step()
        name = (osp.relpath(cfg_path, common.REPO)
                if osp.abspath(cfg_path).startswith(common.REPO + os.sep)
                else f'{osp.basename(cfg_path)} (reduced, temporary)')
        return dict(config=name, batch=bs, device=device,
                    size=[h, w], threads=threads, steps=steps,
                    s_per_step=round(t.seconds / steps, 4),
                    load_avg=t.load)
    finally:
        torch.set_num_threads(old)


def main(argv=None):
    out = common.json_stdout()
    args = parse_args(argv)
    os.chdir(common.REPO)
    tmp = tempfile.mkdtemp(prefix='bench_protocol_')
    work = args.work_dir or osp.join(tmp, 'work')
    try:
        from mmengine.config import Config
        base_cfg = Config.fromfile(args.config)
        if args.no_reduce or not data_settings(base_cfg).get('synthetic'):
            cfg_path = args.config
            reduced = False
        else:
            cfg_path = osp.join(tmp, 'reduced.py')
            with open(cfg_path, 'w') as f:
                f.write(REDUCED.format(
                    base=osp.abspath(args.config),
                    out=osp.join(tmp, 'synthetic'), cache=osp.join(tmp, 'cache'),
                    subjects=args.subjects, clips=args.clips,
                    gen_size=args.gen_size,
                    extra_syn=', min_len=9, max_len=9' if args.quick else '',
                    extra_data=QUICK_DATA if args.quick else '',
                    extra_loader=QUICK_LOADER if args.quick else '',
                    extra=QUICK_EXTRA if args.quick else ''))
            reduced = True
        cfg = Config.fromfile(cfg_path)
        epochs = args.epochs or int(cfg.train_cfg.max_epochs)
        config_epochs = int(base_cfg.train_cfg.max_epochs)
        cmd = [sys.executable, osp.join(common.REPO, 'tools', 'loso.py'),
               cfg_path, '--work-dir', work, '--workers', str(args.workers)]
        if args.folds:
            cmd += ['--folds', *args.folds]
        if args.no_report:
            cmd.append('--no-report')
        if args.epochs:
            cmd += ['--cfg-options', f'train_cfg.max_epochs={args.epochs}',
                    f'train_cfg.val_begin={args.epochs}',
                    f'train_cfg.val_interval={args.epochs}']
        load_start = common.loadavg()
        with common.Timer() as wall:
            # fd 1 already points at stderr: the tool's output goes there.
            rc = subprocess.call(cmd, timeout=args.timeout)
        if rc != 0:
            raise SystemExit(f'tools/loso.py exited with {rc}; see stderr')
        with open(osp.join(work, 'loso_timing.json')) as f:
            timing = json.load(f)

        folds = {}
        for key, secs in timing['folds'].items():
            iters, it_s = fold_stats(osp.join(work, f'fold_{key}'))
            folds[key] = dict(seconds=secs, iters=iters, s_per_iter=it_s,
                              overhead_s=max(0.0, secs - iters * it_s))
        ran = [f for f in folds.values() if f['seconds'] > 0 and f['iters']]
        if not ran:
            raise SystemExit('no fold ran a training iteration (all skipped, '
                             'or every training split smaller than the '
                             'batch with drop_last)')
        n_f = len(ran)
        mean_fold = sum(f['seconds'] for f in ran) / n_f
        mean_iters = sum(f['iters'] for f in ran) / n_f
        mean_it_s = sum(f['s_per_iter'] * f['iters'] for f in ran) \
            / sum(f['iters'] for f in ran)
        mean_over = sum(f['overhead_s'] for f in ran) / n_f

        cde = Config.fromfile(args.cde_config)
        cde_bs = int(cde.train_dataloader.batch_size)
        cde_drop = bool(cde.train_dataloader.get('drop_last', False))
        workers = args.workers
        threads = max(1, (os.cpu_count() or 1) // workers)

        probes, factor = [], None
        if args.probe_steps > 0:
            probes = [probe_step_cost(args.cde_config, threads,
                                      args.probe_steps),
                      probe_step_cost(cfg_path, threads, args.probe_steps)]
            factor = probes[0]['s_per_step'] / probes[1]['s_per_step']

        flow = timing.get('flow', {})
        rate = float(flow.get('pairs_per_s') or 0.0)
        flow_size = int(data_settings(cfg)['flow_cfg']['size'][0])
        cde_pairs = sum(cde_fold_sizes()) * CDE_INSTANCES
        figures = dict(
            measured_wall_s=wall.seconds,
            measured_loso_total_s=timing['total_s'],
            measured_folds=n_f,
            measured_fold_s_mean=mean_fold,
            measured_steps_per_fold=mean_iters,
            measured_s_per_iter=mean_it_s,
            measured_fold_overhead_s=mean_over,
            measured_flow_s=float(flow.get('seconds', 0.0)),
            measured_flow_pairs_per_s=rate)
        if rate > 0 and flow.get('built'):
            figures['cde_flow_s_at_measured_rate'] = cde_pairs / rate
            figures['cde_flow_s_scaled_to_112px'] = (
                cde_pairs / rate * (args.cde_flow_size / flow_size) ** 2)
        if factor is not None:
            figures['cde_step_cost_factor'] = factor
        flow_proj = figures.get('cde_flow_s_scaled_to_112px', 0.0)
        for tag, ep in (('config_epochs', config_epochs),
                        ('paper_epochs', args.paper_epochs)):
            steps, _ = cde_steps(cde_bs, ep, cde_drop)
            mean_cde = sum(steps) / len(steps)
            figures[f'cde_steps_per_fold_{tag}'] = mean_cde
            naive = len(steps) * mean_fold * (mean_cde / mean_iters) / workers
            split = sum(mean_over + s * mean_it_s for s in steps) / workers
            figures[f'cde_train_s_naive_{tag}'] = naive
            figures[f'cde_train_s_split_{tag}'] = split
            figures[f'cde_total_h_split_{tag}'] = (split + flow_proj) / 3600
            if factor is not None:
                sc = sum(mean_over + s * mean_it_s * factor
                         for s in steps) / workers
                figures[f'cde_train_s_split_cde_step_{tag}'] = sc
                figures[f'cde_total_h_split_cde_step_{tag}'] = (
                    sc + flow_proj) / 3600
        best = figures.get('cde_total_h_split_cde_step_paper_epochs',
                           figures['cde_total_h_split_paper_epochs'])
        ratio = best * 3600 / wall.seconds

        import torch
        dev = common.machine('cuda' if torch.cuda.is_available() else 'cpu')
        dev['fold_device'] = ('cuda (tools/loso.py: one GPU per worker)'
                              if torch.cuda.is_available() else 'cpu')
        dev['threads_per_fold'] = threads
        dev['load_avg_start'] = load_start
        res = common.result(
            what='LOSO protocol wall time (tools/loso.py) and its projection '
                 'to CDE size (68 folds, 442 clips x 16 pairs)',
            inputs=dict(
                config=osp.relpath(args.config, common.REPO)
                if osp.isabs(args.config) else args.config,
                reduced=reduced,
                subjects=args.subjects if reduced else None,
                clips_per_subject=args.clips if reduced else None,
                epochs=epochs, config_epochs=config_epochs,
                paper_epochs=args.paper_epochs, workers=workers,
                flow=dict(data_settings(cfg)['flow_cfg']), cde_batch=cde_bs,
                cde_folds=len(cde_fold_sizes()), cde_pairs=cde_pairs,
                quick=args.quick, command=' '.join(
                    osp.relpath(c, common.REPO) if osp.isabs(c) and
                    c.startswith(common.REPO) else c for c in cmd)),
            device=dev,
            figures=figures,
            baseline=dict(measured_wall_s=wall.seconds),
            ratio=ratio,
            goal=('feasibility: the projected CDE protocol (paper epochs, '
                  'CDE step cost, flow at 112 px) on this machine, in hours '
                  '(cde_total_h_*); ratio = that / the measured wall time. '
                  'GPU figures are open.'),
            folds={k: {kk: (round(vv, 3) if isinstance(vv, float) else vv)
                       for kk, vv in v.items()} for k, v in folds.items()},
            flow=flow, probes=probes, load_avg_end=common.loadavg())
        common.emit(res, out)
    finally:
        # the reduced config, its data and flow cache; --work-dir is kept
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
