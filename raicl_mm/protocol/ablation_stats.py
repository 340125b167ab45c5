"""The ablation grid's statistics and tables (from its records, no training).

UF1 / UAR of pooled predictions, the clip-level paired bootstrap (clip-only:
it resamples clips of fixed runs), the seed-level paired comparison with the
decision rule declared in docs/benchmark.md (seed and initialisation variance
included), the teacher's score beside the student's, and the Markdown report
that :mod:`raicl_mm.protocol.ablation` writes after every run.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .configs import ConfigFileError as AblationError


# -------------------------------------------------------------- metrics
def scores(gt: Sequence[int], pred: Sequence[int], num_classes: int
           ) -> Dict[str, float]:
    """UF1, UAR (percent) and accuracy (percent) of pooled predictions."""
    from raicl_mm.evaluation.metrics import confusion_matrix, uf1_uar
    cm = confusion_matrix(list(gt), list(pred), num_classes)
    out = {k: 100.0 * float(v) for k, v in uf1_uar(cm).items()}  # fractions
    out['accuracy'] = float(100.0 * np.trace(cm) / max(cm.sum(), 1))
    return out


def _uf1_fast(gt: np.ndarray, pred: np.ndarray, num_classes: int) -> float:
    """UF1 in percent (mean over classes of 2TP / (2TP + FP + FN)); a class
    absent from both gt and pred is left out, as in ``uf1_uar``."""
    f1 = []
    for c in range(num_classes):
        tp = np.sum((gt == c) & (pred == c))
        denom = np.sum(gt == c) + np.sum(pred == c)
        if denom:
            f1.append(2.0 * tp / denom)
    return 100.0 * float(np.mean(f1)) if f1 else 0.0


def paired_bootstrap(ref: Sequence[Dict[str, Any]], other: Sequence[Dict[str, Any]],
                     num_classes: int, n_boot: int = 2000, seed: int = 0
                     ) -> Dict[str, float]:
    """Paired bootstrap of UF1(ref) - UF1(other) over clips.

    Args:
        ref, other: Run records (one per seed) of two methods, each with
            ``predictions`` ``[[sample_id, gt, pred], ...]`` on the same clips.
        num_classes: L.
        n_boot: Resamples.
        seed: Seed of the resampling.

    Returns:
        ``diff`` (observed difference of the seed-mean UF1), ``low`` and
        ``high`` (2.5 and 97.5 percentiles), ``n_boot`` and ``clips``.

    Raises:
        AblationError: The two methods' runs were scored on different clips.
    """
    def table(runs):
        ids = sorted(runs[0]['predictions'], key=lambda p: p[0])
        order = [p[0] for p in ids]
        gts = np.array([p[1] for p in ids])
        preds = []
        for r in runs:
            m = {p[0]: p[2] for p in r['predictions']}
            if sorted(m) != order:
                raise AblationError(f'{r["method"]} seed {r["seed"]}: scored '
                                    'clips differ from its other seeds')
            preds.append(np.array([m[i] for i in order]))
        return order, gts, preds

    ids_a, gt_a, pa = table(list(ref))
    ids_b, gt_b, pb = table(list(other))
    if ids_a != ids_b or not np.array_equal(gt_a, gt_b):
        raise AblationError(f'{ref[0]["method"]} and {other[0]["method"]} were '
                            'scored on different clips or labels; a paired '
                            'bootstrap needs the same clips')

    def diff(idx):
        g = gt_a[idx]
        a = np.mean([_uf1_fast(g, p[idx], num_classes) for p in pa])
        b = np.mean([_uf1_fast(g, p[idx], num_classes) for p in pb])
        return a - b

    n = len(gt_a)
    rng = np.random.default_rng(seed)
    boots = np.array([diff(rng.integers(0, n, n)) for _ in range(int(n_boot))])
    return {'diff': float(diff(np.arange(n))),
            'low': float(np.percentile(boots, 2.5)),
            'high': float(np.percentile(boots, 97.5)),
            'n_boot': int(n_boot), 'clips': int(n)}


# ------------------------------------------------------ seed-level statistics
#: The decision rule, declared in docs/benchmark.md before the v3 grid ran: A
#: beats B when the 95 % t-interval of the paired difference UF1(A) - UF1(B)
#: over seeds excludes 0 and A > B in at least this fraction of the seeds
#: (4 of 5); B beats A likewise; otherwise the two are not distinguishable.
RULE_MIN_SIGN_FRACTION = 0.8
#: A run whose teacher (EMA target branch) ends more than this many UF1
#: points below its student is flagged: IRC / MRD then learn from a teacher
#: that has not learned.
TEACHER_GAP_FLAG = 10.0


def _t_quantile(df: int, q: float = 0.975) -> float:
    """Student's t quantile (scipy, which mmaction2 already requires)."""
    from scipy.stats import t
    return float(t.ppf(q, df))


