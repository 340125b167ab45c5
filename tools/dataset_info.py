"""Count the samples of a dataset config, from its sheets and frame tree.

Usage::

    python tools/dataset_info.py CONFIG [--sheets-only] [--cfg-options k=v ...]

Reads the config's top-level ``protocol``, ``data_roots``, ``ann_files`` and
optional ``exclude_file``, parses the real datasets with
:func:`raicl_mm.datasets.sources.build_records` and prints one JSON object::

    {"protocol": ..., "samples": N, "subjects": N, "classes": {name: N},
     "by_dataset": {name: {"samples": N, "subjects": N, "classes": {...}}},
     "skipped": [{"id": ..., "why": ...}], "flagged": [{"id": ..., "why": ...}]}

Subjects are distinct ``(dataset, subject)`` pairs.  ``--sheets-only``
counts from the sheets without reading frames.  Exit status 2 for a missing
config or key, 1 for bad data (the message names file and row).
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys
from collections import Counter
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import Config, DictAction  # noqa: E402

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
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config keys, e.g. data_roots.casme2=/data/c2')
    return parser.parse_args(argv)


def _counts(records: List, classes: List[str]) -> Dict:
    counter = Counter(r.label for r in records)
    extra = sorted(set(counter) - set(classes))
    return dict(samples=len(records),
                subjects=len({(r.dataset, r.subject) for r in records}),
                classes={name: counter.get(name, 0) for name in classes + extra})


def summarize(report, protocol: str) -> Dict:
    """The JSON summary of a parse report.

    Args:
        report: The :class:`~raicl_mm.datasets.records.ParseReport` that
            :func:`build_records` returned.
        protocol: The protocol (for the class order).

    Returns:
        A JSON-serialisable dict (see the module docstring).
    """
    from raicl_mm.datasets.sources import get_classes
    classes = get_classes(protocol)
    summary = dict(protocol=protocol, **_counts(report.records, classes))
    datasets = sorted({r.dataset for r in report.records})
    summary['by_dataset'] = {
        name: _counts([r for r in report.records if r.dataset == name], classes)
        for name in datasets}
    summary['skipped'] = list(report.skipped)
    summary['flagged'] = list(report.flagged)
    return summary


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
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if cfg.get('protocol') is None:
        print(f'error: {args.config} has no top-level key "protocol"', file=sys.stderr)
        return 2
    from raicl_mm.datasets.sources import build_records
    to_dict = (lambda v: v.to_dict() if hasattr(v, 'to_dict') else dict(v or {}))
    try:
        report = build_records(cfg.protocol, to_dict(cfg.get('data_roots')),
                               to_dict(cfg.get('ann_files')),
                               exclude_file=cfg.get('exclude_file'),
                               check_frames=not args.sheets_only)
    except (ValueError, FileNotFoundError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(json.dumps(summarize(report, cfg.protocol), indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
