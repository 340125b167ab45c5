#!/usr/bin/env python
"""Training throughput: the real MMEngine Runner pipeline against a bare
PyTorch loop of the same model and losses, in one run.

    python benchmarks/bench_train.py                          # synthetic config
    python benchmarks/bench_train.py configs/raicl_synthetic.py --iters 40
    python benchmarks/bench_train.py configs/raicl_cde.py --fold 0 --iters 20
    python benchmarks/bench_train.py --quick                  # CI size

What is timed (pairs = training samples, one instance pair each):

* figures: ``Runner.from_cfg(cfg).train()`` on one LOSO fold's training split
  (``--fold``, default the first), validation off, everything else as the
  config says (dataset kept in memory by ``MicroExpressionFlowDataset``,
  ``SampleInstancePair`` / ``FlowNormalize`` / ``PackActionInputs``
  pipeline, ``InstanceDataPreprocessor``, ``OptimWrapper``, every hook:
  ``TargetEMAHook``, logger, checkpoint, param scheduler...). A hook of
  lowest priority stamps every iteration; the rate is measured from the end
  of the ``--warmup``-th iteration to the end of the last one, so epoch
  boundaries inside that window are included.
* baseline: the same model config built afresh, the same optimizer (bare
  ``torch.optim``), the same batch size and thread count, on the same
  in-memory instance sets pre-normalised and pre-stacked as tensors: random
  pair per clip, ``model(inputs, samples, mode='loss')``, backward, step,
  ``model.update_target()``.
* where the Runner's time goes: the mean iteration split into "train_step +
  after-iter hooks" and "data + before-iter hooks" (from the stamps), the
  IterTimerHook's ``data_time``, and the dataloader + data preprocessor
  alone over as many batches.

Goal: Runner pairs/s >= 0.9 x bare-loop pairs/s. CUDA is used when
available (``--device``), with synchronisation at every time stamp.
"""
import argparse
import math
import os
import os.path as osp
import shutil
import sys
import tempfile
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from benchmarks import common  # noqa: E402

QUICK_OPTIONS = {
    'model.backbone.stem_channels': 8, 'model.backbone.base_channels': 8,
    'model.mrd_head.embed_dim': 16, 'model.mrd_head.proj_hidden': 16,
    'model.mrd_head.pred_hidden': 16,
    'train_dataloader.batch_size': 2,
    'default_hooks.logger.interval': 1,
}
#: Data settings of the quick run, for the dataset of every loader.
QUICK_DATA = {
    'flow_cfg': dict(method='farneback', size=(32, 32)),
    'sampling.num_instances': 4, 'flow_workers': 1,
}
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def for_every_loader(data: dict) -> dict:
    """``{key: v}`` -> ``{<loader>.dataset.<key>: v}`` for the 3 loaders."""
    return {f'{n}.dataset.{k}': v for n in LOADERS for k, v in data.items()}


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', nargs='?',
                   default=osp.join(common.REPO, 'configs',
                                    'raicl_synthetic.py'))
    p.add_argument('--quick', action='store_true',
                   help='CI size: a generated 2x2-clip set at 32 px, a '
                   'width-8 model, 1 warm-up + 2 timed iterations')
    p.add_argument('--fold', default='0',
                   help='LOSO fold whose training split is used')
    p.add_argument('--iters', type=int, default=30,
                   help='timed iterations (at least; rounded up to epochs)')
    p.add_argument('--warmup', type=int, default=5)
    p.add_argument('--repeats', type=int, default=3,
                   help='Runner / bare-loop pairs, alternated')
    p.add_argument('--device', choices=('auto', 'cpu', 'cuda'),
                   default='auto')
    p.add_argument('--amp', choices=('none', 'bf16', 'fp16'), default='none',
                   help="mixed precision: the Runner gets mmengine's "
                   "AmpOptimWrapper with this dtype (CUDA only, as mmengine "
                   "asserts), the bare loop torch.autocast with the same "
                   "dtype (+ GradScaler for fp16)")
    p.add_argument('--num-workers', type=int, default=None,
                   help='train_dataloader.num_workers (default: the '
                   "config's, 0 = the data pipeline in the training loop's "
                   'thread); > 0 runs it beside the step in worker '
                   'processes (persistent_workers=True)')
    p.add_argument('--data-dir', default=None,
                   help="generate the config's synthetic set and its flow "
                   'cache under this folder (shared by runs that name the '
                   "same folder) instead of the config's paths")
    p.add_argument('--flow-method', choices=('tvl1', 'farneback',
                                             'tvl1_torch'), default=None,
                   help="flow_cfg.method of every loader (tvl1_torch where "
                   'OpenCV has no cv2.optflow, e.g. the GPU machine)')
    p.add_argument('--profile', type=int, default=0, metavar='N',
                   help='after the timed repeats, one more Runner train() '
                   'under cProfile (not in the figures): the top N functions '
                   'by own time go into the output')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = p.parse_args(argv)
    if args.quick:
        args.iters, args.warmup, args.repeats = 2, 1, 1
    return args