def paired_seed_stats(a: Sequence[Dict[str, Any]], b: Sequence[Dict[str, Any]],
                      key: str = 'uf1') -> Optional[Dict[str, Any]]:
    """Paired difference ``key(A) - key(B)`` over the seeds both ran.

    Each seed pairs the same initial weights of the shared components, the
    same batches and the same folds (:mod:`raicl_mm.models.recognizer`'s
    component streams), so the difference is taken per seed first; the
    interval is the t-interval of the mean difference (df = seeds - 1):
    seed and initialisation variance, not only clip sampling.

    Returns:
        None with fewer than 2 common seeds; else ``seeds``, ``diffs``,
        ``mean``, ``sd``, ``low``, ``high``, ``wins`` (seeds with A > B),
        ``losses`` (A < B) and ``verdict`` by the declared rule
        (``'A > B'``, ``'A < B'`` or ``'not distinguishable'``).
    """
    ra = {r['seed']: r for r in a}
    rb = {r['seed']: r for r in b}
    common = sorted(set(ra) & set(rb))
    if len(common) < 2:
        return None
    d = np.array([float(ra[s][key]) - float(rb[s][key]) for s in common])
    n = len(d)
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    half = _t_quantile(n - 1) * sd / np.sqrt(n)
    wins, losses = int((d > 0).sum()), int((d < 0).sum())
    need = int(np.ceil(RULE_MIN_SIGN_FRACTION * n))
    verdict = 'not distinguishable'
    if mean - half > 0 and wins >= need:
        verdict = 'A > B'
    elif mean + half < 0 and losses >= need:
        verdict = 'A < B'
    return {'seeds': common, 'diffs': [round(float(x), 2) for x in d],
            'mean': mean, 'sd': sd, 'low': mean - half, 'high': mean + half,
            'wins': wins, 'losses': losses, 'verdict': verdict}


def seed_table(by: Dict[str, List[Dict[str, Any]]],
               references: Sequence[str] = ('M2', 'M6')) -> List[str]:
    """Markdown: each method against each reference, paired over seeds, with
    the noise floor (``X-reinit`` against ``X``: the same method under a
    second initial-weight draw)."""
    lines = ['', 'Seed-level paired comparisons (Δ = UF1(A) - UF1(B) per seed, '
             'same initial weights and batches; 95 % t-interval over seeds; '
             f'rule: A > B when the interval excludes 0 and A > B in at least '
             f'{RULE_MIN_SIGN_FRACTION:.0%} of the seeds):', '',
             '| A | B | seeds | Δ per seed | mean Δ [95 % t-interval] | '
             'A > B in | verdict |', '|---|---|---:|---|---|---:|---|']
    pairs, floors = [], []
    for name in by:
        base, sep, variant = name.partition('-')
        if sep and variant == 'reinit' and base in by:
            floors.append((name, base))
    for ref in references:
        if ref not in by:
            continue
        for name in by:
            if name.endswith('-reinit'):
                continue    # a second draw of a row: the noise floor only
            if name != ref and (name, ref) not in pairs and (ref, name) not in pairs:
                pairs.append((name, ref))
    for a, b in pairs + floors:
        st = paired_seed_stats(by[a], by[b])
        if st is None:
            continue
        verdict = {'A > B': f'{a} > {b}', 'A < B': f'{a} < {b}'}.get(
            st['verdict'], st['verdict'])
        if (a, b) in floors:
            verdict = (f'noise floor (the same method, another initial-weight '
                       f'draw): sd of Δ {st["sd"]:.2f}')
        lines.append(
            f'| {a} | {b} | {len(st["seeds"])} | '
            + ', '.join(f'{x:+.2f}' for x in st['diffs'])
            + f' | {st["mean"]:+.2f} [{st["low"]:+.2f}, {st["high"]:+.2f}] | '
            f'{st["wins"]}/{len(st["seeds"])} | {verdict} |')
    return lines if len(lines) > 5 else []


def teacher_cell(runs: Sequence[Dict[str, Any]]) -> str:
    """Teacher UF1 mean ± std, with the runs flagged by TEACHER_GAP_FLAG."""
    t = [r for r in runs if r.get('target_uf1') is not None]
    if not t:
        return ''
    flagged = sum(r['uf1'] - r['target_uf1'] > TEACHER_GAP_FLAG for r in t)
    cell = _mean_std([r['target_uf1'] for r in t])
    return cell + (f' ⚠ {flagged}/{len(t)} runs > {TEACHER_GAP_FLAG:.0f} '
                   'below the student' if flagged else '')


# ----------------------------------------------------------------- report
def _mean_std(values: Sequence[float]) -> str:
    v = np.asarray(values, float)
    return (f'{v.mean():.2f} ± {v.std(ddof=1):.2f}' if len(v) > 1
            else f'{v.mean():.2f}')


