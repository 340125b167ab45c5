"""Count the samples of a dataset config, from its sheets and frame tree.

Usage::

    python tools/dataset_info.py CONFIG [--sheets-only] [--decode] [--spot-apex]
                                 [--cfg-options k=v ...]

Reads the config's data settings (``protocol``, ``data_roots``, ``ann_files``,
``exclude_file``, ``sampling``, ``flow_cfg``, ``holdout``) from
``train_dataloader.dataset`` (or, in older configs, from top-level keys),
parses the datasets with :func:`raicl_mm.datasets.sources.build_records` and
prints one JSON object::

    {"protocol": ..., "samples": N, "subjects": N, "classes": {name: N},
     "by_dataset": {name: {"samples": N, "subjects": N, "classes": {...}}},
     "skipped": [{"id": ..., "why": ...}], "flagged": [{"id": ..., "why": ...}],
     "corrupt_frames": [{"id": ..., "file": ..., "why": ...}],
     "apex": {...}, "holdout": {...}, "spotter": {...}}

Subjects are distinct ``(dataset, subject)`` pairs. Every frame file is
checked for completeness (a truncated JPEG/PNG/BMP or a 0-byte file is listed
in ``corrupt_frames``); ``--decode`` also decodes each frame and checks its
size. ``apex`` counts where the apex-based strategies take their apex from
(clips falling back to the clip centre are listed). ``holdout`` counts the
splits of a hold-out protocol. ``--spot-apex`` runs the apex spotter on every
clip (flow of every frame: slow) and compares it with the sheet's apex.
``--sheets-only`` counts from the sheets without reading frames. Exit status
2 for bad input (a missing config, key or file, a bad sheet: one line naming
it), 0 otherwise.
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys
from typing import Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402

# raicl_mm itself is imported in the functions below: importing the package
# loads torch and mmaction (seconds), which a usage error should not wait for.


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` if None.

    Returns:
        The parsed namespace.
    """
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file (python)')
    parser.add_argument('--sheets-only', action='store_true',
                        help='count from the sheets without reading frames')
    parser.add_argument('--decode', action='store_true',
                        help='decode every frame and check its size (slower)')
    parser.add_argument('--spot-apex', action='store_true',
                        help='spot every clip\'s apex and compare it with the sheet')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config keys, e.g. train_dataloader.dataset.'
                        'data_roots.casme2=/data/c2 (each loader)')
    parser.add_argument('--debug', action='store_true',
                        help='show the traceback of an error (also RAICL_DEBUG=1)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the tool.

    Args:
        argv: Arguments without the program name.

    Returns:
        The exit status.
    """
    args = parse_args(argv)
    if not osp.isfile(args.config):
        print(f'error: config file not found: {args.config}', file=sys.stderr)
        return 2
    from raicl_mm.engine.cli import (ToolError, debug_wanted, error_line,
                                     load_checked_config)
    from raicl_mm.engine.config import ConfigError
    try:
        # the same checks as every tool, before any data is read: an
        # override that reaches nothing is refused by name
        cfg = load_checked_config(args.config, args.cfg_options, data_only=True)
    except (ToolError, ConfigError) as err:
        print(f'error: {args.config}: {str(err).strip().splitlines()[0]}',
              file=sys.stderr)
        return 2
    from raicl_mm.datasets.info import NoProtocolError, dataset_info
    try:
        summary = dataset_info(cfg, sheets_only=args.sheets_only,
                               decode=args.decode, spot_apex=args.spot_apex)
    except NoProtocolError as err:
        print(f'error: {args.config} {err}', file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError) as err:
        if debug_wanted(args):
            raise
        print(f'error: {str(err).strip().splitlines()[0]}', file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - one line unless --debug
        if debug_wanted(args):
            raise
        print(error_line(err, False), file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
