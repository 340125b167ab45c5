"""MEGC spotting and spot-then-recognize (STR) metrics.

Definitions followed (and where they are written down):

* **True positive at IoU >= 0.5.** A spotted interval ``W_s`` and a
  ground-truth interval ``W_g`` match when
  ``|W_s ∩ W_g| / |W_s ∪ W_g| >= 0.5``, the intervals being the *sets of
  frames* ``onset..offset`` (inclusive). This is the MEGC 2019-2023 rule
  (Li et al., "Spotting micro-expressions on long videos sequences",
  arXiv:1812.10306, the MEGC 2019 baseline; He et al., "Spotting macro- and
  micro-expression intervals in long video sequences", FG 2020, the MEGC
  2020 baseline), and the inclusive count is that of the baseline code
  (``calc_iou`` in HeyingGithub/Baseline-project-for-MEGC2020_spotting,
  ``MDMD_results/result_helper.py``) and of the STR reference
  (``_calculate_iou`` in genbing99/STRS-Metric, ``strs_metric.py``, which
  intersects ``np.arange(onset, offset + 1)`` sets).
* **Matching.** Per video, spotted intervals are visited in order and each is
  matched to the first not-yet-matched ground truth with IoU >= 0.5 (the STR
  reference's ``evaluate_spotting``). One spotted interval takes at most one
  ground truth here; the reference loop does not ``break`` after a match, so
  a spotted interval overlapping two ground truths by >= 0.5 each would count
  twice there (possible only when two ground truths overlap each other by
  more than a third; it never happens in the benchmark, where expressions do
  not overlap).
* **Precision, recall, F1.** Counts are summed over every video of the
  dataset, then ``P = TP / (TP + FP)``, ``R = TP / (TP + FN)``,
  ``F1 = 2PR / (P + R)`` (0 when undefined), as both references compute.
* **Micro and macro apart.** Spotted intervals carry a type; micro spotted
  intervals are scored against micro ground truth only, macro against macro
  (MEGC 2020 baseline: ``return_preds_labels`` keeps the labels of one
  ``cls + '-expression'``); ``overall`` adds the two sets of counts.
* **Analysis (recognition of the true positives) and STRS.** On the
  true-positive pairs whose ground-truth emotion is one of the analysed
  classes, per class ``c``: ``TP_c`` = predicted c and truth c, ``FP_c`` =
  predicted c and truth not c, ``FN_c`` = truth c and predicted not c; the
  analysis precision and recall are the means over classes of the per-class
  precision and recall, the analysis F1 is their harmonic mean (not the mean
  of per-class F1s), and ``STRS = F1_spotting x F1_analysis``
  (genbing99/STRS-Metric ``calculate_analysis_metrics`` / ``evaluate_STRS``;
  Liong, See and Chan, "Spot-then-recognize: a micro-expression analysis
  network for seamless evaluation of long videos", Signal Processing: Image
  Communication 110, 2023). The STR task of MEGC 2023 spots and recognises
  micro-expressions, so :func:`str_score` uses the micro track by default.
  We also report UF1 (mean of per-class F1) and UAR (mean of per-class
  recall; the reference labels the mean *precision* "UAR", which we do not
  copy). The reference's ``confusion_matrix(...).ravel()`` gives all zeros for a
  class when the true-positive pairs contain a single class in total; we
  count that case as it is (no special rule).

Everything here is pure Python over small lists: intervals are
``(onset, offset)`` pairs of frame numbers (inclusive) or dicts with those keys.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

TYPES = ('micro', 'macro')


def interval_iou(a: Sequence[int], b: Sequence[int]) -> float:
    """IoU of two inclusive frame intervals ``(onset, offset)``."""
    a0, a1 = int(a[0]), int(a[1])
    b0, b1 = int(b[0]), int(b[1])
    if a1 < a0 or b1 < b0:
        return 0.0
    inter = min(a1, b1) - max(a0, b0) + 1
    if inter <= 0:
        return 0.0
    union = (a1 - a0 + 1) + (b1 - b0 + 1) - inter
    return inter / union


def _bounds(x: Any) -> Tuple[int, int]:
    if isinstance(x, Mapping):
        return int(x['onset']), int(x['offset'])
    return int(x[0]), int(x[1])


def match_video(preds: Sequence[Any], gts: Sequence[Any], iou_threshold: float = 0.5
                ) -> Tuple[List[Tuple[int, int, float]], List[int], List[int]]:
    """Match spotted to ground-truth intervals of one video.

    Returns:
        ``(pairs, fp, fn)``: ``pairs`` are ``(pred_index, gt_index, iou)``,
        ``fp`` the unmatched prediction indices, ``fn`` the unmatched
        ground-truth indices.
    """
    taken = set()
    pairs, fp = [], []
    gb = [_bounds(g) for g in gts]
    for i, p in enumerate(preds):
        pb = _bounds(p)
        hit = None
        for j, g in enumerate(gb):
            if j in taken:
                continue
            iou = interval_iou(pb, g)
            if iou >= iou_threshold:
                hit = (i, j, iou)
                break
        if hit is None:
            fp.append(i)
        else:
            taken.add(hit[1])
            pairs.append(hit)
    fn = [j for j in range(len(gts)) if j not in taken]
    return pairs, fp, fn


def prf(tp: int, fp: int, fn: int) -> Dict[str, float]:
    """Precision, recall and F1 from counts (0 where undefined)."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return dict(tp=int(tp), fp=int(fp), fn=int(fn), precision=p, recall=r, f1=f)


