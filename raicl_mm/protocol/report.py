"""The pooled LOSO report: one confusion matrix over every fold, nothing lost.

:func:`make_report` reads ``WORK_DIR/loso_plan.json`` and every
``fold_<subject>/predictions.json`` and writes, atomically, into ``OUT``
(default ``WORK_DIR/report``): ``report.md``, ``report.json``,
``megc_log.csv`` and the confusion-matrix pictures ``confusion_overall.png``
/ ``confusion_<dataset>.png``. UF1 and UAR are computed once from the pooled
predictions (MEGC2019 protocol, :mod:`raicl_mm.evaluation.pooling`), never as
a mean of per-fold scores.

An incomplete run is refused (:class:`IncompleteRunError`, exit status 2):
a planned fold without predictions, or a planned sample that no fold scored
(its reason named: flow extraction failed, fold not finished, left out of
the fold's predictions), unless ``allow_missing``; then the report is made
from what was scored and lists what is not. A fold that scored samples the
plan does not list was run on other data: always refused.
"""
from __future__ import annotations

import csv
import io
import os.path as osp
import re
from typing import Any, Dict, List, Optional

from raicl_mm.evaluation.metrics import atomic_write_json, atomic_write_text
from raicl_mm.evaluation.pooling import (load_fold_predictions,
                                         pooled_report, pooled_rows)


#: The samples of the plan that a report made with ``allow_missing`` lacks,
#: one ``sample_id<TAB>fold<TAB>why`` a line, next to ``report.md``.
MISSING_FILE = 'missing_samples.tsv'


class IncompleteRunError(ValueError):
    """Folds or samples of the plan are not scored; one line naming them."""


class PlanMismatchError(ValueError):
    """A fold's predictions are not the plan's run's; one line naming the file."""


def check_against_plan(plan: Dict[str, Any], folds: Dict[str, Dict[str, Any]],
                       work_dir: str) -> None:
    """Refuse predictions that do not belong to the plan: written by another
    run or edited (the fold's stamp, :func:`raicl_mm.protocol.plan.fold_stamp_problem`),
    or whose ground truth differs from the plan's label of the sample.

    Plans written before stamps and labels existed are checked on what they
    hold (``tools/loso.py`` on the work dir stamps their finished folds).

    Raises:
        PlanMismatchError: Naming the predictions file and what differs.
    """
    from raicl_mm.protocol.plan import fold_stamp_problem
    from raicl_mm.evaluation.pooling import PREDICTIONS_FILE, fold_dir
    labels = plan.get('labels') if isinstance(plan.get('labels'), dict) else None
    classes = [str(c) for c in plan['classes']]
    for fold, data in folds.items():
        folder = fold_dir(work_dir, fold)
        path = osp.join(folder, PREDICTIONS_FILE)
        if 'plan_id' in plan:
            problem = fold_stamp_problem(folder, plan, fold)
            if problem:
                raise PlanMismatchError(
                    f'{problem}; the report pools only the plan\'s runs: rerun the '
                    f'fold with tools/loso.py CONFIG --work-dir {work_dir} --folds '
                    f'{fold} after moving {folder} away')
        if labels is None:
            continue
        for p in data['predictions']:
            want = labels.get(str(p['sample_id']))
            if want is not None and want != p['gt']:
                raise PlanMismatchError(
                    f'{path}: sample {p["sample_id"]} has ground truth '
                    f'{classes[p["gt"]]!r} but the plan labels it {classes[want]!r}; '
                    'the file was edited or made from other data')


def _pct(value: Optional[float]) -> str:
    return '-' if value is None else f'{100.0 * value:.2f}'


def _safe_name(name: str) -> str:
    safe = re.sub(r'[^A-Za-z0-9._-]+', '_', name) or 'unnamed'
    # Never overwrite the Composite picture.
    return 'dataset_overall' if safe == 'overall' else safe


def _overall_name(report: Dict[str, Any]) -> str:
    """'Composite' for a multi-dataset protocol (CDE), else the dataset."""
    names = list(report['datasets'])
    return 'Composite' if len(names) != 1 else f'All ({names[0]})'


def summary_table(report: Dict[str, Any]) -> str:
    """Markdown table: Composite and each source dataset."""
    lines = ['| Set | UF1 (%) | UAR (%) | Accuracy (%) | Folds | Samples |',
             '|---|---:|---:|---:|---:|---:|']
    sections = [(_overall_name(report), report['overall'])]
    if len(report['datasets']) > 1:  # one dataset: its row = the overall one
        sections += [(ds or '(unnamed)', sec)
                     for ds, sec in report['datasets'].items()]
    for name, sec in sections:
        lines.append(f'| {name} | {_pct(sec["UF1"])} | {_pct(sec["UAR"])} | '
                     f'{_pct(sec["accuracy"])} | {sec["num_folds"]} | '
                     f'{sec["num_samples"]} |')
    return '\n'.join(lines)


