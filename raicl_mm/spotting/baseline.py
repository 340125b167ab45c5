"""The training-free spotter: window-flow motion, peaks, merging.

The kind the challenges ship as their baseline (MEGC 2019 LBP/chi-square and
MEGC 2020 MDMD, see :mod:`raicl_mm.spotting.features` and
:mod:`raicl_mm.spotting.peaks`): the motion signal of each scale (onset-
relative flow in sliding windows, per facial region, eyes left out, the
strongest region) is smoothed, thresholded with ``mean + p (max - mean)`` and
cut at its peaks into ``[peak - k, peak + k]``; micro peaks come from the
micro scale, macro peaks from the macro scale, and a micro interval inside a
macro one is dropped.

Nothing is learned. ``p`` is either given or, with ``tune_p=True``, chosen per
type on the training videos of a fold from ``p_grid`` (the F1 of that type on
those videos), the way challenge baselines pick their threshold on the
development data; the test subject is never seen.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .features import VideoFeatures
from .metrics import spotting_scores
from .peaks import curves_to_intervals
from .registry import SPOTTERS

TYPES = ('micro', 'macro')


def valid_frames(feats: VideoFeatures) -> Dict[str, np.ndarray]:
    """Frames whose window lies inside the video, per scale."""
    out = {}
    for s, k in feats.k.items():
        v = np.zeros(feats.num_frames, bool)
        v[k:max(k, feats.num_frames - k)] = True
        out[s] = v
    return out


class _SpotterBase:
    """What both spotters share: curves -> intervals, threshold tuning."""

    name = 'spotter'

    def __init__(self, p: Optional[Dict[str, float]] = None, tune_p: bool = True,
                 p_grid: Sequence[float] = tuple(np.round(np.arange(0.05, 0.96, 0.05), 2)),
                 suppress_micro_in_macro: bool = True):
        self.p = {**dict(micro=0.5, macro=0.5), **(p or {})}
        self.tune_p = bool(tune_p)
        self.p_grid = tuple(float(x) for x in p_grid)
        self.suppress = bool(suppress_micro_in_macro)

    def curves(self, feats: VideoFeatures) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    def _smooth(self, feats: VideoFeatures) -> Optional[Dict[str, int]]:
        return None

    def _intervals(self, feats: VideoFeatures, p: Dict[str, float],
                   curves: Optional[Dict[str, np.ndarray]] = None) -> List[Dict]:
        curves = self.curves(feats) if curves is None else curves
        return curves_to_intervals(curves, feats.k, p, self._smooth(feats),
                                   valid_frames(feats), self.suppress)

    def spot(self, feats: VideoFeatures) -> List[Dict]:
        """Spotted intervals of one video: ``onset, apex, offset, type, score``."""
        return self._intervals(feats, self.p)

    def tune(self, videos: Sequence[Tuple[VideoFeatures, List[Dict]]]) -> Dict[str, float]:
        """Choose ``p`` per type on (features, ground truth) pairs; sets ``self.p``."""
        cached = [(f, g, self.curves(f)) for f, g in videos]
        best = dict(self.p)
        for kind in TYPES:
            scores = []
            for p in self.p_grid:
                trial = dict(best, **{kind: p})
                res = spotting_scores([dict(gt=g, pred=self._intervals(f, trial, c))
                                       for f, g, c in cached])
                scores.append((res[kind]['f1'], res['overall']['f1'], -abs(p - 0.5), p))
            best[kind] = max(scores)[3]
        self.p = best
        return best

    def fit(self, videos: Sequence[Tuple[VideoFeatures, List[Dict]]], seed: int = 0
            ) -> '_SpotterBase':
        if self.tune_p and videos:
            self.tune(videos)
        return self


@SPOTTERS.register_module()
class FlowPeakSpotter(_SpotterBase):
    """Training-free baseline: the window-flow motion signal of each scale.

    Args:
        p: Threshold fraction per type (``mean + p (max - mean)``).
        tune_p: Choose ``p`` on the training videos (:meth:`fit`).
        p_grid: Candidates for ``p``.
        suppress_micro_in_macro: Drop micro intervals inside macro ones.
    """

    name = 'baseline'

    def curves(self, feats: VideoFeatures) -> Dict[str, np.ndarray]:
        return {t: np.asarray(feats.signal[t], dtype=np.float64) for t in TYPES}
