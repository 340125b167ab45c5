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
    parser.add_argument('--decode', action='store_true',
                        help='decode every frame and check its size (slower)')
    parser.add_argument('--spot-apex', action='store_true',
                        help='spot every clip\'s apex and compare it with the sheet')
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
    from raicl_mm.datasets.sources import get_classes, protocol_name
    classes = get_classes(protocol)
    summary = dict(protocol=protocol_name(protocol), **_counts(report.records, classes))
    datasets = sorted({r.dataset for r in report.records})
    summary['by_dataset'] = {
        name: _counts([r for r in report.records if r.dataset == name], classes)
        for name in datasets}
    summary['skipped'] = list(report.skipped)
    summary['flagged'] = list(report.flagged)
    return summary


DATA_KEYS = ('protocol', 'data_roots', 'ann_files', 'exclude_file', 'sampling',
             'flow_cfg', 'holdout')


def data_settings(cfg) -> Dict:
    """The data settings of a config: top-level keys (older configs) or the
    Ra-ICL dataset dict of its loaders (:func:`raicl_mm.engine.config.data_settings`).

    Returns:
        A plain dict of :data:`DATA_KEYS` (absent keys left out); empty when
        the config has neither.
    """
    plain = (lambda v: v.to_dict() if hasattr(v, 'to_dict') else v)
    if cfg.get('protocol') is not None:
        source = cfg
    else:
        from raicl_mm.engine.config import ConfigError
        from raicl_mm.engine.config import data_settings as dataset_dict
        try:
            source = dataset_dict(cfg)
        except ConfigError:
            source = {}
    return {k: plain(source.get(k)) for k in DATA_KEYS if source.get(k) is not None}


def _spotter(report, data: Dict) -> Dict:
    """The spotter against the sheet's apex (``--spot-apex``)."""
    from raicl_mm.datasets.sampling import SamplingConfig, onset_motion, spot_apex
    from raicl_mm.flow import FlowConfig
    flow_cfg = FlowConfig(**(data.get('flow_cfg') or {}))
    sampling = SamplingConfig(**(data.get('sampling') or {}))
    frames, fractions, clips = [], [], []
    for record in report.records:
        if record.num_frames < 2:
            continue
        pos = spot_apex(onset_motion(record, flow_cfg), sampling.spot_sigma,
                        sampling.spot_margin)
        entry = dict(id=record.sample_id, spotted=record.frame_numbers[pos],
                     sheet=record.apex)
        if record.apex is not None:
            error = abs(record.frame_numbers[pos] - record.apex)
            frames.append(error)
            fractions.append(error / record.num_frames)
            entry['error'] = error
        clips.append(entry)
    mean = (lambda v: round(sum(v) / len(v), 4) if v else None)
    return dict(compared=len(frames), mae_frames=mean(frames), mae_fraction=mean(fractions),
                spot_sigma=sampling.spot_sigma, spot_margin=sampling.spot_margin,
                flow=flow_cfg.method, clips=clips)


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
    try:
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
    except Exception as err:  # noqa: BLE001 - a config is user input
        print(f'error: {args.config}: {type(err).__name__}: '
              f'{str(err).strip().splitlines()[0] if str(err).strip() else ""}',
              file=sys.stderr)
        return 2
    data = data_settings(cfg)
    if data.get('protocol') is None:
        print(f'error: {args.config} sets no protocol (train_dataloader.dataset.protocol '
              'or a top-level key "protocol")', file=sys.stderr)
        return 2
    from raicl_mm.datasets.folds import holdout_split
    from raicl_mm.datasets.sampling import SamplingConfig, apex_report
    from raicl_mm.datasets.sources import build_records
    from raicl_mm.flow.instances import check_clip_frames
    protocol = data['protocol']
    try:
        sampling = SamplingConfig(**(data.get('sampling') or {}))
        report = build_records(protocol, data.get('data_roots'), data.get('ann_files'),
                               exclude_file=data.get('exclude_file'),
                               check_frames=not args.sheets_only)
        summary = summarize(report, protocol)
        if data.get('holdout') is not None:
            splits = holdout_split(report.records, data['holdout'])
            summary['holdout'] = {k: _counts(v, list(summary['classes']))
                                  for k, v in splits.items()}
        summary['apex'] = apex_report(report.records, sampling)
        if not args.sheets_only:
            summary['corrupt_frames'] = [
                p for r in report.records for p in check_clip_frames(r, args.decode)]
        if args.spot_apex and not args.sheets_only:
            summary['spotter'] = _spotter(report, data)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f'error: {str(err).strip().splitlines()[0]}', file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