def per_class_table(section: Dict[str, Any]) -> str:
    """Markdown per-class table (precision, recall, F1 in %, support)."""
    lines = ['| Class | Precision (%) | Recall (%) | F1 (%) | Support |',
             '|---|---:|---:|---:|---:|']
    for name, s in section['per_class'].items():
        lines.append(f'| {name} | {_pct(s["precision"])} | '
                     f'{_pct(s["recall"])} | {_pct(s["f1"])} | '
                     f'{s["support"]} |')
    return '\n'.join(lines)


def samples_table(report: Dict[str, Any]) -> str:
    """Markdown table: samples planned and scored per fold."""
    lines = ['| Fold | Planned | Scored | Missing |', '|---|---:|---:|---:|']
    for fold, c in report['samples']['per_fold'].items():
        planned = '?' if c['planned'] is None else c['planned']
        miss = '?' if c['missing'] is None else c['missing']
        lines.append(f'| {fold} | {planned} | {c["scored"]} | {miss} |')
    return '\n'.join(lines)


def _missing_lines(report: Dict[str, Any]) -> List[str]:
    return [f'`{m["sample_id"]}` (fold {m["fold"]}): {m["why"]}'
            for m in report['samples']['missing']]


def render_markdown(report: Dict[str, Any]) -> str:
    """Full ``report.md`` text."""
    samples = report['samples']
    planned = ('?' if samples['planned'] is None else samples['planned'])
    parts = ['# LOSO report (pooled predictions)', '']
    if report.get('config'):
        parts += [f'Config: `{report["config"]}`', '']
    parts += [
        f'Folds with predictions: {report["overall"]["num_folds"]} of '
        f'{report["num_folds_planned"]} planned; samples scored: '
        f'{samples["scored"]} of {planned} planned. UF1/UAR are computed once '
        f'from one confusion matrix over all pooled predictions.', ''
    ]
    if report['missing_folds']:
        parts += ['**Incomplete run: missing folds:** ' +
                  ', '.join(report['missing_folds']), '']
    if samples['missing']:
        parts += [f'**Incomplete run: {len(samples["missing"])} planned '
                  f'samples not scored:**', '']
        parts += [f'- {line}' for line in _missing_lines(report)] + ['']
    if samples['planned'] is None:
        parts += ['**The plan records no samples per fold (an older plan): '
                  'the samples could not be counted.**', '']
    parts += ['## Summary', '', summary_table(report), '',
              '`-` = undefined (class never predicted / absent from the '
              'ground truth). A class absent from a set\'s ground truth is '
              'left out of its UAR, and out of its UF1 unless it was '
              'predicted (then F1 = 0).', '',
              '## Samples per fold', '', samples_table(report), '',
              f'## Per class ({_overall_name(report)})', '',
              per_class_table(report['overall'])]
    if len(report['datasets']) > 1:
        for ds, sec in report['datasets'].items():
            parts += ['', f'## Per class ({ds})', '', per_class_table(sec)]
    return '\n'.join(parts) + '\n'


