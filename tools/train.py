#!/usr/bin/env python
"""Train Ra-ICL (or any config of this project) with MMEngine's Runner.

mmaction2's flags and semantics: the config is read, this tool derives the
work dir, the fold's dump file, AMP and resume, then ``--cfg-options`` are
merged last and win. Without ``--fold`` the config's own fold is trained;
``--fold`` (an index, a fold key, a subject id, several comma-separated, or
``all``) changes the fold of the three loaders and nothing else. The fold's
test subject is scored once, after the last epoch (the config's
``train_cfg.val_begin``), and its predictions go to
``WORK_DIR/predictions.json``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    from raicl_mm.engine.cli import add_common_args, parse_tool_args
    p = argparse.ArgumentParser(description='Train a Ra-ICL model')
    p.add_argument('config', help='train config file path')
    p.add_argument('--resume', nargs='?', type=str, const='auto',
                   help='resume from the given checkpoint, or from the latest '
                   'one in the work dir when no path is given')
    p.add_argument('--amp', action='store_true',
                   help='enable automatic-mixed-precision training')
    p.add_argument('--no-validate', action='store_true',
                   help='do not score the fold after training')
    p.add_argument('--inner-val', type=int, metavar='K', default=None,
                   help='hold out K training subjects, keep the best-UF1 '
                   'checkpoint on them, then score the test subject with it '
                   '(default: the last epoch is scored)')
    p.add_argument('--inner-val-interval', type=int, default=5,
                   help='epochs between inner validations')
    p.add_argument('--auto-scale-lr', action='store_true',
                   help='scale the lr by the actual batch size')
    p.add_argument('--seed', type=int, default=None,
                   help='random seed (as mmaction2: used when the config '
                   'sets no randomness)')
    p.add_argument('--diff-rank-seed', action='store_true')
    p.add_argument('--deterministic', action='store_true')
    add_common_args(p, 'the --resume checkpoint')
    return parse_tool_args(p, argv)


def build_cfg(args):
    from raicl_mm.engine import cli
    cfg = cli.read_config(args.config)
    cfg.launcher = args.launcher
    fold_name = (cli.apply_fold(cfg, args.fold) if args.fold is not None
                 else cli.default_fold_name(cfg))
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = cli.default_work_dir(args.config, fold_name)
    cli.add_tensorboard_if_available(cfg)
    predictions = osp.join(cfg.work_dir, 'predictions.json')
    if args.inner_val is not None:
        if fold_name in (None, 'all'):
            raise cli.ToolError('--inner-val needs a fold (the config has '
                                'none, or --fold all)')
        use_inner_validation(cfg, args.inner_val, args.inner_val_interval)
        cli.set_dump_file(cfg, 'test_evaluator', predictions)
    elif holdout_protocol(cfg) and fold_name is None:
        # Hold-out ("Modeling the evolution dynamics to enhance micro-expression recognition"): the config validates on its validation split
        # and keeps the best checkpoint; the test split is scored once after.
        args.score_best = True
        cli.set_dump_file(cfg, 'test_evaluator', predictions)
        for m in ([cfg.val_evaluator] if isinstance(cfg.val_evaluator, dict)
                  else cfg.val_evaluator):
            m.pop('dump_file', None)
    elif args.no_validate or fold_name in (None, 'all'):
        cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    else:
        # The fold is scored by the config's validation (after the last
        # epoch in every config of this project).
        cli.set_dump_file(cfg, 'val_evaluator', predictions)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise cli.ToolError(f'--resume: checkpoint {args.resume} does '
                                f'not exist')
        cfg.resume, cfg.load_from = True, args.resume
    if args.trust_checkpoint:
        cfg.trust_checkpoint = True
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    if args.seed is not None:
        # mmaction2's rule: --seed is used when the config sets no
        # randomness. Ours set one, so say so instead of ignoring it.
        if cfg.get('randomness') is not None:
            raise cli.ToolError(
                f'--seed {args.seed}: the config sets randomness='
                f'{dict(cfg.randomness)}, which mmaction2 keeps; use '
                f'--cfg-options randomness.seed={args.seed}')
        cfg.randomness = dict(seed=args.seed, deterministic=args.deterministic,
                              diff_rank_seed=args.diff_rank_seed)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if cfg.get('resume') and cfg.get('load_from') and cfg.get(
            'trust_checkpoint'):
        from raicl_mm import compat
        compat.trust_checkpoint(cfg.load_from)
    # a fold folder of a LOSO work dir is the plan's: refused with other settings
    from raicl_mm.protocol.fold_guard import guard_planned_fold
    args.plan_guard = guard_planned_fold(args, cfg, fold_name, args.amp)
    args.predictions = predictions
    return cfg


def holdout_protocol(cfg) -> bool:
    """Whether the config's data is a hold-out split (no LOSO fold)."""
    from raicl_mm.engine.config import data_settings
    return bool(data_settings(cfg).get('holdout'))


def use_inner_validation(cfg, num_subjects: int, interval: int) -> None:
    """Select the checkpoint on held-out TRAINING subjects, never the test one.

    Train on ``inner_train``, validate every ``interval`` epochs on
    ``inner_val`` and keep the best UF1 checkpoint; the tool then scores the
    fold's test subject once with that checkpoint (``test_dataloader``).
    """
    from raicl_mm.engine.config import flow_datasets
    for name, ds in flow_datasets(cfg):
        ds['inner_val'] = dict(ds.get('inner_val') or {},
                               num_subjects=num_subjects)
        if name == 'train_dataloader':
            ds['split'] = 'inner_train'
        elif name == 'val_dataloader':
            ds['split'] = 'inner_val'
    cfg.train_cfg.val_begin = interval
    cfg.train_cfg.val_interval = interval
    cfg.default_hooks.checkpoint.save_best = 'UF1'
    cfg.default_hooks.checkpoint.rule = 'greater'
    for m in ([cfg.val_evaluator] if isinstance(cfg.val_evaluator, dict)
              else cfg.val_evaluator):
        m.pop('dump_file', None)


def train(runner, args):
    runner.train()
    if args.inner_val is not None or getattr(args, 'score_best', False):
        # Score the test subject once, with the checkpoint chosen on the
        # held-out training subjects.
        best = runner.message_hub.get_info('best_ckpt')
        if best:
            runner.load_checkpoint(best)
        runner.test()
    from raicl_mm.protocol.fold_guard import stamp_planned_fold
    stamp_planned_fold(getattr(args, 'plan_guard', None), runner.work_dir,
                       'tools/train.py', getattr(args, 'predictions', None))


def main(argv=None):
    args = parse_args(argv)
    import raicl_mm  # noqa: F401  (applies the stack fixes first)
    from raicl_mm.engine.cli import run_tool
    return run_tool(build_cfg, args, train)


if __name__ == '__main__':
    from raicl_mm.engine.cli import main_guard
    sys.exit(main_guard(main))
