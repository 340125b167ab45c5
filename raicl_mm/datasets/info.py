"""What a dataset config holds: samples, subjects, classes, bad frames, apex.

The summary that ``tools/dataset_info.py`` prints (its docstring describes the
JSON); computed from the sheets and the frame tree, no flow unless the apex
spotter is asked for.
"""
from __future__ import annotations

from collections import Counter
from typing import Dict, List


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
             'flow_cfg', 'holdout', 'synthetic')


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


class NoProtocolError(ValueError):
    """The config names no protocol anywhere."""


def dataset_info(cfg, sheets_only: bool = False, decode: bool = False,
                 spot_apex: bool = False) -> Dict:
    """The summary of a config's data (see ``tools/dataset_info.py``).

    Raises:
        ValueError / TypeError / FileNotFoundError: bad input, one line.
    """
    from raicl_mm.datasets.folds import holdout_split
    from raicl_mm.datasets.sampling import SamplingConfig, apex_report
    from raicl_mm.datasets.sources import build_records
    from raicl_mm.flow.instances import check_clip_frames
    data = data_settings(cfg)
    if data.get('protocol') is None:
        raise NoProtocolError('sets no protocol (train_dataloader.dataset.'
                              'protocol or a top-level key "protocol")')
    if data.get('synthetic'):
        from raicl_mm.datasets.dataset import prepare_synthetic
        prepare_synthetic(dict(data['synthetic']))
    protocol = data['protocol']
    sampling = SamplingConfig(**(data.get('sampling') or {}))
    report = build_records(protocol, data.get('data_roots'), data.get('ann_files'),
                           exclude_file=data.get('exclude_file'),
                           check_frames=not sheets_only)
    summary = summarize(report, protocol)
    if data.get('holdout') is not None:
        splits = holdout_split(report.records, data['holdout'])
        summary['holdout'] = {k: _counts(v, list(summary['classes']))
                              for k, v in splits.items()}
    summary['apex'] = apex_report(report.records, sampling)
    if not sheets_only:
        summary['corrupt_frames'] = [
            p for r in report.records for p in check_clip_frames(r, decode)]
    if spot_apex and not sheets_only:
        summary['spotter'] = _spotter(report, data)
    return summary
