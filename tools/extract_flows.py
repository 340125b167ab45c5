"""Fill the flow cache of a config before training (all cores, resumable).

Example::

    python tools/extract_flows.py configs/raicl_cde.py --workers 16 \
        --cfg-options data_roots.casme2=/data/CASME2/Cropped

Reads the config's top-level ``protocol``, ``data_roots``, ``ann_files``,
``exclude_file`` (optional), ``flow_cfg``, ``sampling`` and ``flow_cache``,
computes every clip's instance set that is not cached yet (clips already
cached with the same parameters are reused) and prints a JSON summary on
stdout; the progress bar goes to stderr. Exit status: 0 when every clip is
cached, 1 when some clip failed (listed in the summary), 2 for a bad config.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import argparse  # noqa: E402
import json  # noqa: E402
from typing import List, Optional  # noqa: E402

from mmengine.config import Config, DictAction  # noqa: E402

REQUIRED_KEYS = ('protocol', 'data_roots', 'ann_files', 'flow_cache')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description='Compute and cache the onset->frame TV-L1 flow instances '
                    '(u, v, strain) of every clip of a config.')
    parser.add_argument('config', help='config file (mmengine Config)')
    parser.add_argument('--workers', type=int, default=None,
                        help='worker processes (default: the config\'s '
                             'flow_workers, else all cores)')
    parser.add_argument('--no-progress', action='store_true',
                        help='do not draw the progress bar')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={},
        help='override config keys, e.g. flow_cfg.size="(64,64)" '
             'sampling.strategy=uniform')
    return parser.parse_args(argv)


def _plain(value):
    """ConfigDict/list values as plain Python containers."""
    if hasattr(value, 'to_dict'):
        return value.to_dict()
    return dict(value) if isinstance(value, dict) else value


def main(argv: Optional[List[str]] = None) -> int:
    """Build the records, fill the cache, print the summary."""
    args = parse_args(argv)
    from raicl_mm.runner_setup import ToolError, load_config
    try:
        cfg = load_config(args.config, args.cfg_options)
        from raicl_mm.runner_setup import prepare_embedded_data
        prepare_embedded_data(cfg)
    except (ToolError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    missing = [k for k in REQUIRED_KEYS if k not in cfg]
    if missing:
        print(f'error: config {args.config} lacks the top-level key(s) '
              f'{", ".join(missing)}', file=sys.stderr)
        return 2

    # Imported here: the package import is slow and --help should not be.
    from raicl_mm.flow import FlowConfig
    from raicl_mm.flow.cache import (FlowCache, SamplingConfig,
                                              extract_all)
    from raicl_mm.datasets.sources import build_records

    try:
        flow_cfg = FlowConfig(**_plain(cfg.get('flow_cfg') or {}))
        sampling_cfg = SamplingConfig(**_plain(cfg.get('sampling') or {}))
    except (TypeError, ValueError) as exc:
        print(f'error: config {args.config}: {exc}', file=sys.stderr)
        return 2
    report = build_records(cfg.protocol, _plain(cfg.data_roots),
                           _plain(cfg.ann_files),
                           exclude_file=cfg.get('exclude_file'))
    workers = args.workers if args.workers is not None else cfg.get(
        'flow_workers')
    cache = FlowCache(cfg.flow_cache, flow_cfg, sampling_cfg)
    summary = extract_all(report.records, cache, workers=workers,
                          progress=not args.no_progress)
    out = dict(config=args.config, protocol=cfg.protocol,
               cache=str(cache.root), clips=len(report.records),
               skipped=len(report.skipped), flow_cfg=flow_cfg.key_dict(),
               sampling=vars(sampling_cfg), **summary)
    print(json.dumps(out, indent=2))
    return 1 if summary['failed'] else 0


if __name__ == '__main__':
    sys.exit(main())
