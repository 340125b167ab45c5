"""Measure the stated properties of a generated synthetic set from its truth.

Everything here is read from the set's ``manifest.json`` and masks (the
ground truth the generator keeps), not from any model: the size and balance,
the amplitudes, the apex annotation error, the region areas and overlaps,
how much of the class evidence lies away from the annotated apex, and how
often each nuisance occurs. ``docs/benchmark.md`` reports these figures for
the ``benchmark`` preset.
"""
from __future__ import annotations

import json
import os.path as osp
from collections import Counter
from typing import Any, Dict, List

import cv2
import numpy as np

from .generator import MANIFEST_NAME


def _read_mask(root: str, rel: str) -> np.ndarray:
    img = cv2.imread(osp.join(root, rel), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise FileNotFoundError(f'{osp.join(root, rel)}: mask not readable')
    return img > 0


def _summary(values: List[float]) -> Dict[str, float]:
    v = np.asarray(values, float)
    return {'min': round(float(v.min()), 4), 'median': round(float(np.median(v)), 4),
            'mean': round(float(v.mean()), 4), 'max': round(float(v.max()), 4)}


def measure_properties(root: str) -> Dict[str, Any]:
    """The measured properties of the set in ``root`` (see module doc).

    Raises:
        FileNotFoundError: No manifest, or a mask it names is missing.
        ValueError: The manifest is not a synthetic set's.
    """
    path = osp.join(root, MANIFEST_NAME)
    with open(path, encoding='utf-8') as fh:
        manifest = json.load(fh)
    clips = manifest.get('clips')
    if not isinstance(clips, list) or not clips:
        raise ValueError(f'{path}: no "clips" list')
    n = len(clips)
    by_subject = Counter(c['subject'] for c in clips)
    emotions = Counter(c.get('sheet_emotion', c['emotion']) for c in clips)
    out: Dict[str, Any] = {
        'subjects': len(by_subject), 'clips': n,
        'clips_per_subject': _summary(list(by_subject.values())),
        'class_fraction': {k: round(v / n, 4) for k, v in sorted(emotions.items())},
        'frames_per_clip': _summary([c['num_frames'] for c in clips]),
        'primary_px': _summary([c['amplitude_px'] for c in clips]),
    }
    err = [c['apex'] - c.get('true_apex', c['apex']) for c in clips]
    out['apex_error_frames'] = {
        'mean_abs': round(float(np.mean(np.abs(err))), 3),
        'std': round(float(np.std(err)), 3),
        'exact_fraction': round(float(np.mean(np.asarray(err) == 0)), 4),
        'mean_abs_fraction_of_clip': round(float(np.mean(
            [abs(e) / c['num_frames'] for e, c in zip(err, clips)])), 4)}
    sec = [c for c in clips if 'secondary_px' in c]
    if sec:
        out['secondary_px'] = _summary([c['secondary_px'] for c in sec])
        out['secondary_over_primary'] = _summary(
            [c['secondary_px'] / c['amplitude_px'] for c in sec])
        # Class evidence away from the annotated apex: the secondary
        # intensity at the sheet's apex frame vs at its own peak.
        at_apex, frames_half = [], []
        for c in sec:
            k = np.asarray(c['intensity']['secondary'])
            at_apex.append(float(k[c['apex'] - c['onset']]))
            frames_half.append(int((k >= 0.5).sum()))
        out['secondary_at_annotated_apex'] = _summary(at_apex)
        out['secondary_peak_not_at_annotated_apex'] = round(float(np.mean(
            [c['secondary_apex'] != c['apex'] for c in sec])), 4)
        out['frames_with_secondary_above_half'] = _summary(frames_half)
        # Region areas (fraction of the frame) and the overlap of primary and
        # secondary regions, per class.
        areas: Dict[str, Dict[str, List[float]]] = {}
        for c in sec:
            p = _read_mask(root, c['mask_primary'])
            s = _read_mask(root, c['mask_secondary'])
            a = areas.setdefault(c['emotion'], {'primary': [], 'secondary': [],
                                                'overlap': []})
            a['primary'].append(float(p.mean()))
            a['secondary'].append(float(s.mean()))
            a['overlap'].append(float((p & s).sum() / max(s.sum(), 1)))
        out['region_area'] = {e: {k: round(float(np.mean(v)), 4)
                                  for k, v in a.items()}
                              for e, a in sorted(areas.items())}
    dist = [c['distractors'] for c in clips]
    out['nuisance_fraction'] = {
        'blink': round(float(np.mean([d.get('blink') is not None for d in dist])), 4),
        'distractor_region': round(float(np.mean(
            ['distractor' in c.get('regions', {}) for c in clips])), 4),
    }
    out['head_shift_px'] = _summary([d['head_shift_px'] for d in dist])
    if any('head_rotation_deg' in d for d in dist):
        out['head_rotation_deg'] = _summary([d.get('head_rotation_deg', 0.0)
                                             for d in dist])
    if any('illumination_gain' in d for d in dist):
        out['illumination_gain'] = _summary([d.get('illumination_gain', 0.0)
                                             for d in dist])
    if any('jpeg_quality' in c for c in clips):
        out['jpeg_quality'] = _summary([c.get('jpeg_quality') for c in clips
                                        if 'jpeg_quality' in c])
    # Class independence of the nuisances: their rate within each class.
    rates = {}
    for e in sorted(emotions):
        cs = [c for c in clips if c['emotion'] == e]
        rates[e] = {
            'blink': round(float(np.mean([c['distractors'].get('blink') is not None
                                          for c in cs])), 3),
            'distractor_region': round(float(np.mean(
                ['distractor' in c.get('regions', {}) for c in cs])), 3),
            'primary_px_median': round(float(np.median(
                [c['amplitude_px'] for c in cs])), 3)}
    out['per_class'] = rates
    return out
