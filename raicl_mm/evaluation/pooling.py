"""Pool the predictions of every LOSO fold into the protocol score.

MEGC2019 protocol: UF1 and UAR are computed once from ONE confusion matrix over
the concatenated predictions of all leave-one-subject-out folds, not as a mean
of per-fold scores (a fold is one subject and usually lacks some classes).

Work-dir layout read here::

    WORK_DIR/loso_plan.json              {"folds": [subject keys in order],
                                          "classes": [...], "config": str,
                                          "fold_samples": {fold: [sample
                                          ids]}, "failed_samples": [...], ...}
    WORK_DIR/fold_<subject>/predictions.json
                                         {"classes": [...], "predictions":
                                          [{"sample_id", "dataset", "subject",
                                            "gt", "pred", "scores"}]}
"""
from __future__ import annotations

import json
import os.path as osp
from typing import Any, Dict, List, Sequence, Tuple

from .metrics import confusion_matrix, per_class_scores, uf1_uar

PLAN_FILE = 'loso_plan.json'
PREDICTIONS_FILE = 'predictions.json'


def fold_dir(work_dir: str, fold: str) -> str:
    """Folder of one fold inside ``work_dir``.

    Args:
        work_dir: LOSO work directory.
        fold: Subject key of the fold.

    Returns:
        ``work_dir/fold_<fold>``.
    """
    return osp.join(work_dir, f'fold_{fold}')


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f'{path}: not valid JSON ({err})') from err


def _check_predictions(data: Any, path: str, classes: Sequence[str]) -> None:
    if not isinstance(data, dict) or not isinstance(
            data.get('predictions'), list):
        raise ValueError(f'{path}: expected an object with a "predictions" '
                         f'list')
    if 'classes' in data and list(data['classes']) != list(classes):
        raise ValueError(f'{path}: classes {data["classes"]} differ from the '
                         f'plan classes {list(classes)}')
    for i, p in enumerate(data['predictions']):
        missing = [k for k in ('sample_id', 'gt', 'pred') if k not in p]
        if missing:
            raise ValueError(f'{path}: prediction #{i} lacks {missing}')
        for key in ('gt', 'pred'):
            if not isinstance(p[key], int) or not 0 <= p[key] < len(classes):
                raise ValueError(
                    f'{path}: prediction #{i} ({p["sample_id"]}) has {key}='
                    f'{p[key]!r}, expected a class index in '
                    f'[0, {len(classes)})')


def load_fold_predictions(
        work_dir: str) -> Tuple[Dict[str, Any], Dict[str, Dict[str, Any]]]:
    """Read the LOSO plan and the predictions of every finished fold.

    Args:
        work_dir: LOSO work directory holding ``loso_plan.json``.

    Returns:
        ``(plan, folds)``: the plan dict and, for each fold of the plan that
        has a ``predictions.json``, its content keyed by the fold's subject.
        Folds without predictions are simply absent (see
        :func:`missing_folds`).

    Raises:
        FileNotFoundError: If ``loso_plan.json`` is missing.
        ValueError: On a malformed plan or prediction file, classes differing
            from the plan, or a sample predicted in two folds.
    """
    plan_path = osp.join(work_dir, PLAN_FILE)
    if not osp.isfile(plan_path):
        raise FileNotFoundError(f'{plan_path} not found: is {work_dir} a LOSO '
                                f'work directory?')
    plan = _read_json(plan_path)
    if not isinstance(plan, dict) or not isinstance(plan.get('folds'), list) \
            or not plan.get('classes'):
        raise ValueError(f'{plan_path}: expected "folds" (list) and "classes"')
    if len(set(plan['folds'])) != len(plan['folds']):
        raise ValueError(f'{plan_path}: duplicate fold names')
    fs = plan.get('fold_samples')
    if fs is not None and (not isinstance(fs, dict) or not all(
            isinstance(fs.get(f), list) for f in plan['folds'])):
        raise ValueError(f'{plan_path}: "fold_samples" must hold a list of '
                         f'sample ids for every fold')
    if not isinstance(plan.get('failed_samples', []), list) or not all(
            isinstance(f, dict) for f in plan.get('failed_samples', [])):
        raise ValueError(f'{plan_path}: "failed_samples" must be a list of '
                         f'objects')
    classes = [str(c) for c in plan['classes']]
    folds: Dict[str, Dict[str, Any]] = {}
    seen: Dict[str, str] = {}
    for fold in plan['folds']:
        path = osp.join(fold_dir(work_dir, fold), PREDICTIONS_FILE)
        if not osp.isfile(path):
            continue
        data = _read_json(path)
        _check_predictions(data, path, classes)
        for p in data['predictions']:
            key = f'{p.get("dataset", "")}/{p["sample_id"]}'
            if key in seen:
                raise ValueError(f'{path}: sample {p["sample_id"]} is also '
                                 f'predicted in fold {seen[key]}')
            seen[key] = fold
        folds[fold] = data
    return plan, folds


def missing_folds(plan: Dict[str, Any], folds: Dict[str, Any]) -> List[str]:
    """Folds of the plan that have no predictions, in plan order.

    Args:
        plan: The LOSO plan (``folds`` key).
        folds: Loaded predictions keyed by fold.

    Returns:
        List of fold names.
    """
    return [f for f in plan['folds'] if f not in folds]