def quick_options(tmp):
    out = osp.join(tmp, 'synthetic')
    opts = dict(QUICK_OPTIONS)
    data = dict(QUICK_DATA)
    data.update({
        'synthetic': dict(out=out, num_subjects=2, clips_per_subject=2,
                          size=32, min_len=9, max_len=9, seed=0),
        'data_roots.casme2': osp.join(out, 'Cropped'),
        'ann_files.casme2': osp.join(out, 'CASME2-coding-synthetic.xlsx'),
        'flow_cache': osp.join(tmp, 'cache')})
    opts.update(for_every_loader(data))
    return opts


def data_dir_options(data_dir):
    """The synthetic set, its sheet and the flow cache under ``data_dir``
    for every loader."""
    out = osp.join(osp.abspath(data_dir), 'synthetic')
    return for_every_loader({
        'synthetic.out': out,
        'data_roots.casme2': osp.join(out, 'Cropped'),
        'ann_files.casme2': osp.join(out, 'CASME2-coding-synthetic.xlsx'),
        'flow_cache': osp.join(osp.abspath(data_dir), 'cache')})


def runtime_options(args):
    """--amp / --num-workers / --data-dir / --flow-method as config
    options (the bare loop reads --amp itself)."""
    opts = {}
    if args.data_dir:
        opts.update(data_dir_options(args.data_dir))
    if args.flow_method:
        opts.update(for_every_loader({'flow_cfg.method': args.flow_method}))
    if args.num_workers is not None:
        opts['train_dataloader.num_workers'] = args.num_workers
        opts['train_dataloader.persistent_workers'] = args.num_workers > 0
    if args.amp != 'none':
        opts['optim_wrapper.type'] = 'AmpOptimWrapper'
        opts['optim_wrapper.dtype'] = ('bfloat16' if args.amp == 'bf16'
                                       else 'float16')
        opts['optim_wrapper.loss_scale'] = 'dynamic'
    return opts


AMP_DTYPES = {'bf16': 'bfloat16', 'fp16': 'float16'}


def build_cfg(args, options, work_dir):
    """The config as tools/train.py --fold builds it, validation off and
    max_epochs just large enough for warmup + iters."""
    from raicl_mm.engine.cli import apply_fold, read_config
    from raicl_mm.engine.config import load_records
    cfg = read_config(args.config)
    if options:
        cfg.merge_from_dict(options)
    cfg.launcher = 'none'
    key = apply_fold(cfg, args.fold)
    n_train = sum(1 for r in load_records(cfg).records
                  if r.fold_subject != key)
    bs = int(cfg.train_dataloader.batch_size)
    drop = cfg.train_dataloader.get('drop_last', False)
    per_epoch = n_train // bs if drop else math.ceil(n_train / bs)
    if per_epoch < 1:
        raise SystemExit(f'fold {key}: {n_train} training clips < batch {bs}')
    epochs = math.ceil((args.warmup + args.iters) / per_epoch)
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_begin = epochs + 1
    cfg.train_cfg.val_interval = epochs + 1
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.work_dir = work_dir
    return cfg, dict(fold=key, train_clips=n_train, batch_size=bs,
                     iters_per_epoch=per_epoch, epochs=epochs,
                     total_iters=epochs * per_epoch)


def make_sync(device):
    import torch
    if device == 'cuda':
        return torch.cuda.synchronize
    return None


def stamp_hook(sync):
    from mmengine.hooks import Hook

    class BenchStampHook(Hook):
        """Time stamps around every training iteration (lowest priority:
        runs after every other hook)."""

        priority = 'LOWEST'

        def __init__(self):
            self.before, self.after, self.data_time = [], [], []

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            if sync:
                sync()
            self.before.append(time.perf_counter())

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            if sync:
                sync()
            self.after.append(time.perf_counter())
            buf = runner.message_hub.get_scalar('train/data_time')
            self.data_time.append(float(buf.current()))

    return BenchStampHook()


