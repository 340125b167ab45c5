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
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from raicl_mm.protocol.ablation import (DEFAULT_METHODS, AblationError,
                                            parse_method, run_ablation)
    try:
        methods = ([parse_method(m) for m in args.method] if args.method
                   else list(DEFAULT_METHODS))
        if args.only:
            unknown = sorted(set(args.only) - {m.name for m in methods})
            if unknown:
                raise AblationError(f'--only: unknown method(s) {unknown}')
            methods = [m for m in methods if m.name in args.only]
        run_ablation(methods, args.seeds, args.folds, args.out, args.work_root,
                     extra_options=args.cfg_options, fold_seed=args.fold_seed,
                     attention=not args.no_attention,
                     log=lambda msg: print(msg, flush=True))
    except AblationError as err:
        print(f'ablation: {err}', file=sys.stderr)
        return 2
    print(f'results: {args.out} (table: {osp.splitext(args.out)[0]}.md)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
