#!/usr/bin/env python
"""Score a trained checkpoint with MMEngine's Runner (mmaction2's flags).

``--fold`` scores one LOSO fold's test subject; without it every sample of the
protocol is scored. Predictions (with sample ids) go to ``--dump`` or to
``WORK_DIR/predictions_test.json``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    from raicl_mm.runner_setup import add_common_args, parse_tool_args
    p = argparse.ArgumentParser(description='Test (and eval) a Ra-ICL model')
    p.add_argument('config', help='test config file path')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('--dump', type=str,
                   help='JSON file for the predictions (with sample ids)')
    add_common_args(p, 'CHECKPOINT')
    return parse_tool_args(p, argv)


def build_cfg(args):
    from raicl_mm import compat
    from raicl_mm.runner_setup import (ToolError, apply_fold, load_config,
                                       prepare_embedded_data, set_dump_file)
    if not osp.isfile(args.checkpoint):
        raise ToolError(f'checkpoint {args.checkpoint} does not exist')
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    prepare_embedded_data(cfg)
    fold_key = apply_fold(cfg, args.fold) if args.fold is not None else None
    if fold_key is None:
        for key in ('test_dataloader',):
            ds = cfg[key]['dataset']
            ds['fold'], ds['split'] = None, 'all'
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(
            osp.basename(args.config))[0]) + (f'/fold_{fold_key}' if fold_key else '')
    set_dump_file(cfg, 'test_evaluator', args.dump or osp.join(
        cfg.work_dir, 'predictions_test.json'))
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if args.trust_checkpoint or cfg.get('trust_checkpoint'):
        compat.trust_checkpoint(args.checkpoint)
    # Training-only parts are not needed to score.
    cfg.train_dataloader = cfg.train_cfg = cfg.optim_wrapper = None
    cfg.param_scheduler = None
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    return cfg


def main(argv=None):
    args = parse_args(argv)
    import raicl_mm  # noqa: F401  (applies the stack fixes first)
    from raicl_mm.runner_setup import run_with_runner
    return run_with_runner(build_cfg, args, lambda runner, _: runner.test())


if __name__ == '__main__':
    sys.exit(main())
