"""The MEGC spotting metric and STRS against a second implementation.

``_Reference`` below is written independently of raicl_mm.spotting.metrics:
it follows the structure of the STR reference script
(genbing99/STRS-Metric, strs_metric.py: per subject, per video, frame sets
with set intersection / union, per-emotion one-vs-rest counts) with plain
Python sets and lists, and the two are compared on hand-made cases (the
reference README's own example, whose STRS is 0.2) and on random datasets.
"""
import random

import pytest

from raicl_mm.spotting import metrics as M


class _Reference:
    """Second implementation (sets of frames, record-by-record loops)."""

    @staticmethod
    def iou(p, g):
        a = set(range(p['onset'], p['offset'] + 1))
        b = set(range(g['onset'], g['offset'] + 1))
        u = a | b
        return len(a & b) / len(u) if u else 0.0

    def spot_video(self, preds, gts, thr=0.5):
        used, tp_pairs, fp = set(), [], 0
        for p in preds:
            found = None
            for gi, g in enumerate(gts):
                if gi not in used and self.iou(p, g) >= thr:
                    found = gi
                    break
            if found is None:
                fp += 1
            else:
                used.add(found)
                tp_pairs.append((p, gts[found]))
        return tp_pairs, fp, len(gts) - len(used)

    @staticmethod
    def f1(tp, fp, fn):
        p = tp / (tp + fp) if tp + fp else 0
        r = tp / (tp + fn) if tp + fn else 0
        return p, r, (2 * p * r / (p + r) if p + r else 0)

    def evaluate(self, rows_pred, rows_gt, kind='micro', emotions=None):
        """Rows: dicts with subject, video, onset, offset, type, emotion."""
        rows_pred = [r for r in rows_pred if r['type'] == kind]
        rows_gt = [r for r in rows_gt if r['type'] == kind]
        keys = sorted({(r['subject'], r['video']) for r in rows_gt + rows_pred})
        TP, FP, FN, pairs = 0, 0, 0, []
        for key in keys:
            pv = [r for r in rows_pred if (r['subject'], r['video']) == key]
            gv = [r for r in rows_gt if (r['subject'], r['video']) == key]
            tp_pairs, fp, fn = self.spot_video(pv, gv)
            TP += len(tp_pairs)
            FP += fp
            FN += fn
            pairs += tp_pairs
        ps, rs, f1s = self.f1(TP, FP, FN)
        if emotions is None:   # the reference: set(gt_df['emotion'])
            emotions = sorted({g['emotion'] for g in rows_gt})
        kept = [(p, g) for p, g in pairs if g['emotion'] in emotions]
        precs, recs = [], []
        for e in emotions:
            tp = len([1 for p, g in kept if p['emotion'] == e and g['emotion'] == e])
            fp = len([1 for p, g in kept if p['emotion'] == e and g['emotion'] != e])
            fn = len([1 for p, g in kept if p['emotion'] != e and g['emotion'] == e])
            pe, re_, _ = self.f1(tp, fp, fn)
            precs.append(pe)
            recs.append(re_)
        mp = sum(precs) / len(precs) if precs else 0
        mr = sum(recs) / len(recs) if recs else 0
        fa = 2 * mp * mr / (mp + mr) if mp + mr else 0
        return dict(tp=TP, fp=FP, fn=FN, precision=ps, recall=rs, f1=f1s, analysis_f1=fa,
                    strs=f1s * fa)


def _to_videos(rows_pred, rows_gt):
    keys = sorted({(r['subject'], r['video']) for r in rows_gt + rows_pred})
    out = []
    for key in keys:
        out.append(dict(
            video=f'{key[0]}/{key[1]}',
            gt=[dict(r) for r in rows_gt if (r['subject'], r['video']) == key],
            pred=[dict(r, label=r['emotion']) for r in rows_pred
                  if (r['subject'], r['video']) == key]))
    return out


def test_iou_inclusive_frames():
    assert M.interval_iou((0, 9), (0, 9)) == 1.0
    assert M.interval_iou((0, 9), (10, 19)) == 0.0
    assert M.interval_iou((0, 9), (5, 14)) == pytest.approx(5 / 15)
    assert M.interval_iou((3, 3), (3, 3)) == 1.0   # a single frame is one frame


