"""Pooled LOSO report: one confusion matrix over every fold's predictions.

Usage::

    python tools/loso_report.py WORK_DIR [--allow-missing] [--out DIR]

Reads ``WORK_DIR/loso_plan.json`` and ``WORK_DIR/fold_<subject>/
predictions.json`` and writes ``report.md``, ``report.json``,
``megc_log.csv`` and the confusion pictures into ``DIR`` (default
``WORK_DIR/report``); see :mod:`raicl_mm.protocol.report`. Exit status 2,
naming them, when a planned fold or sample was not scored (unless
``--allow-missing``, which lists them) or a file is unusable.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line (``sys.argv[1:]`` if ``argv`` is None)."""
    parser = argparse.ArgumentParser(
        description='Pooled UF1/UAR report over the folds of a LOSO run.')
    parser.add_argument('work_dir', help='LOSO work directory (holds '
                        'loso_plan.json and fold_<subject>/predictions.json)')
    parser.add_argument('--allow-missing', action='store_true',
                        help='report what was scored even if planned folds '
                        'or samples were not (they are listed)')
    parser.add_argument('--out', default=None,
                        help='output folder (default WORK_DIR/report)')
    parser.add_argument('--debug', action='store_true',
                        help='show the traceback of an error (also RAICL_DEBUG=1)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Build the pooled report; 0 on success, 2 when refused."""
    args = parse_args(argv)
    from raicl_mm.engine.cli import debug_wanted, error_line
    from raicl_mm.protocol.report import make_report, report_lines
    out = args.out or osp.join(args.work_dir, 'report')
    if osp.exists(out) and not osp.isdir(out):
        print(f'loso_report: --out {out} is a file, not a folder', file=sys.stderr)
        return 2
    try:
        report = make_report(args.work_dir, args.allow_missing, args.out)
    except (OSError, ValueError, TypeError, KeyError) as err:
        # a damaged plan or predictions file is the user's input
        if debug_wanted(args):
            raise
        text = str(err).strip().splitlines()
        print(f'loso_report: {text[0] if text else type(err).__name__}',
              file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - one line unless --debug
        if debug_wanted(args):
            raise
        print(f'loso_report: {error_line(err, False)}', file=sys.stderr)
        return 1
    print('\n'.join(report_lines(report)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
