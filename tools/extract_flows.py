"""Fill the flow cache of a config before training (all cores, resumable).

Example::

    python tools/extract_flows.py configs/raicl_cde.py --workers 16 \
        --cfg-options test_dataloader.dataset.data_roots.casme2=/data/CASME2/Cropped

Reads the data settings of the config's ``MicroExpressionFlowDataset`` (the
test loader's; the loaders must agree), computes the onset->frame pairs of
every clip's instance set that are not in the per-pair cache yet (pairs that
any other sampling or config wrote are reused) and prints ONE JSON line on
stdout (``pairs_computed``, ``pairs_reused``, ``failed`` ...,
:func:`raicl_mm.datasets.instance_sets.extract_config_flows`); the progress
bar goes to stderr. Exit status: 0 when every clip is cached, 1 when some
clip failed (listed in the summary), 2 for a bad config or an unwritable
cache (one line on stderr).
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import argparse  # noqa: E402
import json  # noqa: E402
from typing import List, Optional  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Compute and cache the onset->frame flow pairs '
                    '(u, v, strain) of every clip of a config.')
    parser.add_argument('config', help='config file (mmengine Config)')
    parser.add_argument('--workers', type=int, default=None,
                        help='worker processes (default: the dataset\'s '
                             'flow_workers, else all cores)')
    parser.add_argument('--no-progress', action='store_true',
                        help='do not draw the progress bar')
    parser.add_argument('--debug', action='store_true',
                        help='show the traceback of an error (also RAICL_DEBUG=1)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={},
        help='override config keys in mmaction2 style, e.g. '
             'test_dataloader.dataset.flow_cfg.size="(64,64)" (set the '
             'three loaders alike)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Read the config, fill the cache, print the one-line summary."""
    args = parse_args(argv)
    from raicl_mm.datasets.instance_sets import extract_config_flows
    from raicl_mm.engine.cli import (ToolError, debug_wanted, error_line,
                                     load_checked_config, one_line)
    from raicl_mm.flow.cache_io import FlowCacheError
    try:
        cfg = load_checked_config(args.config, args.cfg_options)
        summary = extract_config_flows(cfg, workers=args.workers,
                                       progress=not args.no_progress)
    except (ToolError, FlowCacheError, ValueError, TypeError, OSError) as err:
        if debug_wanted(args):
            raise
        print(f'error: {args.config}: {one_line(err)}', file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - one line unless --debug
        if debug_wanted(args):
            raise
        print(error_line(err, False), file=sys.stderr)
        return 1
    print(json.dumps(dict(config=args.config, **summary)))
    return 1 if summary['failed'] else 0


if __name__ == '__main__':
    sys.exit(main())