def markdown_table(results: Dict[str, Any], reference: str = 'M6',
                   n_boot: int = 2000) -> str:
    """The results as Markdown: scores, bootstrap intervals, attention."""
    by: Dict[str, List[Dict[str, Any]]] = {}
    for r in results['runs']:
        by.setdefault(r['method'], []).append(r)
    if not by:
        return '(no finished run)\n'
    lines = [f'k = {results.get("k_folds")} folds by subject (split seed '
             f'{results.get("fold_seed")}); mean ± std over seeds; teacher = '
             'the EMA target branch scored on the same clips; Δ = UF1('
             f'{reference}) - UF1(method), paired bootstrap 95 % interval '
             f'over clips ({n_boot} resamples): clip-only, it leaves out '
             'seed and initialisation variance (the seed-level table below '
             'does not).', '',
             '| method | seeds | clips | UF1 | UAR | accuracy | teacher UF1 | '
             f'Δ UF1 vs {reference} [clip-only 95 % CI] |',
             '|---|---:|---:|---:|---:|---:|---:|---|']
    ref = by.get(reference)
    for name, runs in by.items():
        runs = sorted(runs, key=lambda r: r['seed'])
        cell = ''
        if ref and name != reference:
            common = sorted({r['seed'] for r in runs} & {r['seed'] for r in ref})
            a = [r for r in ref if r['seed'] in common]
            b = [r for r in runs if r['seed'] in common]
            if a and b:
                try:
                    bs = paired_bootstrap(a, b, len(a[0]['classes']), n_boot)
                    cell = (f'{bs["diff"]:+.2f} [{bs["low"]:+.2f}, '
                            f'{bs["high"]:+.2f}]')
                except AblationError:
                    cell = 'n/a (other clips or labels)'
        lines.append(f'| {name} | {",".join(str(r["seed"]) for r in runs)} | '
                     f'{runs[0]["n"]} | {_mean_std([r["uf1"] for r in runs])} | '
                     f'{_mean_std([r["uar"] for r in runs])} | '
                     f'{_mean_std([r["accuracy"] for r in runs])} | '
                     f'{teacher_cell(runs)} | {cell} |')
    lines += seed_table(by)
    lines += variants_table(by)
    lines += _per_method_table(
        by, 'attention', 'Attention on the ground truth (mean over seeds; see '
        'docs/benchmark.md for definitions):', '---:',
        lambda v: f'{np.mean(v):.3f}')
    lines += _per_method_table(
        by, 'losses', 'Loss terms and MRD statistics, first -> last epoch '
        '(mean over folds and seeds):', '---',
        lambda v: (f'{np.mean([x["first_epoch"] for x in v]):.4f} -> '
                   f'{np.mean([x["last_epoch"] for x in v]):.4f}'))
    return '\n'.join(lines) + '\n'


def _per_method_table(by: Dict[str, List[Dict[str, Any]]], field: str,
                      title: str, align: str, cell) -> List[str]:
    """A row per method, a column per key of the records' ``field`` dict;
    ``cell`` turns the values of one key over the seeds into the text."""
    keys = sorted({k for runs in by.values() for r in runs
                   for k in (r.get(field) or {})})
    if not keys:
        return []
    lines = ['', title, '', '| method | ' + ' | '.join(keys) + ' |',
             '|---|' + f'{align}|' * len(keys)]
    for name, runs in by.items():
        cells = []
        for k in keys:
            v = [r[field][k] for r in runs
                 if (r.get(field) or {}).get(k) is not None]
            cells.append(cell(v) if v else '')
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return lines


def variants_table(by: Dict[str, List[Dict[str, Any]]]) -> List[str]:
    """Methods named ``BASE-VARIANT`` as a grid: a row per BASE, a column per
    variant (the first column the BASE itself), UF1 / UAR mean ± std.

    E.g. the robust-MER table ("Rethinking key-frame-based micro-expression
    recognition") (``M1``, ``M1-std10`` ... ``M7-spotted``)
    or one method's readings. Empty when no name has a base among the methods.
    """
    grid: Dict[str, Dict[str, List[Dict[str, Any]]]] = {}
    variants: List[str] = []
    for name, runs in by.items():
        base, sep, variant = name.partition('-')
        if sep and base in by and variant:
            grid.setdefault(base, {})[variant] = runs
            if variant not in variants:
                variants.append(variant)
    if not grid:
        return []

    def cell(runs):
        if not runs:
            return ''
        return (f'{_mean_std([r["uf1"] for r in runs])} / '
                f'{_mean_std([r["uar"] for r in runs])}')

    lines = ['', 'Variants (UF1 / UAR, mean ± std over seeds; the first column '
             'is the method itself):', '',
             '| method | (itself) | ' + ' | '.join(variants) + ' |',
             '|---|---|' + '---|' * len(variants)]
    for base, row in grid.items():
        lines.append(f'| {base} | {cell(by[base])} | ' + ' | '.join(
            cell(row.get(v)) for v in variants) + ' |')
    return lines


def write_table(results: Dict[str, Any], path: str) -> None:
    from raicl_mm.evaluation.metrics import atomic_write_text
    atomic_write_text(path, markdown_table(results))
    os.chmod(path, 0o644)
