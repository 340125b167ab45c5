"""What a dataset config holds: samples, subjects, classes, bad frames, apex.

The summary that ``tools/dataset_info.py`` prints (its docstring describes the
JSON); computed from the sheets and the frame tree, no flow unless the apex
spotter is asked for.
"""
from __future__ import annotations

import statistics
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
    Ra-ICL dataset dict of its loaders (:func:`raicl_mm.datasets.settings.data_settings`).

    Returns:
        A plain dict of :data:`DATA_KEYS` (absent keys left out); empty when
        the config has neither.
    """
    plain = (lambda v: v.to_dict() if hasattr(v, 'to_dict') else v)
    if cfg.get('protocol') is not None:
        source = cfg
    else:
        from raicl_mm.datasets.settings import ConfigError
        from raicl_mm.datasets.settings import data_settings as dataset_dict
        try:
            source = dataset_dict(cfg)
        except ConfigError:
            source = {}
    return {k: plain(source.get(k)) for k in DATA_KEYS if source.get(k) is not None}


def _true_apexes(data: Dict) -> Dict:
    """``(subject, clip) -> true apex frame`` of a synthetic set, else {}.

    The generator's ``manifest.json`` (beside the sheet of ``synthetic.out``)
    keeps the true apex of every clip; real data has none.
    """
    import json
    import os.path as osp
    out = (data.get('synthetic') or {}).get('out')
    path = osp.join(out, 'manifest.json') if out else None
    if not path or not osp.isfile(path):
        return {}
    with open(path) as f:
        try:
            manifest = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f'{path}: not JSON ({err.msg}, line {err.lineno})'
                             ) from None
    clips = manifest.get('clips') if isinstance(manifest, dict) else None
    if not isinstance(clips, list):
        raise ValueError(f'{path}: no list under "clips"')
    out = {}
    for i, c in enumerate(clips):
        if not isinstance(c, dict) or 'true_apex' not in c:
            continue
        try:
            out[(str(c['subject']), str(c['filename']))] = int(c['true_apex'])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f'{path}: clips[{i}] needs "subject", "filename" '
                             'and an integer "true_apex"') from None
    return out


def _mae(errors: List[float], lengths: List[int]) -> Dict:
    if not errors:
        return dict(compared=0, mae_frames=None, mae_fraction=None)
    return dict(compared=len(errors),
                mae_frames=round(sum(errors) / len(errors), 4),
                median_frames=float(statistics.median(errors)),
                mae_fraction=round(sum(e / n for e, n in zip(errors, lengths))
                                   / len(errors), 4))


def _spotter(report, data: Dict) -> Dict:
    """The spotter against the sheet's apex (``--spot-apex``).

    On a synthetic set also against the true apex, beside the two baselines
    a spotter must beat: the clip centre and the sheet's annotation.
    """
    from raicl_mm.datasets.sampling import SamplingConfig, onset_motion, spot_apex
    from raicl_mm.flow import FlowConfig
    flow_cfg = FlowConfig(**(data.get('flow_cfg') or {}))
    sampling = SamplingConfig(**(data.get('sampling') or {}))
    truth = _true_apexes(data)
    sheet_err, sheet_len, clips = [], [], []
    vs_truth = dict(spotter=[], centre=[], sheet=[])   # (error, T) pairs
    for record in report.records:
        if record.num_frames < 2:
            continue
        numbers = list(record.frame_numbers)
        pos = spot_apex(onset_motion(record, flow_cfg), sampling.spot_sigma,
                        sampling.spot_margin)
        entry = dict(id=record.sample_id, spotted=numbers[pos],
                     sheet=record.apex)
        if record.apex is not None:
            error = abs(numbers[pos] - record.apex)
            sheet_err.append(error)
            sheet_len.append(record.num_frames)
            entry['error'] = error
        true = truth.get((str(record.subject), str(record.clip_id)))
        if true is not None:
            entry['true_apex'] = true
            n = record.num_frames
            vs_truth['spotter'].append((abs(numbers[pos] - true), n))
            vs_truth['centre'].append(
                (abs(numbers[(len(numbers) - 1) // 2] - true), n))
            if record.apex is not None:
                vs_truth['sheet'].append((abs(record.apex - true), n))
        clips.append(entry)
    out = dict(_mae(sheet_err, sheet_len), spot_sigma=sampling.spot_sigma,
               spot_margin=sampling.spot_margin, flow=flow_cfg.method)
    if vs_truth['spotter']:
        out['against_true_apex'] = {
            k: _mae([e for e, _ in v], [n for _, n in v])
            for k, v in vs_truth.items()}
    out['clips'] = clips
    return out


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
        from raicl_mm.datasets.synthetic_set import prepare_synthetic
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
