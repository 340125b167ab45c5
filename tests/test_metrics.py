"""UF1/UAR (Eq. 18-20) against scikit-learn, and UF1UARMetric end to end."""
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, recall_score

from raicl_mm.evaluation.metrics import (UF1UARMetric, confusion_matrix,
                                         per_class_scores, uf1_uar)


def sk_scores(gt, pred):
    """Reference: the documented label sets of the module docstring."""
    gt, pred = np.asarray(gt), np.asarray(pred)
    f1_labels = sorted(set(gt.tolist()) | set(pred.tolist()))
    uar_labels = sorted(set(gt.tolist()))
    return {
        'UF1': f1_score(gt, pred, labels=f1_labels, average='macro',
                        zero_division=0),
        'UAR': recall_score(gt, pred, labels=uar_labels, average='macro',
                            zero_division=0),
        'accuracy': accuracy_score(gt, pred),
    }


def ours(gt, pred, num_classes):
    return uf1_uar(confusion_matrix(gt, pred, num_classes))


def assert_same(a, b):
    for key in ('UF1', 'UAR', 'accuracy'):
        assert a[key] == pytest.approx(b[key], abs=1e-12), key


def test_confusion_matrix_rows_are_ground_truth():
    cm = confusion_matrix([0, 0, 1, 2], [0, 1, 1, 0], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]


def test_hand_computed_eq18_20():
    # gt row 0: 3 samples (2 right, 1 -> class 1); row 1: 1 sample right.
    cm = np.array([[2, 1], [0, 1]])
    # F1_0 = 4/(4+0+1) = 0.8; F1_1 = 2/(2+1+0) = 2/3.
    res = uf1_uar(cm)
    assert res['UF1'] == pytest.approx((0.8 + 2 / 3) / 2)
    assert res['UAR'] == pytest.approx((2 / 3 + 1.0) / 2)
    assert res['accuracy'] == pytest.approx(0.75)


@pytest.mark.parametrize('num_classes', [3, 7])
@pytest.mark.parametrize('seed', [0, 1, 2, 3, 4])
def test_random_cases_match_sklearn(num_classes, seed):
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, num_classes, size=80)
    # Biased predictions: often right, so scores are not all ~1/C.
    pred = np.where(rng.random(80) < 0.5, gt,
                    rng.integers(0, num_classes, size=80))
    assert_same(ours(gt, pred, num_classes), sk_scores(gt, pred))


def test_class_never_predicted():
    gt = [0, 0, 1, 1, 2, 2]
    pred = [0, 1, 1, 0, 0, 1]  # class 2 never predicted: F1_2 = 0, counted
    res = ours(gt, pred, 3)
    assert_same(res, sk_scores(gt, pred))
    # F1_0 = F1_1 = 2/(2 + 2 + 1) = 0.4 (TP 1, FP 2, FN 1).
    assert res['UF1'] == pytest.approx((0.4 + 0.4 + 0.0) / 3)
    assert res['UAR'] == pytest.approx((0.5 + 0.5 + 0.0) / 3)


def test_pooling_folds_where_one_lacks_a_class():
    fold_a = ([0, 0, 1, 1], [0, 1, 1, 1])            # no class 2 at all
    fold_b = ([0, 1, 2, 2, 2], [0, 2, 2, 2, 0])
    gt = fold_a[0] + fold_b[0]
    pred = fold_a[1] + fold_b[1]
    cm = confusion_matrix(fold_a[0], fold_a[1], 3) + confusion_matrix(
        fold_b[0], fold_b[1], 3)
    pooled = uf1_uar(cm)
    assert_same(pooled, sk_scores(gt, pred))
    mean_uf1 = np.mean([ours(*fold_a, 3)['UF1'], ours(*fold_b, 3)['UF1']])
    mean_uar = np.mean([ours(*fold_a, 3)['UAR'], ours(*fold_b, 3)['UAR']])
    assert abs(pooled['UF1'] - mean_uf1) > 1e-3
    assert abs(pooled['UAR'] - mean_uar) > 1e-3


def test_class_absent_from_whole_set_and_never_predicted():
    gt = [0, 0, 1, 1, 1]
    pred = [0, 1, 1, 1, 0]
    res = ours(gt, pred, 3)  # protocol has 3 classes, class 2 unseen
    assert_same(res, sk_scores(gt, pred))
    # Class 2 is left out: averaging over 3 classes would give a lower UF1.
    naive = f1_score(gt, pred, labels=[0, 1, 2], average='macro',
                     zero_division=0)
    assert res['UF1'] > naive + 1e-3
    assert per_class_scores(confusion_matrix(gt, pred, 3))[2] == {
        'precision': None, 'recall': None, 'f1': None, 'support': 0}


def test_class_absent_from_gt_but_predicted_counts_as_zero_f1():
    gt = [0, 0, 1, 1]
    pred = [0, 2, 1, 1]
    res = ours(gt, pred, 3)
    assert_same(res, sk_scores(gt, pred))
    f1_0, f1_1 = 2 / 3, 1.0
    assert res['UF1'] == pytest.approx((f1_0 + f1_1 + 0.0) / 3)
    assert res['UAR'] == pytest.approx((0.5 + 1.0) / 2)  # class 2 left out


def test_bad_input_is_reported():
    with pytest.raises(ValueError, match='outside'):
        confusion_matrix([0, 3], [0, 0], 3)
    with pytest.raises(ValueError, match='2 ground-truth'):
        confusion_matrix([0, 1], [0], 3)
    with pytest.raises(ValueError, match='no sample'):
        uf1_uar(np.zeros((3, 3)))
    with pytest.raises(ValueError, match='square'):
        uf1_uar(np.zeros((2, 3)))


