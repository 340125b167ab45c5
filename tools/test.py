#!/usr/bin/env python
"""Score a trained checkpoint with MMEngine's Runner (mmaction2's flags).

Without ``--fold`` the config's own fold is scored; ``--fold`` picks another
(``all``: every sample of the protocol). Predictions with sample ids go to
``WORK_DIR/predictions_test.json``; ``--dump FILE.pkl`` also writes mmaction2's
pickle of the raw predictions (``DumpResults``), ``--dump FILE.json`` writes
our JSON there instead; ``--show-dir DIR`` writes the confusion matrix
picture there. ``--mode ensemble`` scores the mean softmax over every instance
of a clip instead of the middle one. ``--cfg-options`` are merged last.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    from raicl_mm.engine.cli import add_common_args, parse_tool_args
    p = argparse.ArgumentParser(description='Test (and eval) a Ra-ICL model')
    p.add_argument('config', help='test config file path')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('--dump', type=str,
                   help='dump predictions: .pkl as mmaction2 (DumpResults), '
                   '.json as ours (with sample ids)')
    p.add_argument('--show-dir', help='folder for the confusion-matrix '
                   'picture of the scored samples')
    p.add_argument('--mode', choices=('middle', 'ensemble'), default=None,
                   help="score the middle instance (A.1.3) or the mean softmax "
                   "over every instance ('ensemble'); default: the config's")
    add_common_args(p, 'CHECKPOINT')
    return parse_tool_args(p, argv)


def build_cfg(args):
    from raicl_mm.engine import cli
    if not osp.isfile(args.checkpoint):
        raise cli.ToolError(f'checkpoint {args.checkpoint} does not exist')
    if args.dump and not args.dump.endswith(('.pkl', '.pickle', '.json')):
        raise cli.ToolError(f'--dump {args.dump}: the file must end in .pkl, '
                            f'.pickle or .json')
    cfg = cli.read_config(args.config)
    cfg.launcher = args.launcher
    fold_name = (cli.apply_fold(cfg, args.fold) if args.fold is not None
                 else cli.default_fold_name(cfg))
    if fold_name == 'all':
        # every subject: a LOSO checkpoint was trained on all but one of them
        print('warning: --fold all scores every subject of the protocol, including '
              'those the checkpoint was trained on: its UF1 is not a held-out score '
              '(score a fold\'s own test subject with --fold KEY)', file=sys.stderr)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = cli.default_work_dir(args.config, fold_name)
    json_dump = osp.join(cfg.work_dir, 'predictions_test.json')
    if args.dump and args.dump.endswith('.json'):
        json_dump = args.dump
    cli.set_dump_file(cfg, 'test_evaluator', json_dump)
    if args.dump and not args.dump.endswith('.json'):
        ev = cfg.test_evaluator
        ev = list(ev) if isinstance(ev, (list, tuple)) else [ev]
        ev.append(dict(type='DumpResults', out_file_path=args.dump))
        cfg.test_evaluator = ev
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if args.trust_checkpoint:
        cfg.trust_checkpoint = True
    # Training-only parts are not needed to score. Options that set them
    # (a LOSO plan's train_cfg.max_epochs=...) are merged before they are
    # dropped, so the same --cfg-options serve train.py and test.py.
    options = dict(args.cfg_options or {})
    training = {k: v for k, v in options.items()
                if k.split('.')[0] in cli.TRAINING_ONLY}
    if training:
        cfg.merge_from_dict(training)
    for key in cli.TRAINING_ONLY:
        if key in cfg:
            cfg[key] = None
    if args.mode is not None:
        cli.set_test_mode(cfg, args.mode)
    rest = {k: v for k, v in options.items() if k not in training}
    if rest:
        cfg.merge_from_dict(rest)
    args.json_dump = json_dump
    # a fold folder of a LOSO work dir is the plan's: refused with other settings
    from raicl_mm.protocol.fold_guard import guard_planned_fold
    args.plan_guard = guard_planned_fold(args, cfg, fold_name, None)
    return cfg


def test(runner, args):
    runner.test()
    from raicl_mm.protocol.fold_guard import stamp_planned_fold
    stamp_planned_fold(getattr(args, 'plan_guard', None), runner.work_dir,
                       'tools/test.py', args.json_dump)
    if args.show_dir:
        from raicl_mm.engine.cli import confusion_picture
        print(confusion_picture(args.json_dump, args.show_dir))


def main(argv=None):
    args = parse_args(argv)
    import raicl_mm  # noqa: F401  (applies the stack fixes first)
    from raicl_mm.engine.cli import run_tool
    return run_tool(build_cfg, args, test)


if __name__ == '__main__':
    from raicl_mm.engine.cli import main_guard
    sys.exit(main_guard(main))
