#!/usr/bin/env python
"""Run a whole leave-one-subject-out protocol, resumably, then report it.

    python tools/loso.py CONFIG [--work-dir DIR] [--folds K ...] [--workers N]
        [--cfg-options ...] [--amp] [--new-plan] [--allow-missing]

* Locks the work dir (a second runner on it says who holds it, exit 2).
* Prepares the data once (the synthetic set when the config asks for it,
  every clip's flow instances into the cache, on all cores) and writes
  ``WORK_DIR/loso_plan.json``: the folds, the samples of every fold, the
  clips whose flow failed, and the run's settings. A rerun with other
  settings is refused unless ``--new-plan`` (the old folds are archived).
* Runs each fold in ``WORK_DIR/fold_KEY/`` -- ``tools/train.py CONFIG --fold
  KEY``, resumed from its checkpoint, or ``tools/test.py`` on its final
  checkpoint when only the scoring is missing -- N at a time, each in its own
  process group that dies with this runner. A finished fold is skipped; a
  failed one is reported with its error line and the others go on.
* Then pools the predictions (``tools/loso_report.py WORK_DIR``), which
  refuses a run where a planned fold or sample was not scored unless
  ``--allow-missing``.

Exit status: 0 when every fold finished and the report was made, 1 when a
fold failed, 2 for a user error. See :mod:`raicl_mm.protocol.loso`.
``--plan-only`` and ``--task I`` are the halves ``tools/slurm_loso.sh`` uses.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    from mmengine.config import DictAction
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
                   help='do not make the pooled report at the end')
    p.add_argument('--allow-missing', action='store_true',
                   help='make the report even if planned folds or samples '
                   'were not scored (they are listed)')
    p.add_argument('--new-plan', action='store_true',
                   help='the settings changed on purpose: archive the old '
                   'plan and folds to WORK_DIR/superseded/ and start anew')
    p.add_argument('--amp', action='store_true')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    p.add_argument('--debug', action='store_true',
                   help='show the traceback of an error (also RAICL_DEBUG=1)')
    g = p.add_mutually_exclusive_group()
    g.add_argument('--plan-only', action='store_true',
                   help='prepare the data, write the plan, print the number '
                   'of folds (tools/slurm_loso.sh)')
    g.add_argument('--task', type=int, metavar='I',
                   help='run fold I of the existing plan only, locking just '
                   'that fold (a Slurm array task)')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import raicl_mm  # noqa: F401  (stack fixes)
    from raicl_mm.protocol import loso
    work_dir = args.work_dir or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.plan_only:
        return loso.plan_only(args.config, work_dir, args.cfg_options,
                              args.amp, args.new_plan)
    if args.task is not None:
        return loso.run_task(args.config, work_dir, args.task,
                             args.cfg_options, args.amp)
    return loso.run_protocol(
        args.config, work_dir, args.folds, args.workers, args.gpus, args.amp,
        args.cfg_options, args.no_report, args.new_plan, args.allow_missing)


if __name__ == '__main__':
    from raicl_mm.engine.cli import main_guard
    sys.exit(main_guard(main, tool='loso'))