def spotting_scores(videos: Iterable[Mapping[str, Any]], iou_threshold: float = 0.5
                    ) -> Dict[str, Any]:
    """MEGC spotting scores over a dataset.

    Args:
        videos: One mapping per video with ``gt`` and ``pred``: lists of dicts
            with ``onset``, ``offset``, ``type`` (``'micro'`` / ``'macro'``)
            and, for the analysis, ``emotion`` (truth) / ``label`` (prediction)
            keys. ``video`` (an id) is kept in the per-video rows.
        iou_threshold: 0.5 in every MEGC edition.

    Returns:
        ``{'micro': prf, 'macro': prf, 'overall': prf, 'pairs': {type: [...]},
        'per_video': [...]}``; each pair is ``dict(video, pred, gt, iou)``.
    """
    counts = {t: [0, 0, 0] for t in TYPES}
    pairs: Dict[str, List[Dict[str, Any]]] = {t: [] for t in TYPES}
    per_video = []
    for v in videos:
        row = dict(video=v.get('video'))
        for t in TYPES:
            preds = [p for p in v.get('pred', []) if p.get('type', 'micro') == t]
            gts = [g for g in v.get('gt', []) if g.get('type', 'micro') == t]
            m, fp, fn = match_video(preds, gts, iou_threshold)
            counts[t][0] += len(m)
            counts[t][1] += len(fp)
            counts[t][2] += len(fn)
            row[t] = dict(tp=len(m), fp=len(fp), fn=len(fn))
            for i, j, iou in m:
                pairs[t].append(dict(video=v.get('video'), pred=preds[i], gt=gts[j],
                                     iou=iou))
        per_video.append(row)
    out: Dict[str, Any] = {t: prf(*counts[t]) for t in TYPES}
    out['overall'] = prf(*(sum(counts[t][k] for t in TYPES) for k in range(3)))
    out['pairs'] = pairs
    out['per_video'] = per_video
    return out


def analysis_scores(pairs: Sequence[Mapping[str, Any]],
                    classes: Optional[Sequence[str]] = None,
                    truth_key: str = 'emotion', pred_key: str = 'label'
                    ) -> Dict[str, Any]:
    """Recognition of the true-positive intervals (the STR "analysis").

    Args:
        pairs: Matched pairs ``dict(pred=..., gt=...)`` (from
            :func:`spotting_scores`); ``gt[truth_key]`` is the true class,
            ``pred[pred_key]`` the recognised one.
        classes: Analysed classes; None = the classes present in the truth of
            the pairs (the reference's default: the ground-truth emotions).

    Returns:
        Per-class counts, ``precision`` / ``recall`` (class means), ``f1``
        (their harmonic mean), ``uf1``, ``uar``, ``accuracy``, ``n``.
    """
    if classes is None:
        classes = sorted({p['gt'][truth_key] for p in pairs})
    classes = list(classes)
    kept = [p for p in pairs if p['gt'][truth_key] in classes]
    per = {}
    for c in classes:
        tp = sum(1 for p in kept if p['pred'].get(pred_key) == c and p['gt'][truth_key] == c)
        fp = sum(1 for p in kept if p['pred'].get(pred_key) == c and p['gt'][truth_key] != c)
        fn = sum(1 for p in kept if p['gt'][truth_key] == c and p['pred'].get(pred_key) != c)
        per[c] = prf(tp, fp, fn)
    n_cls = len(classes)
    mp = sum(per[c]['precision'] for c in classes) / n_cls if n_cls else 0.0
    mr = sum(per[c]['recall'] for c in classes) / n_cls if n_cls else 0.0
    f1 = 2 * mp * mr / (mp + mr) if mp + mr else 0.0
    correct = sum(1 for p in kept if p['pred'].get(pred_key) == p['gt'][truth_key])
    return dict(classes=classes, per_class=per, precision=mp, recall=mr, f1=f1,
                uf1=sum(per[c]['f1'] for c in classes) / n_cls if n_cls else 0.0,
                uar=mr, accuracy=correct / len(kept) if kept else 0.0, n=len(kept))


def str_score(videos: Iterable[Mapping[str, Any]], track: str = 'micro',
              classes: Optional[Sequence[str]] = None, iou_threshold: float = 0.5,
              truth_key: str = 'emotion', pred_key: str = 'label') -> Dict[str, Any]:
    """Spotting scores, the analysis of ``track``'s true positives and STRS.

    ``track`` is ``'micro'`` (MEGC 2023 STR), ``'macro'`` or ``'overall'``
    (both types' pairs and counts). ``classes`` None = every class of the
    track's ground truth (the reference's ``set(gt_df['emotion'])``).
    """
    videos = list(videos)
    spot = spotting_scores(videos, iou_threshold)
    if classes is None:  # the reference: every emotion of the ground truth scored
        kinds = TYPES if track == 'overall' else (track,)
        classes = sorted({g[truth_key] for v in videos for g in v.get('gt', [])
                          if g.get('type', 'micro') in kinds and g.get(truth_key) is not None})
    pairs = (spot['pairs']['micro'] + spot['pairs']['macro']) if track == 'overall' \
        else spot['pairs'][track]
    ana = analysis_scores(pairs, classes, truth_key, pred_key)
    return dict(spotting={k: spot[k] for k in ('micro', 'macro', 'overall')},
                analysis=ana, track=track, strs=spot[track]['f1'] * ana['f1'],
                per_video=spot['per_video'])


def pool_counts(results: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """Pool per-fold spotting counts (``{'micro': prf, ...}``) into dataset scores."""
    tot = defaultdict(lambda: [0, 0, 0])
    for r in results:
        for t in (*TYPES, 'overall'):
            for k, key in enumerate(('tp', 'fp', 'fn')):
                tot[t][k] += r[t][key]
    return {t: prf(*tot[t]) for t in (*TYPES, 'overall')}