# --------------------------------------------------------------- the metric
CLASSES = ('negative', 'positive', 'surprise')


def make_samples(rows, scalar_pred=False):
    from mmaction.structures import ActionDataSample
    out = []
    for i, (ds, subject, gt, pred) in enumerate(rows):
        sample = ActionDataSample()
        sample.set_gt_label(gt)
        scores = torch.full((3, ), 0.1)
        scores[pred] = 0.8
        sample.set_pred_score(scores)
        sample.set_pred_label(torch.tensor(pred) if scalar_pred else
                              torch.tensor([pred]))
        sample.set_field(f'{ds}_{i}', 'sample_id', field_type='metainfo')
        sample.set_field(ds, 'dataset', field_type='metainfo')
        sample.set_field(subject, 'subject', field_type='metainfo')
        out.append(sample.to_dict())
    return out


ROWS = [('casme2', 'sub01', 0, 0), ('casme2', 'sub01', 1, 1),
        ('casme2', 'sub02', 2, 0), ('samm', '006', 0, 0),
        ('samm', '006', 2, 2), ('samm', '007', 1, 0), ('samm', '007', 0, 1)]


def test_metric_process_and_compute(tmp_path):
    from mmaction.registry import METRICS
    dump = tmp_path / 'sub' / 'predictions.json'
    metric = METRICS.build(dict(type='UF1UARMetric', dump_file=str(dump)))
    assert isinstance(metric, UF1UARMetric)
    metric.dataset_meta = {'classes': CLASSES}
    metric.process(None, make_samples(ROWS[:4]))
    metric.process(None, make_samples(ROWS[4:], scalar_pred=True))
    res = metric.evaluate(len(ROWS))

    gt = [r[2] for r in ROWS]
    pred = [r[3] for r in ROWS]
    assert_same(res, sk_scores(gt, pred))
    for ds in ('casme2', 'samm'):
        sub = [r for r in ROWS if r[0] == ds]
        ref = sk_scores([r[2] for r in sub], [r[3] for r in sub])
        for key in ('UF1', 'UAR', 'accuracy'):
            assert res[f'{ds}/{key}'] == pytest.approx(ref[key])
    assert not any('confusion' in k for k in res)

    data = json.loads(dump.read_text())
    assert data['classes'] == list(CLASSES)
    assert len(data['predictions']) == len(ROWS)
    first = data['predictions'][0]
    assert first['sample_id'] == 'casme2_0'
    assert (first['dataset'], first['subject']) == ('casme2', 'sub01')
    assert (first['gt'], first['pred']) == (0, 0)
    assert first['scores'] == pytest.approx([0.8, 0.1, 0.1])
    assert not list(dump.parent.glob('*.tmp'))


def test_metric_single_dataset_has_no_per_dataset_keys():
    metric = UF1UARMetric()
    metric.dataset_meta = {'classes': CLASSES}
    metric.process(None, make_samples(ROWS[:3]))
    res = metric.evaluate(3)
    assert set(res) == {'UF1', 'UAR', 'accuracy'}


def test_metric_without_classes_and_with_bad_label():
    metric = UF1UARMetric()
    metric.process(None, make_samples(ROWS[:3]))
    assert metric.evaluate(3)['accuracy'] == pytest.approx(2 / 3)

    metric = UF1UARMetric()
    metric.dataset_meta = {'classes': ('a', 'b')}  # label 2 out of range
    metric.process(None, make_samples(ROWS[:3]))
    with pytest.raises(ValueError, match='outside'):
        metric.evaluate(3)


def test_metric_scores_the_teacher_when_the_model_gives_its_scores(tmp_path):
    import json

    import numpy as np

    from raicl_mm.evaluation.metrics import UF1UARMetric
    dump = tmp_path / 'p.json'
    metric = UF1UARMetric(dump_file=str(dump))
    metric.dataset_meta = dict(classes=['a', 'b'])
    eye = np.eye(2)
    # student right on all four, teacher right on the first two only
    samples = [dict(sample_id=f's{i}', gt_label=g, pred_score=eye[g],
                    target_pred_score=eye[t])
               for i, (g, t) in enumerate([(0, 0), (1, 1), (0, 1), (1, 0)])]
    metric.process(None, samples)
    out = metric.compute_metrics(metric.results)
    assert out['UF1'] == 1.0
    assert out['target/UF1'] == 0.5
    rows = json.loads(dump.read_text())['predictions']
    assert [r['target_pred'] for r in rows] == [0, 1, 1, 0]


def test_metric_sets_its_prefix_and_mmengine_does_not_warn(monkeypatch):
    """The names stay the protocol's (UF1, not raicl/UF1): the prefix is set,
    to the empty string, so MMEngine's 'prefix is not set' warning is gone."""
    import mmengine.evaluator.metric as metric_mod
    said = []
    monkeypatch.setattr(metric_mod, 'print_log',
                        lambda msg, *a, **k: said.append(str(msg)))
    metric = UF1UARMetric()
    assert metric.prefix == ''
    assert not [m for m in said if 'prefix is not set' in m]
    assert UF1UARMetric(prefix='me').prefix == 'me'
    metric.dataset_meta = {'classes': CLASSES}
    metric.process(None, make_samples(ROWS[:3]))
    assert set(metric.evaluate(3)) == {'UF1', 'UAR', 'accuracy'}
