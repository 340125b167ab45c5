#!/usr/bin/env python
"""Run the ablation grid (methods x seeds, k folds by subject), resumable.

    python tools/ablation.py --seeds 0 1 2 --folds 2 \
        --out benchmarks/results/ablation_synthetic.json

writes one record per run to ``--out`` and the Markdown table beside it
(``.md``); finished runs are skipped when the command is run again. See
``raicl_mm.protocol.ablation`` and docs/benchmark.md.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Ra-ICL ablation grid')
    p.add_argument('--method', action='append', default=None,
                   metavar='NAME=CONFIG[::key=value ...]',
                   help='a method (repeatable); default: M1 M2 M4 M5 M6 and '
                   'the label-shuffled control on configs/benchmark/')
    p.add_argument('--grid', default=None,
                   help='a named grid of raicl_mm.protocol.ablation.GRIDS: v3 '
                   '(the evidence grid on benchmark v3), v2 (the same rows on '
                   'v2), v2-history (the rows of the earlier v2 tables)')
    p.add_argument('--only', nargs='+', default=None,
                   help='run only these of the default methods')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--folds', type=int, default=2,
                   help='k folds by subject (default 2)')
    p.add_argument('--fold-seed', type=int, default=0,
                   help='seed of the subject split (shared by every run)')
    p.add_argument('--out', default='benchmarks/results/ablation_synthetic.json')
    p.add_argument('--work-root', default='work_dirs/ablation')
    p.add_argument('--no-attention', action='store_true',
                   help='skip the attention measurements')
    p.add_argument('--cfg-options', nargs='+', default=[],
                   help='key=value overrides added to every run')
    p.add_argument('--jobs', type=int, default=1,
                   help='fold-runs trained at once, each in its own process '
                   '(several folds sharing one GPU)')
    p.add_argument('--budget-s', type=float, default=None,
                   help='with --jobs: start no fold-run after this many '
                   'seconds; runs left incomplete are not recorded')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from raicl_mm.protocol.ablation import (DEFAULT_METHODS, GRIDS,
                                            AblationError, parse_method,
                                            run_ablation)
    try:
        if args.grid is not None and args.grid not in GRIDS:
            raise AblationError(f'--grid {args.grid!r}: choose from '
                                f'{sorted(GRIDS)}')
        if args.grid is not None and args.method:
            raise AblationError('--grid and --method: give one of them')
        if args.jobs < 1:
            raise AblationError(f'--jobs {args.jobs}: must be >= 1')
        methods = ([parse_method(m) for m in args.method] if args.method
                   else list(GRIDS[args.grid] if args.grid
                             else DEFAULT_METHODS))
        if args.only:
            unknown = sorted(set(args.only) - {m.name for m in methods})
            if unknown:
                raise AblationError(f'--only: unknown method(s) {unknown}')
            methods = [m for m in methods if m.name in args.only]
        run_ablation(methods, args.seeds, args.folds, args.out, args.work_root,
                     extra_options=args.cfg_options, fold_seed=args.fold_seed,
                     attention=not args.no_attention,
                     log=lambda msg: print(msg, flush=True), jobs=args.jobs,
                     budget_s=args.budget_s)
    except (AblationError, RuntimeError) as err:
        # One line for a user error or a failed fold (its log is named).
        print(f'ablation: {err}', file=sys.stderr)
        return 2
    print(f'results: {args.out} (table: {osp.splitext(args.out)[0]}.md)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