def run_runner(cfg, sync, warmup, profile_n=0):
    """Runner.train(); returns timings and the runner (for the data)."""
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg)
    hook = stamp_hook(sync)
    runner.register_hook(hook)
    prof_rows = None
    if profile_n:
        import cProfile
        import pstats
        prof = cProfile.Profile()
        prof.enable()
    runner.train()
    if profile_n:
        prof.disable()
        st = pstats.Stats(prof)
        rows = sorted(st.stats.items(), key=lambda kv: -kv[1][2])[:profile_n]
        prof_rows = [dict(func=f'{osp.basename(k[0])}:{k[1]}({k[2]})',
                          calls=v[1], tottime_s=round(v[2], 3),
                          cumtime_s=round(v[3], 3)) for k, v in rows]
    n = len(hook.after)
    if n <= warmup:
        raise SystemExit(f'only {n} iterations ran, need > warmup={warmup}')
    window = hook.after[-1] - hook.after[warmup - 1]
    iters = n - warmup
    step = [hook.after[i] - hook.before[i] for i in range(warmup, n)]
    return runner, dict(iters=iters, seconds=window,
                        s_per_iter=window / iters,
                        step_s=sum(step) / iters,
                        data_time_s=sum(hook.data_time[warmup:]) / iters,
                        load_avg=common.loadavg()), prof_rows


def time_dataloader(runner, iters):
    """The dataloader and the data preprocessor alone, ``iters`` batches."""
    loader = runner.train_dataloader
    pre = runner.model.data_preprocessor
    done = 0
    with common.Timer() as t:
        while done < iters:
            for batch in loader:
                pre(batch, True)
                done += 1
                if done >= iters:
                    break
    return t.seconds / iters


