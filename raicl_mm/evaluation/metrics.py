"""UF1 / UAR for micro-expression recognition (paper A.1.5, Eq. 18-20).

The protocol score (MEGC2019, Ra-ICL Table 1) is computed ONCE from a single
confusion matrix built over the pooled predictions of every
leave-one-subject-out fold (see :mod:`raicl_mm.evaluation.pooling`).
:class:`UF1UARMetric` computes the same numbers on whatever one test run sees;
inside a LOSO run that is a single subject, so its numbers are informative
only. Its ``dump_file`` keeps the raw predictions so that the pooled report can
be built afterwards.

Classes absent from the evaluated set
-------------------------------------
Eq. 19-20 average over the ``C`` classes of the protocol. On a subset (one
fold, one source dataset, or a protocol class missing everywhere) some class
``c`` can have ``n_c = 0`` ground-truth samples. We then use:

* **UAR**: the recall ``TP_c / n_c`` of such a class is undefined, so the class
  is left out of the average. UAR is the mean recall over the classes present
  in the ground truth (= ``sklearn.metrics.recall_score(average='macro',
  labels=<classes present in gt>)``).
* **UF1**: a class that is absent from the ground truth AND never predicted has
  ``2TP + FP + FN = 0``; its F1 is undefined and it is left out. A class absent
  from the ground truth but predicted (``FP_c > 0``) has ``F1_c = 0`` and is
  counted. UF1 is therefore the mean F1 over the classes present in the ground
  truth or in the predictions (= ``sklearn.metrics.f1_score(average='macro',
  labels=<classes present in gt or pred>)``).

When every protocol class is present, both reduce exactly to Eq. 19-20.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import tempfile
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from mmaction.registry import METRICS


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temporary file + ``os.replace``).

    Args:
        path: Destination file; its folder is created if needed.
        text: Content, written as UTF-8.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + osp.basename(path),
                               suffix='.tmp')
    try:
        with os.fdopen(fd, 'w', encoding='utf-8', newline='') as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_json(path: str, obj: Any) -> None:
    """Serialise ``obj`` as indented JSON and write it atomically to ``path``.

    Args:
        path: Destination file.
        obj: A JSON-serialisable object.
    """
    atomic_write_text(path, json.dumps(obj, indent=2) + '\n')


def confusion_matrix(gt: Sequence[int], pred: Sequence[int],
                     num_classes: int) -> np.ndarray:
    """Count a confusion matrix.

    Args:
        gt: Ground-truth class indices.
        pred: Predicted class indices, same length as ``gt``.
        num_classes: Number of protocol classes ``C``.

    Returns:
        ``(C, C)`` int64 array; rows are ground truth, columns predictions.

    Raises:
        ValueError: On length mismatch or an index outside ``[0, C)``.
    """
    gt_arr = np.asarray(gt, dtype=np.int64).reshape(-1)
    pred_arr = np.asarray(pred, dtype=np.int64).reshape(-1)
    if gt_arr.shape != pred_arr.shape:
        raise ValueError(f'confusion_matrix: {gt_arr.size} ground-truth '
                         f'labels but {pred_arr.size} predictions')
    if num_classes <= 0:
        raise ValueError(f'confusion_matrix: num_classes must be > 0, '
                         f'got {num_classes}')
    for name, arr in (('ground-truth', gt_arr), ('predicted', pred_arr)):
        bad = arr[(arr < 0) | (arr >= num_classes)]
        if bad.size:
            raise ValueError(f'confusion_matrix: {name} label '
                             f'{int(bad[0])} is outside [0, {num_classes})')
    flat = gt_arr * num_classes + pred_arr
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes)


def _check_cm(cm: np.ndarray) -> np.ndarray:
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f'confusion matrix must be square, got shape '
                         f'{cm.shape}')
    if (cm < 0).any():
        raise ValueError('confusion matrix has negative counts')
    return cm.astype(np.float64)


def per_class_scores(cm: np.ndarray) -> List[Dict[str, Optional[float]]]:
    """Precision, recall, F1 (Eq. 18) and support of every class.

    Args:
        cm: ``(C, C)`` confusion matrix, rows ground truth.

    Returns:
        One dict per class with ``precision`` (None if never predicted),
        ``recall`` (None if ``n_c = 0``), ``f1`` (None if the class is in
        neither ground truth nor predictions) and ``support`` (``n_c``).
    """
    m = _check_cm(cm)
    tp = np.diag(m)
    support = m.sum(axis=1)          # n_c = TP + FN
    predicted = m.sum(axis=0)        # TP + FP
    out = []
    for c in range(m.shape[0]):
        fp = predicted[c] - tp[c]
        fn = support[c] - tp[c]
        denom = 2 * tp[c] + fp + fn  # Eq. 18 denominator
        out.append({
            'precision': float(tp[c] / predicted[c]) if predicted[c] else None,
            'recall': float(tp[c] / support[c]) if support[c] else None,
            'f1': float(2 * tp[c] / denom) if denom else None,
            'support': int(support[c]),
        })
    return out


def uf1_uar(cm: np.ndarray) -> Dict[str, float]:
    """UF1 (Eq. 18-19), UAR (Eq. 20) and accuracy from one confusion matrix.

    Classes with undefined scores are left out of the averages exactly as the
    module docstring states: UAR averages over classes present in the ground
    truth; UF1 over classes present in the ground truth or the predictions.

    Args:
        cm: ``(C, C)`` confusion matrix, rows ground truth, columns
            predictions.

    Returns:
        ``{'UF1', 'UAR', 'accuracy'}`` as fractions in ``[0, 1]``.

    Raises:
        ValueError: If the matrix is not square or holds no sample.
    """
    m = _check_cm(cm)
    total = m.sum()
    if total == 0:
        raise ValueError('uf1_uar: the confusion matrix holds no sample')
    scores = per_class_scores(m)
    f1s = [s['f1'] for s in scores if s['f1'] is not None]
    recalls = [s['recall'] for s in scores if s['recall'] is not None]
    return {
        'UF1': float(np.mean(f1s)),      # Eq. 19 over defined classes
        'UAR': float(np.mean(recalls)),  # Eq. 20 over classes with n_c > 0
        'accuracy': float(np.trace(m) / total),
    }


def format_confusion(cm: np.ndarray, classes: Sequence[str]) -> str:
    """Render a confusion matrix as a fixed-width text table for logs.

    Args:
        cm: ``(C, C)`` confusion matrix, rows ground truth.
        classes: ``C`` class names.

    Returns:
        Multi-line string, header row = predictions.
    """
    names = [str(c) for c in classes]
    corner = 'gt\\pred'
    width = max([len(n) for n in names] +
                [len(str(int(np.max(cm, initial=0)))), len(corner)])
    lines = [' '.join([corner.ljust(width)] +
                      [n.rjust(width) for n in names])]
    for name, row in zip(names, np.asarray(cm)):
        lines.append(' '.join([name.ljust(width)] +
                              [str(int(v)).rjust(width) for v in row]))
    return '\n'.join(lines)


def _to_int(value: Any, key: str, sample_id: str) -> int:
    """Turn a scalar / 1-element tensor or array into an int."""
    if hasattr(value, 'detach'):
        value = value.detach().cpu()
    arr = np.asarray(value)
    if arr.size != 1:
        raise ValueError(f'UF1UARMetric: sample {sample_id!r} has {key} with '
                         f'{arr.size} elements, expected one')
    return int(arr.reshape(-1)[0])


@METRICS.register_module()
class UF1UARMetric(BaseMetric):
    """UF1, UAR and accuracy, overall and per source dataset.

    See the module docstring for how classes absent from the evaluated set are
    treated. Inside a LOSO run one test run is one subject: the numbers it
    returns are informative; the protocol score is the pooled one built from
    the ``dump_file`` of every fold (``tools/loso_report.py``).

    Args:
        dump_file: If set, the predictions are written there (atomically) as
            JSON ``{'classes': [...], 'predictions': [{'sample_id', 'dataset',
            'subject', 'gt', 'pred', 'scores'}]}``.
        collect_device: Device used to collect results across ranks.
        prefix: Prefix of the metric names (``'<prefix>/UF1'``); by default
            none, on purpose (:attr:`default_prefix`).
    """

    #: The metric's names are the protocol's own (``UF1``, ``UAR``,
    #: ``accuracy``, ``<dataset>/UF1``): configs (``save_best='UF1'``), the
    #: LOSO tools and reports use them as they are. The empty string is
    #: MMEngine's "set, and empty": no prefix is added and MMEngine does not
    #: warn that the prefix is unset (it does for ``None``).
    default_prefix: Optional[str] = ''

    def __init__(self,
                 dump_file: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.dump_file = dump_file

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Keep label, prediction, scores and metadata of each sample.

        Args:
            data_batch: Unused.
            data_samples: Dicts from ``ActionDataSample.to_dict()`` with
                ``pred_score``, ``gt_label``, optionally ``pred_label`` (argmax
                of the scores if absent) and metainfo ``sample_id``,
                ``dataset``, ``subject``.
        """
        for sample in data_samples:
            sample_id = str(sample.get('sample_id', f'#{len(self.results)}'))
            if 'pred_score' not in sample or 'gt_label' not in sample:
                raise KeyError(f'UF1UARMetric: sample {sample_id!r} lacks '
                               f'pred_score or gt_label')
            score = sample['pred_score']
            if hasattr(score, 'detach'):
                score = score.detach().float().cpu().numpy()
            scores = np.asarray(score, dtype=np.float64).reshape(-1)
            if 'pred_label' in sample and sample['pred_label'] is not None:
                pred = _to_int(sample['pred_label'], 'pred_label', sample_id)
            else:
                pred = int(np.argmax(scores))
            entry = {
                'sample_id': sample_id,
                'dataset': str(sample.get('dataset', '')),
                'subject': str(sample.get('subject', '')),
                'gt': _to_int(sample['gt_label'], 'gt_label', sample_id),
                'pred': pred,
                'scores': [float(s) for s in scores],
            }
            if sample.get('target_pred_score') is not None:
                # RaICLRecognizer(score_target=True): the EMA teacher's scores.
                t = sample['target_pred_score']
                if hasattr(t, 'detach'):
                    t = t.detach().float().cpu().numpy()
                t = np.asarray(t, dtype=np.float64).reshape(-1)
                entry['target_pred'] = int(np.argmax(t))
                entry['target_scores'] = [float(v) for v in t]
            self.results.append(entry)

    def _classes(self, results: List[dict]) -> List[str]:
        meta = self.dataset_meta or {}
        classes = meta.get('classes')
        if classes:
            return [str(c) for c in classes]
        num = max(len(r['scores']) for r in results)
        num = max(num, 1 + max(max(r['gt'], r['pred']) for r in results))
        return [str(i) for i in range(num)]

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Score the collected predictions.

        Args:
            results: Entries appended by :meth:`process` (all ranks).

        Returns:
            ``UF1``, ``UAR``, ``accuracy`` and, when more than one source
            dataset is present, ``<dataset>/UF1``, ``<dataset>/UAR``,
            ``<dataset>/accuracy``. The confusion matrices are logged.
        """
        logger = MMLogger.get_current_instance()
        if not results:
            raise ValueError('UF1UARMetric: no prediction to evaluate')
        classes = self._classes(results)
        num_classes = len(classes)
        metrics: Dict[str, float] = OrderedDict()
        cm = confusion_matrix([r['gt'] for r in results],
                              [r['pred'] for r in results], num_classes)
        metrics.update(uf1_uar(cm))
        logger.info('UF1UARMetric confusion matrix (%d samples):\n%s',
                    len(results), format_confusion(cm, classes))
        if results and all('target_pred' in r for r in results):
            # The teacher (EMA target branch) beside the student.
            t_cm = confusion_matrix([r['gt'] for r in results],
                                    [r['target_pred'] for r in results],
                                    num_classes)
            for key, value in uf1_uar(t_cm).items():
                metrics[f'target/{key}'] = value
        datasets = sorted({r['dataset'] for r in results})
        if len(datasets) > 1:
            for ds in datasets:
                sub = [r for r in results if r['dataset'] == ds]
                ds_cm = confusion_matrix([r['gt'] for r in sub],
                                         [r['pred'] for r in sub], num_classes)
                for key, value in uf1_uar(ds_cm).items():
                    metrics[f'{ds}/{key}'] = value
                logger.info('UF1UARMetric confusion matrix, %s (%d samples):'
                            '\n%s', ds, len(sub),
                            format_confusion(ds_cm, classes))
        if self.dump_file:
            atomic_write_json(self.dump_file, {
                'classes': classes,
                'predictions': list(results),
            })
            logger.info('UF1UARMetric: predictions written to %s',
                        self.dump_file)
        return metrics
