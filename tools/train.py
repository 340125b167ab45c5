#!/usr/bin/env python
"""Train Ra-ICL (or any config of this project) with MMEngine's Runner.

Same flags as mmaction2's tools/train.py, plus ``--fold`` for one
leave-one-subject-out fold (train on every other subject; the fold's subject
is scored once, after the last epoch, and its predictions are written to
``WORK_DIR/predictions.json``).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    from raicl_mm.runner_setup import add_common_args, parse_tool_args
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
    p.add_argument('--seed', type=int, default=None, help='random seed')
    p.add_argument('--diff-rank-seed', action='store_true')
    p.add_argument('--deterministic', action='store_true')
    add_common_args(p, 'the --resume checkpoint')
    return parse_tool_args(p, argv)


def build_cfg(args):
    from raicl_mm import compat
    from raicl_mm.runner_setup import (ToolError, add_tensorboard_if_available,
                                       apply_fold, load_config,
                                       prepare_embedded_data, set_dump_file,
                                       use_all_subjects, use_inner_validation)
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    prepare_embedded_data(cfg)
    fold_key = None
    if args.fold is not None:
        fold_key = apply_fold(cfg, args.fold)
    else:
        use_all_subjects(cfg)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        name = osp.splitext(osp.basename(args.config))[0]
        cfg.work_dir = osp.join('work_dirs', name) + (
            f'/fold_{fold_key}' if fold_key else '')
    add_tensorboard_if_available(cfg)
    if args.inner_val is not None:
        if fold_key is None:
            raise ToolError('--inner-val needs --fold')
        cfg.inner_val = dict(cfg.get('inner_val') or {},
                             num_subjects=args.inner_val)
        from raicl_mm.runner_setup import sync_data_settings
        sync_data_settings(cfg)
        use_inner_validation(cfg, args.inner_val_interval)
        set_dump_file(cfg, 'test_evaluator',
                      osp.join(cfg.work_dir, 'predictions.json'))
    elif args.no_validate or fold_key is None:
        cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    else:
        # Score the test subject once, with the last epoch's model.
        max_epochs = cfg.train_cfg.max_epochs
        cfg.train_cfg.val_begin = max_epochs
        cfg.train_cfg.val_interval = max_epochs
        set_dump_file(cfg, 'val_evaluator',
                      osp.join(cfg.work_dir, 'predictions.json'))
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise ToolError(f'--resume: checkpoint {args.resume} does not exist')
        cfg.resume, cfg.load_from = True, args.resume
    if cfg.load_from and (args.trust_checkpoint or cfg.get('trust_checkpoint')):
        compat.trust_checkpoint(cfg.load_from)
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    if args.seed is not None:
        cfg.randomness = dict(seed=args.seed, deterministic=args.deterministic,
                              diff_rank_seed=args.diff_rank_seed)
    return cfg


def train(runner, args):
    runner.train()
    if args.inner_val is not None:
        # Score the test subject once, with the checkpoint chosen on the
        # held-out training subjects.
        best = runner.message_hub.get_info('best_ckpt')
        if best:
            runner.load_checkpoint(best)
        runner.test()


def main(argv=None):
    args = parse_args(argv)
    import raicl_mm  # noqa: F401  (applies the stack fixes first)
    from raicl_mm.runner_setup import run_with_runner
    return run_with_runner(build_cfg, args, train)


if __name__ == '__main__':
    sys.exit(main())
