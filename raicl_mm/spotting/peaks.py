"""Score curve -> spotted intervals: smoothing, threshold, peaks, merging.

The recipe the MEGC baselines and SOFTNet / MEAN share:

1. smooth the per-frame score with a box of ``2k`` frames (``smooth`` in
   genbing99/MEAN_Spot-then-recognize ``training_utils.py``, SOFTNet's score
   aggregation);
2. threshold ``T = mean + p * (max - mean)`` of the video's curve (the
   threshold of Moilanen et al., ICPR 2014, used by the MEGC 2019/2020
   baselines and by SOFTNet/MEAN);
3. peaks above ``T`` at least ``k`` frames apart (``scipy.signal.find_peaks``
   with ``height=T, distance=k``, as MEAN does);
4. each peak becomes ``[peak - k, peak + k]`` (clipped to the video);
5. merging (ours): overlapping intervals of one type are fused (the union,
   the best score kept), and a micro interval lying mostly (> 50 % of its
   frames) inside a macro interval is dropped, since an expression is spotted
   once, as the longer of the two.

Each interval is a dict ``onset, apex, offset, type, score`` with ``score``
the peak's height normalised to ``(h - mean) / (max - mean)`` in ``[0, 1]``.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np


def box_smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average over ``width`` frames (same length, zero padding as np.convolve)."""
    x = np.asarray(x, dtype=np.float64)
    width = int(width)
    if width <= 1 or x.size == 0:
        return x.copy()
    return np.convolve(x, np.ones(width) / width, mode='same')


def moilanen_threshold(x: np.ndarray, p: float) -> float:
    """``mean + p * (max - mean)``."""
    x = np.asarray(x, dtype=np.float64)
    return float(x.mean() + p * (x.max() - x.mean())) if x.size else 0.0


def peak_intervals(score: np.ndarray, k: int, p: float, kind: str,
                   smooth: Optional[int] = None, valid: Optional[np.ndarray] = None
                   ) -> List[Dict]:
    """Steps 1-4 on one curve. ``valid`` masks frames the curve is defined on."""
    from scipy.signal import find_peaks
    s = box_smooth(score, 2 * k if smooth is None else smooth)
    ref = s[valid] if valid is not None and valid.any() else s
    if ref.size == 0:
        return []
    thr = moilanen_threshold(ref, p)
    mean, top = float(ref.mean()), float(ref.max())
    peaks, _ = find_peaks(s, height=thr, distance=max(1, int(k)))
    last = len(s) - 1
    out = []
    for pk in peaks:
        if valid is not None and not valid[pk]:
            continue
        out.append(dict(onset=int(max(0, pk - k)), apex=int(pk),
                        offset=int(min(last, pk + k)), type=kind,
                        score=float((s[pk] - mean) / (top - mean)) if top > mean else 1.0))
    return out


def merge_intervals(ivs: Sequence[Dict]) -> List[Dict]:
    """Fuse overlapping intervals of the same type (union, best score and apex)."""
    out: List[Dict] = []
    for kind in sorted({iv['type'] for iv in ivs}):
        cur = None
        for iv in sorted((i for i in ivs if i['type'] == kind), key=lambda d: d['onset']):
            if cur is not None and iv['onset'] <= cur['offset']:
                if iv['score'] > cur['score']:
                    cur['apex'], cur['score'] = iv['apex'], iv['score']
                cur['offset'] = max(cur['offset'], iv['offset'])
            else:
                if cur is not None:
                    out.append(cur)
                cur = dict(iv)
        if cur is not None:
            out.append(cur)
    return sorted(out, key=lambda d: (d['onset'], d['type']))


def suppress_micro_in_macro(ivs: Sequence[Dict], fraction: float = 0.5) -> List[Dict]:
    """Drop micro intervals with more than ``fraction`` of their frames in a macro one."""
    macro = [iv for iv in ivs if iv['type'] == 'macro']
    out = []
    for iv in ivs:
        if iv['type'] == 'micro' and macro:
            n = iv['offset'] - iv['onset'] + 1
            inside = max((max(0, min(iv['offset'], m['offset']) - max(iv['onset'], m['onset']) + 1)
                          for m in macro), default=0)
            if inside > fraction * n:
                continue
        out.append(iv)
    return out


def curves_to_intervals(curves: Dict[str, np.ndarray], k: Dict[str, int],
                        p: Dict[str, float], smooth: Optional[Dict[str, int]] = None,
                        valid: Optional[Dict[str, np.ndarray]] = None,
                        suppress: bool = True) -> List[Dict]:
    """Steps 1-5 for the micro and macro curves of one video."""
    ivs: List[Dict] = []
    for kind, curve in curves.items():
        ivs += peak_intervals(curve, k[kind], p[kind], kind,
                              None if smooth is None else smooth.get(kind),
                              None if valid is None else valid.get(kind))
    ivs = merge_intervals(ivs)
    return suppress_micro_in_macro(ivs) if suppress else ivs