def bare_data(dataset, device):
    """Instance sets as normalised float32 tensors + one data sample each."""
    import numpy as np
    import torch
    from mmaction.structures import ActionDataSample
    sets, samples = [], []
    for idx in range(len(dataset)):
        info = dataset.get_data_info(idx)
        x = info['instances'].astype(np.float32)          # (N, H, W, 3)
        mean = x.mean(axis=(1, 2), keepdims=True)          # 'standardize'
        std = x.std(axis=(1, 2), keepdims=True)
        x = (x - mean) / (std + 1e-6)
        sets.append(torch.from_numpy(
            np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(device))
        ds = ActionDataSample().set_gt_label(int(info['label']))
        ds.set_metainfo(dict(single_instance=x.shape[0] == 1))
        samples.append(ds.to(device))
    return sets, samples


def run_bare(cfg, dataset, device, sync, warmup, iters, seed=0, amp='none'):
    """Same model, losses, optimizer, batch size: a plain PyTorch loop
    (under ``torch.autocast`` with ``amp``'s dtype, as AmpOptimWrapper)."""
    import contextlib
    import torch
    from mmaction.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.to(device).train()
    opt_cfg = dict(cfg.optim_wrapper.optimizer)
    opt = getattr(torch.optim, opt_cfg.pop('type'))(model.parameters(),
                                                      **opt_cfg)
    sets, samples = bare_data(dataset, device)
    bs = int(cfg.train_dataloader.batch_size)
    n = len(sets)
    gen = torch.Generator().manual_seed(seed)
    order = []

    def batch():
        nonlocal order
        if len(order) < bs:  # new epoch (drop_last)
            order = torch.randperm(n, generator=gen).tolist()
        idx, order = order[:bs], order[bs:]
        pairs = []
        for i in idx:
            k = sets[i].shape[0]
            if k == 1:
                pairs.append(sets[i][[0, 0]])
            else:
                pairs.append(sets[i][torch.randperm(k, generator=gen)[:2]
                                     .to(sets[i].device)])
        return torch.stack(pairs), [samples[i] for i in idx]

    if amp == 'none':
        cast = contextlib.nullcontext
        scaler = None
    else:
        dtype = getattr(torch, AMP_DTYPES[amp])
        cast = lambda: torch.autocast(device_type=device,  # noqa: E731
                                      dtype=dtype)
        scaler = torch.amp.GradScaler(device) if amp == 'fp16' else None

    def step():
        inputs, ds = batch()
        with cast():
            losses = model(inputs, ds, mode='loss')
        loss, _ = model.parse_losses(losses)
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        model.update_target()

    for _ in range(warmup):
        step()
    with common.Timer(sync) as t:
        for _ in range(iters):
            step()
    return dict(iters=iters, seconds=t.seconds, s_per_iter=t.seconds / iters,
                load_avg=t.load)


def main(argv=None):
    out = common.json_stdout()
    args = parse_args(argv)
    if args.device == 'cpu':
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    os.chdir(common.REPO)  # configs name data/, cache/ relative to the repo
    import torch
    import raicl_mm  # noqa: F401
    device = 'cuda' if (args.device != 'cpu'
                        and torch.cuda.is_available()) else 'cpu'
    if args.device == 'cuda' and device != 'cuda':
        raise SystemExit('--device cuda: no CUDA device')
    if args.amp != 'none' and device != 'cuda':
        raise SystemExit(f'--amp {args.amp}: mmengine\'s AmpOptimWrapper '
                         'needs CUDA (it asserts is_cuda_available())')
    sync = make_sync(device)
    tmp = tempfile.mkdtemp(prefix='bench_train_')
    try:
        options = dict(quick_options(tmp)) if args.quick else {}
        options.update(runtime_options(args))
        options.update(args.cfg_options)
        threads = torch.get_num_threads()
        runs, runner_rates, bare_rates, ratios = [], [], [], []
        breakdown = None
        profile = None
        dataset = None
        for r in range(args.repeats):
            cfg, plan = build_cfg(args, options,
                                  osp.join(tmp, f'work{r}'))
            bs = plan['batch_size']
            # Order A B, B A, A B...: a drift of the machine's load does not
            # always hit the same side. The bare loop uses the instance sets
            # the (first) Runner loaded.
            order = ('runner', 'bare') if r % 2 == 0 or dataset is None \
                else ('bare', 'runner')
            rates = {}
            for side in order:
                if side == 'runner':
                    runner, rt, _ = run_runner(cfg, sync, args.warmup)
                    rt['threads'] = torch.get_num_threads()
                    rates['runner'] = bs / rt['s_per_iter']
                    runs.append(dict(what='runner.train()', **_round(rt),
                                     pairs_per_s=round(rates['runner'], 3)))
                    if breakdown is None:
                        data_s = time_dataloader(
                            runner, max(3, min(rt['iters'], 20)))
                        breakdown = dict(
                            runner_train_step_and_after_hooks_s=rt['step_s'],
                            runner_data_and_before_hooks_s=(
                                rt['s_per_iter'] - rt['step_s']),
                            runner_iter_timer_data_time_s=rt['data_time_s'],
                            dataloader_and_preprocessor_alone_s=data_s)
                    if dataset is None:
                        dataset = runner.train_dataloader.dataset
                    timed_iters = rt['iters']
                    del runner
                else:
                    bt = run_bare(cfg, dataset, device, sync, args.warmup,
                                  timed_iters, seed=r, amp=args.amp)
                    bt['threads'] = torch.get_num_threads()
                    rates['bare'] = bs / bt['s_per_iter']
                    runs.append(dict(what='bare PyTorch loop', **_round(bt),
                                     pairs_per_s=round(rates['bare'], 3)))
            runner_rates.append(rates['runner'])
            bare_rates.append(rates['bare'])
            ratios.append(rates['runner'] / rates['bare'])
        if args.profile:
            # An extra Runner run under cProfile, not part of the figures.
            cfg, _ = build_cfg(args, options, osp.join(tmp, 'work_profile'))
            _, _, profile = run_runner(cfg, sync, args.warmup, args.profile)
        base = common.median(bare_rates)
        figures = dict(runner_pairs_per_s=common.median(runner_rates),
                       runner_s_per_iter=bs / common.median(runner_rates))
        figures.update(breakdown)
        figures['runner_step_share_of_iter'] = (
            breakdown['runner_train_step_and_after_hooks_s']
            / (breakdown['runner_train_step_and_after_hooks_s']
               + breakdown['runner_data_and_before_hooks_s']))
        ratio = common.median(ratios)
        res = common.result(
            what='training pairs/s: MMEngine Runner pipeline vs a bare '
                 'PyTorch loop (same model, losses, optimizer, batch, '
                 'threads, in-memory data)',
            inputs=dict(config=osp.relpath(args.config, common.REPO)
                        if osp.isabs(args.config) else args.config,
                        cfg_options={k: str(v) for k, v in options.items()},
                        flow_size=list(cfg.train_dataloader.dataset.flow_cfg['size']),
                        timed_iters=runs[0]['iters'], warmup=args.warmup,
                        amp=args.amp,
                        num_workers=int(cfg.train_dataloader.get(
                            'num_workers', 0)),
                        repeats=args.repeats, torch_threads=threads,
                        quick=args.quick, **plan),
            device=common.machine(device),
            figures=figures,
            baseline=dict(bare_loop_pairs_per_s=base,
                          bare_loop_s_per_iter=bs / base),
            ratio=ratio,
            goal='ratio >= 0.9 (Runner pipeline within 10 % of a bare loop)',
            goal_met=bool(ratio >= 0.9),
            ratios=[round(x, 4) for x in ratios],
            runs=runs,
            profile=profile,
            notes=('ratio = median over repeats of runner/bare measured '
                   'back to back; dataloader_and_preprocessor_alone_s is '
                   'one batch through the DataLoader and '
                   'InstanceDataPreprocessor with no model.'))
        common.emit(res, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _round(d):
    return {k: (round(v, 4) if isinstance(v, float) else v)
            for k, v in d.items()}


if __name__ == '__main__':
    sys.exit(main())