def sample_accounting(plan: Dict[str, Any],
                      folds: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    """Samples planned vs scored, per fold: nothing may vanish unnoticed.

    Args:
        plan: The LOSO plan; ``fold_samples`` lists the sample ids of every
            fold's test subject and ``failed_samples`` the clips whose flow
            extraction failed (``sample_id``, ``fold``, ``error``).
        folds: Loaded predictions keyed by fold.

    Returns:
        ``planned`` (None when the plan records no samples: an older plan),
        ``scored``, ``missing`` (``[{'fold', 'sample_id', 'why'}]`` in plan
        order), ``unexpected`` (scored but not planned) and ``per_fold``
        (fold -> ``planned``, ``scored``, ``missing``).
    """
    fold_samples = plan.get('fold_samples')
    failed = {str(f.get('sample_id')): str(f.get('error', ''))
              for f in plan.get('failed_samples') or []}
    per_fold: Dict[str, Any] = {}
    missing: List[Dict[str, str]] = []
    unexpected: List[Dict[str, str]] = []
    scored_total = 0
    for fold in plan['folds']:
        scored = [str(p['sample_id'])
                  for p in folds.get(fold, {}).get('predictions', [])]
        scored_total += len(scored)
        if fold_samples is None:
            per_fold[fold] = dict(planned=None, scored=len(scored),
                                  missing=None)
            continue
        planned = [str(s) for s in fold_samples.get(fold, [])]
        got = set(scored)
        lost = []
        for sid in planned:
            if sid in got:
                continue
            if sid in failed:
                why = f'flow extraction failed: {failed[sid]}'
            elif fold not in folds:
                why = 'fold not finished'
            else:
                why = f'not in fold_{fold}/{PREDICTIONS_FILE}'
            lost.append(dict(fold=fold, sample_id=sid, why=why))
        known = set(planned)
        unexpected += [dict(fold=fold, sample_id=s) for s in scored
                       if s not in known]
        missing += lost
        per_fold[fold] = dict(planned=len(planned), scored=len(scored),
                              missing=len(lost))
    planned_total = (None if fold_samples is None else
                     sum(len(v) for v in fold_samples.values()))
    return dict(planned=planned_total, scored=scored_total, missing=missing,
                unexpected=unexpected, per_fold=per_fold)


def _section(rows: List[Dict[str, Any]], classes: List[str],
             num_folds: int) -> Dict[str, Any]:
    """Scores of one pooled set of predictions (one confusion matrix)."""
    cm = confusion_matrix([r['gt'] for r in rows], [r['pred'] for r in rows],
                          len(classes))
    section: Dict[str, Any] = dict(uf1_uar(cm))
    section['num_folds'] = num_folds
    section['num_samples'] = len(rows)
    section['per_class'] = {
        name: scores for name, scores in zip(classes, per_class_scores(cm))
    }
    section['confusion_matrix'] = cm.tolist()
    return section


def pooled_rows(plan: Dict[str, Any],
                folds: Dict[str, Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Concatenate every fold's predictions in plan order, tagging the fold.

    Args:
        plan: The LOSO plan.
        folds: Loaded predictions keyed by fold.

    Returns:
        Prediction dicts with an added ``fold`` key.
    """
    rows = []
    for fold in plan['folds']:
        for p in folds.get(fold, {}).get('predictions', []):
            rows.append(dict(p, fold=fold))
    return rows


def pooled_report(plan: Dict[str, Any],
                  folds: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    """Protocol score from one confusion matrix over all folds' predictions.

    Args:
        plan: The LOSO plan (``folds``, ``classes``, optional ``config``).
        folds: Loaded predictions keyed by fold (from
            :func:`load_fold_predictions`).

    Returns:
        Dict with ``classes``, ``config``, ``num_folds_planned``,
        ``missing_folds``, ``samples`` (:func:`sample_accounting`),
        ``overall`` and ``datasets`` (source dataset ->
        section). A section holds ``UF1``, ``UAR``, ``accuracy`` (fractions),
        ``num_folds``, ``num_samples``, ``per_class`` (name -> precision,
        recall, f1, support) and ``confusion_matrix`` (list of rows, ground
        truth first).

    Raises:
        ValueError: If no fold holds a prediction.
    """
    classes = [str(c) for c in plan['classes']]
    rows = pooled_rows(plan, folds)
    if not rows:
        raise ValueError('pooled_report: no fold has any prediction')
    datasets: Dict[str, Any] = {}
    for ds in sorted({str(r.get('dataset', '')) for r in rows}):
        sub = [r for r in rows if str(r.get('dataset', '')) == ds]
        datasets[ds] = _section(sub, classes, len({r['fold'] for r in sub}))
    return {
        'classes': classes,
        'config': plan.get('config'),
        'num_folds_planned': len(plan['folds']),
        'missing_folds': missing_folds(plan, folds),
        'samples': sample_accounting(plan, folds),
        'overall': _section(rows, classes, len(folds)),
        'datasets': datasets,
    }