def megc_log(rows: List[Dict[str, Any]], classes: List[str]) -> str:
    """CSV of every pooled prediction with class names (columns fold,
    sample_id, dataset, subject, ground_truth, prediction)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator='\n')
    writer.writerow(['fold', 'sample_id', 'dataset', 'subject',
                     'ground_truth', 'prediction'])
    for r in rows:
        writer.writerow([r['fold'], r['sample_id'], r.get('dataset', ''),
                         r.get('subject', ''), classes[r['gt']],
                         classes[r['pred']]])
    return buf.getvalue()


def _title(name: str, sec: Dict[str, Any]) -> str:
    return (f'{name}: UF1 {_pct(sec["UF1"])}%, UAR {_pct(sec["UAR"])}% '
            f'(n={sec["num_samples"]})')


def _names(items: List[str], limit: int = 50) -> str:
    head = ', '.join(items[:limit])
    return head + (f' (+{len(items) - limit} more)' if len(items) > limit
                   else '')


def check_complete(report: Dict[str, Any], work_dir: str,
                   allow_missing: bool) -> None:
    """Refuse an incomplete or mixed run (see the module docstring).

    Raises:
        IncompleteRunError: One line naming the folds and samples.
    """
    samples = report['samples']
    if samples['unexpected']:
        by_fold: Dict[str, List[str]] = {}
        for u in samples['unexpected']:
            by_fold.setdefault(u['fold'], []).append(u['sample_id'])
        detail = '; '.join(f'fold {f}: {_names(ids, 10)}'
                           for f, ids in by_fold.items())
        raise IncompleteRunError(
            f'{work_dir}: folds scored samples that loso_plan.json does not '
            f'list ({detail}): they were run on other data or settings; '
            f'rerun tools/loso.py with --new-plan')
    if allow_missing:
        return
    parts = []
    if report['missing_folds']:
        counts = [samples['per_fold'][f]['planned']
                  for f in report['missing_folds']]
        parts.append('missing folds: ' + ', '.join(report['missing_folds'])
                     + ('' if None in counts else
                        f' ({sum(counts)} planned samples)'))
    # the samples of a missing fold are counted with it, not listed
    lost = [f'{m["sample_id"]} ({m["why"]})' for m in samples['missing']
            if m['fold'] not in report['missing_folds']]
    if lost:
        parts.append(f'{len(lost)} of {samples["planned"]} planned samples '
                     f'not scored: ' + _names(lost))
    if samples['planned'] is None:
        parts.append('loso_plan.json records no samples per fold (written by '
                     'an older tools/loso.py), so the scored samples cannot '
                     'be counted; rerun tools/loso.py CONFIG --work-dir '
                     f'{work_dir} (finished folds are kept) to record them')
    if parts:
        raise IncompleteRunError('incomplete run: ' + '; '.join(parts) +
                                 '; pass --allow-missing to report the others')


def make_report(work_dir: str, allow_missing: bool = False,
                out_dir: Optional[str] = None) -> Dict[str, Any]:
    """Pool the folds of a LOSO work dir and write the report files.

    Args:
        work_dir: LOSO work directory.
        allow_missing: Report what was scored even if folds or samples of
            the plan were not (they are listed in the report).
        out_dir: Output folder (default ``WORK_DIR/report``).

    Returns:
        The report dict (:func:`~raicl_mm.evaluation.pooling.pooled_report`)
        with ``pictures`` (file names) and ``out_dir`` added.

    Raises:
        FileNotFoundError / ValueError: An unusable work dir or file, named.
        IncompleteRunError: See :func:`check_complete`.
    """
    from raicl_mm.visualization.confusion import plot_confusion
    plan, folds = load_fold_predictions(work_dir)
    if not folds:
        raise IncompleteRunError(f'no fold of {work_dir} has predictions')
    check_against_plan(plan, folds, work_dir)
    report = pooled_report(plan, folds)
    check_complete(report, work_dir, allow_missing)
    out_dir = out_dir or osp.join(work_dir, 'report')
    classes = report['classes']
    overall = report['overall']
    pictures = [plot_confusion(overall['confusion_matrix'], classes,
                               _title(_overall_name(report), overall),
                               osp.join(out_dir, 'confusion_overall.png'))]
    for ds, sec in (report['datasets'].items()
                    if len(report['datasets']) > 1 else ()):
        pictures.append(plot_confusion(
            sec['confusion_matrix'], classes, _title(ds or '(unnamed)', sec),
            osp.join(out_dir, f'confusion_{_safe_name(ds)}.png')))
    report['pictures'] = [osp.basename(p) for p in pictures]
    atomic_write_json(osp.join(out_dir, 'report.json'), report)
    atomic_write_text(osp.join(out_dir, 'report.md'), render_markdown(report))
    atomic_write_text(osp.join(out_dir, 'megc_log.csv'),
                      megc_log(pooled_rows(plan, folds), classes))
    missing_path = osp.join(out_dir, MISSING_FILE)
    if report['samples']['missing']:
        atomic_write_text(missing_path, ''.join(
            f'{m["sample_id"]}\t{m["fold"]}\t{m["why"]}\n'
            for m in report['samples']['missing']))
        report['missing_file'] = missing_path
    elif osp.isfile(missing_path):
        import os
        os.remove(missing_path)   # an earlier, incomplete report's list
    report['out_dir'] = out_dir
    report['picture_paths'] = pictures
    return report


def report_lines(report: Dict[str, Any]) -> List[str]:
    """What the tool prints after a report is written."""
    lines = [summary_table(report)]
    samples = report['samples']
    planned = '?' if samples['planned'] is None else samples['planned']
    lines.append(f'samples scored: {samples["scored"]} of {planned} planned')
    if report['missing_folds']:
        lines.append('missing folds (not in the scores): '
                     + ', '.join(report['missing_folds']))
    if samples['missing']:
        reasons: Dict[str, int] = {}
        for m in samples['missing']:
            why = m['why'].split(':')[0]
            reasons[why] = reasons.get(why, 0) + 1
        lines.append(f'missing samples (not in the scores): '
                     f'{len(samples["missing"])} ('
                     + ', '.join(f'{why}: {n}' for why, n in reasons.items())
                     + f'); listed in {report.get("missing_file", MISSING_FILE)}')
    lines.append(f'report: {osp.join(report["out_dir"], "report.md")}')
    lines += [f'picture: {p}' for p in report['picture_paths']]
    return lines
