"""Pooled LOSO report: one confusion matrix over every fold's predictions.

Usage::

    python tools/loso_report.py WORK_DIR [--allow-missing] [--out DIR]

Reads ``WORK_DIR/loso_plan.json`` and
``WORK_DIR/fold_<subject>/predictions.json`` and writes, atomically, into
``DIR`` (default ``WORK_DIR/report``): ``report.md``, ``report.json``,
``megc_log.csv`` and the confusion-matrix pictures ``confusion_overall.png`` /
``confusion_<dataset>.png``. UF1 and UAR are computed once from the pooled
predictions (MEGC2019 protocol), never as a mean of per-fold scores. Exit
status 2 when a planned fold has no predictions, unless ``--allow-missing``.
"""
from __future__ import annotations

import argparse
import csv
import io
import os.path as osp
import re
import sys
from typing import Any, Dict, List, Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from raicl_mm.evaluation.metrics import (atomic_write_json,  # noqa: E402
                                         atomic_write_text)
from raicl_mm.evaluation.pooling import (load_fold_predictions,  # noqa: E402
                                         pooled_report, pooled_rows)
from raicl_mm.visualization.confusion import plot_confusion  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` if None.

    Returns:
        The parsed namespace.
    """
    parser = argparse.ArgumentParser(
        description='Pooled UF1/UAR report over the folds of a LOSO run.')
    parser.add_argument('work_dir', help='LOSO work directory (holds '
                        'loso_plan.json and fold_<subject>/predictions.json)')
    parser.add_argument('--allow-missing', action='store_true',
                        help='report the finished folds even if some folds '
                        'have no predictions (they are listed in the report)')
    parser.add_argument('--out', default=None,
                        help='output folder (default WORK_DIR/report)')
    return parser.parse_args(argv)


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
    """Markdown table: Composite and each source dataset.

    Args:
        report: Output of :func:`pooled_report`.

    Returns:
        Markdown text.
    """
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
    """Markdown per-class table (precision, recall, F1 in %, support).

    Args:
        section: One section of the pooled report.

    Returns:
        Markdown text.
    """
    lines = ['| Class | Precision (%) | Recall (%) | F1 (%) | Support |',
             '|---|---:|---:|---:|---:|']
    for name, s in section['per_class'].items():
        lines.append(f'| {name} | {_pct(s["precision"])} | '
                     f'{_pct(s["recall"])} | {_pct(s["f1"])} | '
                     f'{s["support"]} |')
    return '\n'.join(lines)


def render_markdown(report: Dict[str, Any]) -> str:
    """Full ``report.md`` text.

    Args:
        report: Output of :func:`pooled_report`.

    Returns:
        Markdown text.
    """
    parts = ['# LOSO report (pooled predictions)', '']
    if report.get('config'):
        parts += [f'Config: `{report["config"]}`', '']
    parts += [
        f'Folds with predictions: {report["overall"]["num_folds"]} of '
        f'{report["num_folds_planned"]} planned. UF1/UAR are computed once '
        f'from one confusion matrix over all pooled predictions.', ''
    ]
    if report['missing_folds']:
        parts += ['**Incomplete run: missing folds:** ' +
                  ', '.join(report['missing_folds']), '']
    parts += ['## Summary', '', summary_table(report), '',
              '`-` = undefined (class never predicted / absent from the '
              'ground truth). A class absent from a set\'s ground truth is '
              'left out of its UAR, and out of its UF1 unless it was '
              'predicted (then F1 = 0).', '',
              f'## Per class ({_overall_name(report)})', '',
              per_class_table(report['overall'])]
    if len(report['datasets']) > 1:
        for ds, sec in report['datasets'].items():
            parts += ['', f'## Per class ({ds})', '', per_class_table(sec)]
    return '\n'.join(parts) + '\n'


def megc_log(rows: List[Dict[str, Any]], classes: List[str]) -> str:
    """CSV of every pooled prediction with class names.

    Args:
        rows: Pooled predictions (with ``fold``).
        classes: Class names indexed by label.

    Returns:
        CSV text with columns fold, sample_id, dataset, subject,
        ground_truth, prediction.
    """
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Build the pooled report.

    Args:
        argv: Command-line arguments without the program name.

    Returns:
        Exit status: 0 on success, 2 when folds are missing (without
        ``--allow-missing``) or the work directory is unusable.
    """
    args = parse_args(argv)
    try:
        plan, folds = load_fold_predictions(args.work_dir)
    except (FileNotFoundError, ValueError) as err:
        print(f'loso_report: {err}', file=sys.stderr)
        return 2
    missing = [f for f in plan['folds'] if f not in folds]
    if missing and not args.allow_missing:
        print(f'loso_report: missing folds: {", ".join(missing)}; pass '
              f'--allow-missing to report the others', file=sys.stderr)
        return 2
    if not folds:
        print(f'loso_report: no fold of {args.work_dir} has predictions',
              file=sys.stderr)
        return 2
    report = pooled_report(plan, folds)
    out_dir = args.out or osp.join(args.work_dir, 'report')
    classes = report['classes']

    pictures = [plot_confusion(report['overall']['confusion_matrix'], classes,
                               _title(_overall_name(report), report['overall']),
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

    print(summary_table(report))
    if missing:
        print(f'missing folds (not in the scores): {", ".join(missing)}')
    print(f'report: {osp.join(out_dir, "report.md")}')
    for p in pictures:
        print(f'picture: {p}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