def test_reference_readme_example_strs_is_0_2():
    """genbing99/STRS-Metric README: this example prints 'STRS: 0.2'."""
    pred = [(1, 'EP02_01f', 10, 70, 'happiness'), (1, 'EP03_02', 100, 170, 'others'),
            (1, 'EP04_02', 0, 70, 'others'), (2, 'EP01_11f', 20, 90, 'happiness'),
            (2, 'EP02_04f', 70, 140, 'happiness')]
    gt = [(1, 'EP02_01f', 45, 85, 'happiness'), (1, 'EP03_02', 130, 160, 'others'),
          (1, 'EP04_02', 20, 75, 'others'), (2, 'EP01_11f', 45, 95, 'repression'),
          (2, 'EP02_04f', 30, 140, 'repression')]
    mk = lambda r: dict(subject=r[0], video=r[1], onset=r[2], offset=r[3],
                        emotion=r[4], type='micro')
    rp, rg = [mk(r) for r in pred], [mk(r) for r in gt]
    ref = _Reference().evaluate(rp, rg)
    ours = M.str_score(_to_videos(rp, rg), track='micro', truth_key='emotion',
                       pred_key='label')
    assert ref['strs'] == pytest.approx(0.2)
    assert ours['strs'] == pytest.approx(0.2)
    assert ours['spotting']['micro']['f1'] == pytest.approx(0.6)
    assert ours['analysis']['f1'] == pytest.approx(1 / 3)


def _random_dataset(rng):
    rows_gt, rows_pred = [], []
    emotions = ['negative', 'positive', 'surprise']
    for s in range(rng.randint(1, 4)):
        for v in range(rng.randint(1, 3)):
            t = 0
            for _ in range(rng.randint(0, 6)):
                t += rng.randint(3, 40)
                kind = rng.choice(['micro', 'macro'])
                L = rng.randint(4, 15) if kind == 'micro' else rng.randint(20, 60)
                g = dict(subject=f's{s}', video=f'v{v}', onset=t, offset=t + L - 1,
                         type=kind, emotion=rng.choice(emotions))
                rows_gt.append(g)
                t += L
                if rng.random() < 0.7:   # a nearby prediction
                    j = rng.randint(-L // 2, L // 2)
                    w = max(1, L + rng.randint(-L // 2, L // 2))
                    rows_pred.append(dict(g, onset=max(0, g['onset'] + j),
                                          offset=max(0, g['onset'] + j) + w - 1,
                                          type=kind if rng.random() < 0.9 else
                                          rng.choice(['micro', 'macro']),
                                          emotion=rng.choice(emotions)))
            for _ in range(rng.randint(0, 3)):   # false alarms
                o = rng.randint(0, t + 50)
                rows_pred.append(dict(subject=f's{s}', video=f'v{v}', onset=o,
                                      offset=o + rng.randint(2, 30),
                                      type=rng.choice(['micro', 'macro']),
                                      emotion=rng.choice(emotions)))
    rng.shuffle(rows_pred)
    return rows_pred, rows_gt


@pytest.mark.parametrize('seed', range(40))
def test_matches_independent_implementation(seed):
    rng = random.Random(seed)
    rows_pred, rows_gt = _random_dataset(rng)
    # The matching visits predictions in order: keep one order for both.
    rows_pred.sort(key=lambda r: (r['subject'], r['video'], r['onset']))
    ref = _Reference()
    for kind in ('micro', 'macro'):
        want = ref.evaluate(rows_pred, rows_gt, kind)
        got = M.str_score(_to_videos(rows_pred, rows_gt), track=kind,
                          truth_key='emotion', pred_key='label')
        spot = got['spotting'][kind]
        assert (spot['tp'], spot['fp'], spot['fn']) == (want['tp'], want['fp'], want['fn'])
        assert spot['f1'] == pytest.approx(want['f1'])
        assert spot['precision'] == pytest.approx(want['precision'])
        assert spot['recall'] == pytest.approx(want['recall'])
        assert got['analysis']['f1'] == pytest.approx(want['analysis_f1'])
        assert got['strs'] == pytest.approx(want['strs'])
    both = M.spotting_scores(_to_videos(rows_pred, rows_gt))
    mi, ma = ref.evaluate(rows_pred, rows_gt, 'micro'), ref.evaluate(rows_pred, rows_gt, 'macro')
    tp, fp, fn = (mi[k] + ma[k] for k in ('tp', 'fp', 'fn'))
    assert both['overall']['f1'] == pytest.approx(_Reference.f1(tp, fp, fn)[2])


def test_one_prediction_takes_one_truth_and_types_apart():
    gt = [dict(onset=10, offset=19, type='micro', emotion='positive'),
          dict(onset=10, offset=19, type='macro', emotion='positive')]
    pred = [dict(onset=10, offset=19, type='micro', label='positive'),
            dict(onset=11, offset=19, type='micro', label='positive')]
    s = M.spotting_scores([dict(gt=gt, pred=pred)])
    assert (s['micro']['tp'], s['micro']['fp'], s['micro']['fn']) == (1, 1, 0)
    assert (s['macro']['tp'], s['macro']['fp'], s['macro']['fn']) == (0, 0, 1)
    assert (s['overall']['tp'], s['overall']['fp'], s['overall']['fn']) == (1, 1, 1)


def test_empty_and_pooling():
    s = M.spotting_scores([dict(gt=[], pred=[])])
    assert s['overall']['f1'] == 0.0
    pooled = M.pool_counts([s, s])
    assert pooled['micro']['tp'] == 0
