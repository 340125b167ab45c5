"""The ablation runner: methods x seeds on k subject-wise folds, resumable.

One *run* is a method (a config plus ``--cfg-options``) and a seed, trained
and scored on ``k`` folds by subject: the subjects are split once into ``k``
groups (a fixed, seeded split shared by every method and seed, so that the
methods are compared on the same folds); each group is scored by a model
trained on all the other subjects, with ``tools/train.py CONFIG --fold
KEY1,KEY2,...``. Predictions are pooled over the folds (every clip is scored
once) into UF1, UAR and accuracy.

A run's record also holds, for every loss term, its mean over the first and
over the last epoch (read from mmengine's ``vis_data/scalars.json``), the
MRD assignment statistics, and the attention measurements of
:mod:`raicl_mm.protocol.attention` on the ground truth. Records are written
to one JSON file after every run; a run whose record is there (same method,
seed, config, options and folds) is skipped, and a fold whose
``predictions.json`` exists is not trained again.

The report (:func:`markdown_table`) gives mean +- std over seeds and a paired
bootstrap 95 % interval of the UF1 difference between a reference method and
each other (clips resampled with replacement, the same resample for both
methods and every seed; the UF1 of each method is its mean over the seeds).
"""
from __future__ import annotations

import hashlib
import json
import os
import os.path as osp
import platform
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

# AblationError: bad input to the runner (names the file, key or option).
from .configs import ConfigFileError as AblationError
from .ablation_stats import (RULE_MIN_SIGN_FRACTION,  # noqa: F401
                             TEACHER_GAP_FLAG, markdown_table,
                             paired_bootstrap, paired_seed_stats, scores,
                             seed_table, variants_table, write_table)
from .configs import load_cfg as _load_cfg

RESULTS_VERSION = 1


@dataclass
class Method:
    """One row of the ablation: a name, a config and its overrides."""

    name: str
    config: str
    cfg_options: List[str] = field(default_factory=list)


#: Table 3's rows on the benchmark, plus the label-shuffled control.
DEFAULT_METHODS = [
    Method('M1', 'configs/benchmark/m1_apexstar_cls.py'),
    Method('M2', 'configs/benchmark/m2_mir_cls.py'),
    Method('M4', 'configs/benchmark/m4_mir_mrd.py'),
    Method('M5', 'configs/benchmark/m5_mir_irc.py'),
    Method('M6', 'configs/benchmark/m6_ours.py'),
    Method('shuffled', 'configs/benchmark/control_shuffled.py'),
]

#: Added to the seed for a method's second initial-weight draw (the noise
#: floor row ``M2-reinit``: ``model.init_seed={other_seed}``).
REINIT_OFFSET = 1000


def _evidence_rows(root: str) -> List[Method]:
    """The evidence grid's rows on one benchmark (docs/benchmark.md, v3):
    Table 3's methods, the label-shuffled control, the IRC readings on M6,
    and M2 under a second initial-weight draw (the noise floor)."""
    return [
        Method('M1', f'{root}/m1_apexstar_cls.py'),
        Method('M2', f'{root}/m2_mir_cls.py'),
        Method('M4', f'{root}/m4_mir_mrd.py'),
        Method('M5', f'{root}/m5_mir_irc.py'),
        Method('M6', f'{root}/m6_ours.py'),
        Method('shuffled', f'{root}/control_shuffled.py'),
        # IRC readings: the FC detached inside the CAM (Guo et al. 2019's
        # code) and a shape-only (z-scored) consistency; M6 itself is raw.
        Method('M6-fcdetach', f'{root}/m6_ours.py',
               ['model.cam_head.fc_grad=False']),
        Method('M6-zscore', f'{root}/m6_ours.py',
               ['model.cam_head.normalize=zscore']),
        Method('M2-reinit', f'{root}/m2_mir_cls.py',
               ['model.init_seed={other_seed}']),
    ]


#: Named grids for ``tools/ablation.py --grid``: ``v3`` on benchmark v3 (its
#: configs carry the CPU schedule), ``v2`` the same rows on benchmark v2 (give
#: the schedule with --cfg-options, docs/benchmark.md), ``v2-history`` the
#: rows of the earlier v2 tables.
GRIDS: Dict[str, List[Method]] = {
    'v3': _evidence_rows('configs/benchmark_v3'),
    'v2': _evidence_rows('configs/benchmark'),
    'v2-history': DEFAULT_METHODS,
}


def seed_options(options: Sequence[str], seed: int) -> List[str]:
    """``--cfg-options`` of one run: ``{seed}`` and ``{other_seed}`` (the
    seed + :data:`REINIT_OFFSET`) replaced by their values."""
    return [o.replace('{seed}', str(int(seed))).replace(
        '{other_seed}', str(int(seed) + REINIT_OFFSET)) for o in options]




# ----------------------------------------------------------------- folds
def _config_dataset(config: str, cfg_options: Sequence[str] = ()) -> Dict:
    return _load_cfg(config, cfg_options)['train_dataloader']['dataset']


def config_subjects(config: str, cfg_options: Sequence[str] = ()) -> List[str]:
    """The fold keys (subjects) of a config's data, preparing synthetic data."""
    from raicl_mm.datasets.folds import list_folds
    from raicl_mm.datasets.sources import build_records
    ds = _config_dataset(config, cfg_options)
    if ds.get('synthetic'):
        from raicl_mm.synthetic.generator import generate
        from raicl_mm.synthetic.presets import build_config
        spec = dict(ds['synthetic'])
        generate(spec['out'], build_config(spec))
    report = build_records(ds['protocol'], dict(ds['data_roots']),
                           dict(ds['ann_files']),
                           exclude_file=ds.get('exclude_file'))
    return list_folds(report.records)


def subject_folds(subjects: Sequence[str], k: int, seed: int = 0
                  ) -> List[List[str]]:
    """Split subjects into ``k`` groups: a seeded permutation dealt round robin.

    Raises:
        AblationError: ``k`` outside ``[2, number of subjects]``.
    """
    subjects = sorted(subjects)
    if not 2 <= int(k) <= len(subjects):
        raise AblationError(f'--folds {k}: needs 2 <= k <= {len(subjects)} '
                            'subjects')
    order = np.random.default_rng(seed).permutation(len(subjects))
    groups: List[List[str]] = [[] for _ in range(int(k))]
    for i, j in enumerate(order):
        groups[i % int(k)].append(subjects[j])
    return [sorted(g) for g in groups]


# ------------------------------------------------------------ log reading
def _scalars_files(work_dir: str) -> List[str]:
    found = []
    for root, _, files in os.walk(work_dir):
        if 'scalars.json' in files and osp.basename(root) == 'vis_data':
            found.append(osp.join(root, 'scalars.json'))
    return sorted(found)


def epoch_loss_means(work_dir: str) -> Dict[str, Dict[str, float]]:
    """Mean of every logged training scalar over the first and last epoch.

    Reads the newest ``vis_data/scalars.json`` under ``work_dir`` (one JSON
    object a line, as mmengine's LocalVisBackend writes it); lines that are
    not training iterations (no ``epoch`` key) are ignored. A line that is
    not JSON is an error naming the file and line.

    Returns:
        ``{term: {'first_epoch': mean, 'last_epoch': mean}}`` for every key
        that starts with ``loss``, ``mrd_`` (the MRD assignment stats) or
        ``grad_`` (the recognizer's ``grad_probe_interval``: each term's
        gradient norm at the backbone).
    """
    files = _scalars_files(work_dir)
    if not files:
        return {}
    path = max(files, key=osp.getmtime)
    rows = []
    with open(path, encoding='utf-8') as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise AblationError(f'{path}: line {n} is not JSON') from None
            if isinstance(row, dict) and isinstance(row.get('epoch'), int):
                rows.append(row)
    if not rows:
        return {}
    epochs = sorted({r['epoch'] for r in rows})
    out: Dict[str, Dict[str, float]] = {}
    keys = sorted({k for r in rows for k in r
                   if k.startswith(('loss', 'mrd_', 'grad_', 'cam_'))})
    for key in keys:
        firsts = [r[key] for r in rows if r['epoch'] == epochs[0] and key in r]
        lasts = [r[key] for r in rows if r['epoch'] == epochs[-1] and key in r]
        if firsts and lasts:
            out[key] = {'first_epoch': float(np.mean(firsts)),
                        'last_epoch': float(np.mean(lasts))}
    return out


def read_predictions(path: str, classes: Optional[Sequence[str]] = None
                     ) -> Tuple[List[str], List[Dict[str, Any]]]:
    """``(classes, predictions)`` of a fold's ``predictions.json``, checked."""
    try:
        with open(path, encoding='utf-8') as fh:
            data = json.load(fh)
    except json.JSONDecodeError as err:
        raise AblationError(f'{path}: not valid JSON ({err})') from None
    if not isinstance(data, dict) or not isinstance(data.get('predictions'), list) \
            or not isinstance(data.get('classes'), list):
        raise AblationError(f'{path}: expected "classes" and "predictions" lists')
    if classes is not None and list(data['classes']) != list(classes):
        raise AblationError(f'{path}: classes {data["classes"]} differ from '
                            f'{list(classes)}')
    n = len(data['classes'])
    for i, p in enumerate(data['predictions']):
        if not isinstance(p, dict) or not isinstance(p.get('sample_id'), str):
            raise AblationError(f'{path}: prediction #{i} has no sample_id')
        for key in ('gt', 'pred'):
            v = p.get(key)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < n:
                raise AblationError(f'{path}: prediction #{i} '
                                    f'({p["sample_id"]}) has {key}={v!r}')
    return list(data['classes']), data['predictions']


# ---------------------------------------------------------------- results
def load_results(path: str) -> Dict[str, Any]:
    """The results file, or an empty one; a malformed file is an error."""
    if not osp.isfile(path):
        return {'version': RESULTS_VERSION, 'runs': []}
    try:
        with open(path, encoding='utf-8') as fh:
            data = json.load(fh)
    except json.JSONDecodeError as err:
        raise AblationError(f'{path}: not valid JSON ({err})') from None
    if not isinstance(data, dict) or not isinstance(data.get('runs'), list):
        raise AblationError(f'{path}: expected an object with a "runs" list')
    seen: Dict[Tuple[str, int], int] = {}
    for i, r in enumerate(data['runs']):
        if not isinstance(r, dict) or not {'method', 'seed', 'key'} <= set(r):
            raise AblationError(f'{path}: run #{i} lacks method/seed/key')
        if not isinstance(r['method'], str) or isinstance(r['seed'], bool) \
                or not isinstance(r['seed'], int):
            raise AblationError(f'{path}: run #{i} has method={r["method"]!r}'
                                f' seed={r["seed"]!r}')
        ident = (r['method'], r['seed'])
        if ident in seen:
            raise AblationError(f'{path}: runs #{seen[ident]} and #{i} are both '
                                f'{r["method"]} seed {r["seed"]}: a duplicated '
                                'record would count twice')
        seen[ident] = i
    return data


def _write_json(path: str, data: Any) -> None:
    from raicl_mm.evaluation.metrics import atomic_write_json
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    atomic_write_json(path, data)
    os.chmod(path, 0o644)  # the temp file's 0600 would keep the group out


def run_key(method: Method, seed: int, folds: Sequence[Sequence[str]],
            extra_options: Sequence[str]) -> str:
    """Identity of a run: method, config, options, seed and the folds."""
    payload = json.dumps([method.name, method.config, list(method.cfg_options),
                          list(extra_options), int(seed),
                          [list(f) for f in folds]], sort_keys=True)
    return hashlib.sha1(payload.encode()).hexdigest()[:16]


def device_name() -> str:
    import torch
    if torch.cuda.is_available():
        return f'cuda:{torch.cuda.get_device_name(0)}'
    return (f'cpu:{platform.processor() or platform.machine()} '
            f'x{torch.get_num_threads()} threads')


def _train_env() -> Dict[str, str]:
    """The training subprocess's environment: one intra-op thread unless set.

    Measured on the shared 2-core machine: with torch's default 2 OpenMP
    threads and a load of ~10, an M1 step took 5-13 s of wall time against
    0.08 CPU-s in one thread (spinning OpenMP workers lose their slices).
    """
    env = dict(os.environ)
    for name in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
        env.setdefault(name, '1')
    return env


_TRAIN_TOOL = None


def _train_tool():
    """``tools/train.py`` imported once (for in-process folds)."""
    global _TRAIN_TOOL
    if _TRAIN_TOOL is None:
        import importlib.util
        path = osp.join('tools', 'train.py')
        if not osp.isfile(path):
            raise AblationError(f'{path} not found: run from the repository '
                                'root')
        spec = importlib.util.spec_from_file_location('_raicl_train_tool', path)
        _TRAIN_TOOL = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_TRAIN_TOOL)
    return _TRAIN_TOOL


def _train_fold(python: Optional[str], method: Method, seed: int,
                fold: Sequence[str], work_dir: str,
                extra_options: Sequence[str], log_path: str) -> None:
    """``tools/train.py CONFIG --fold K1,K2,... --work-dir DIR``.

    In this process when ``python`` is None (saves the ~35 s start-up of a
    fresh interpreter per fold, measured on the shared 2-core machine), else
    a subprocess of ``python``. Output goes to ``log_path``.
    """
    argv = [method.config, '--fold', ','.join(fold), '--work-dir', work_dir,
            # The configs set `randomness` (mmaction2 keeps it over --seed).
            '--cfg-options', f'randomness.seed={int(seed)}',
            *seed_options(method.cfg_options, seed), *extra_options]
    os.makedirs(work_dir, exist_ok=True)
    with open(log_path, 'a', encoding='utf-8') as log:
        log.write(' '.join(['tools/train.py', *argv]) + '\n')
        log.flush()
        if python is None:
            import contextlib
            import traceback
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                try:
                    rc = _train_tool().main(argv)
                except SystemExit as err:
                    rc = err.code
                except Exception:  # noqa: BLE001 - reported with the log
                    traceback.print_exc(file=log)
                    rc = 1
        else:
            rc = subprocess.run([python, 'tools/train.py', *argv], stdout=log,
                                stderr=subprocess.STDOUT,
                                env=_train_env()).returncode
    if rc not in (0, None):
        raise RuntimeError(f'{method.name} seed {seed} fold {",".join(fold)}: '
                           f'tools/train.py exited {rc}; see {log_path}')


def _fold_worker(args) -> str:
    """One fold-run in a pool worker (in-process ``tools/train.py``: the
    interpreter and the imports are paid once per worker, not per fold).
    Returns ``'trained'``, ``'skipped'`` (past the deadline) or the error."""
    method, seed, i, fold, run_dir, extra_options, deadline = args
    if deadline is not None and time.time() > deadline:
        return 'skipped'
    t0 = time.perf_counter()
    import torch
    torch.set_num_threads(1)  # see _train_env: one thread per fold-run
    try:
        _train_fold(None, method, seed, fold, osp.join(run_dir, f'fold_{i}'),
                    extra_options, osp.join(run_dir, f'train_fold_{i}.log'))
    except RuntimeError as err:
        return str(err)
    return f'trained in {time.perf_counter() - t0:.0f} s'


def _train_parallel(tasks: List[Tuple[Method, int, int, List[str], str]],
                    extra_options: Sequence[str], jobs: int,
                    deadline: Optional[float],
                    log: Callable[[str], None]) -> List[str]:
    """Train fold-runs in ``jobs`` worker processes (several folds sharing
    one GPU); a task not started before ``deadline`` is skipped.

    Returns the failures, one line each (the grid goes on without them).
    """
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    failures: List[str] = []
    # spawn: a fresh interpreter per worker (no forked CUDA context).
    with ProcessPoolExecutor(max_workers=int(jobs),
                             mp_context=mp.get_context('spawn')) as pool:
        futures = {pool.submit(_fold_worker, (m, s, i, f, d, list(extra_options),
                                              deadline)): (m.name, s, i)
                   for m, s, i, f, d in tasks}
        for fut in as_completed(futures):
            name, seed, i = futures[fut]
            try:
                status = fut.result()
            except Exception as exc:  # noqa: BLE001 - a worker died
                status = f'{name} seed {seed} fold {i}: worker failed ({exc!r})'
            if status.startswith(('trained', 'skipped')):
                log(f'{name} seed {seed}: fold {i + 1} {status}')
            else:
                failures.append(status)
    return failures


def run_ablation(methods: Sequence[Method], seeds: Sequence[int], k: int,
                 results_path: str, work_root: str,
                 extra_options: Sequence[str] = (), fold_seed: int = 0,
                 attention: bool = True, python: Optional[str] = None,
                 log: Callable[[str], None] = print, jobs: int = 1,
                 budget_s: Optional[float] = None) -> Dict[str, Any]:
    """Run (or resume) the grid seeds x methods and write the results file.

    Seeds are the outer loop, so that every method has its first seed before
    any has its second. After each run the JSON file and its Markdown table
    (``results_path`` with ``.md``) are rewritten.

    Args:
        methods: The rows.
        seeds: Seeds (``randomness.seed`` of each run).
        k: Folds by subject.
        results_path: The JSON file of records.
        work_root: Folder of the runs' work dirs (``METHOD/seed_S/fold_I``).
        extra_options: ``--cfg-options`` added to every run (e.g. epochs).
        fold_seed: Seed of the subject split (the same for every run).
        attention: Measure attention on the ground truth after each fold.
        python: Interpreter for ``tools/train.py`` in a subprocess per fold;
            None (default) trains in this process.
        log: Progress printer.
        jobs: Fold-runs trained at once, in that many worker processes
            (spawned interpreters that train in-process): several folds
            share one GPU. The records are then assembled in the usual order.
        budget_s: With ``jobs``: no fold-run starts after this many seconds;
            a run with a fold left untrained is not recorded (logged).

    Returns:
        The results dict (also written to ``results_path``).
    """
    if python is None:
        import torch
        if 'OMP_NUM_THREADS' not in os.environ:
            torch.set_num_threads(1)  # see _train_env
    results = load_results(results_path)
    done = {r['key'] for r in results['runs']}
    subject_cache: Dict[str, List[List[str]]] = {}

    def folds_of(method: Method) -> List[List[str]]:
        if method.config not in subject_cache:
            subjects = config_subjects(method.config,
                                       [*method.cfg_options, *extra_options])
            subject_cache[method.config] = subject_folds(subjects, k, fold_seed)
        return subject_cache[method.config]

    failures: List[str] = []
    if int(jobs) > 1:
        deadline = None if budget_s is None else time.time() + float(budget_s)
        tasks = []
        # Row-major: a budget cut leaves whole rows, with all their seeds.
        for method in methods:
            for seed in seeds:
                folds = folds_of(method)
                if run_key(method, seed, folds, extra_options) in done:
                    continue
                run_dir = osp.join(work_root, method.name, f'seed_{seed}')
                tasks += [(method, seed, i, fold, run_dir)
                          for i, fold in enumerate(folds) if not osp.isfile(
                              osp.join(run_dir, f'fold_{i}', 'predictions.json'))]
        failures = _train_parallel(tasks, extra_options, jobs, deadline, log)
        for line in failures:
            log(f'failed: {line}')
    for seed in seeds:
        for method in methods:
            folds = folds_of(method)
            key = run_key(method, seed, folds, extra_options)
            if key in done:
                log(f'{method.name} seed {seed}: done, skipped')
                continue
            run_dir = osp.join(work_root, method.name, f'seed_{seed}')
            clash = [r for r in results['runs'] if r['method'] == method.name
                     and r['seed'] == int(seed) and r['key'] != key]
            if clash:
                raise AblationError(
                    f'{results_path}: holds {method.name} seed {seed} run with '
                    'other settings (config, options or folds); a table mixes '
                    'no two settings: give another --out')
            if int(jobs) > 1 and not all(osp.isfile(osp.join(
                    run_dir, f'fold_{i}', 'predictions.json'))
                    for i in range(len(folds))):
                log(f'{method.name} seed {seed}: not recorded (a fold was '
                    'not trained: failed or out of budget)')
                continue
            start = time.perf_counter()
            record = _run(python, method, seed, folds, run_dir, extra_options,
                          attention, log)
            record.update(key=key, wall_s=round(time.perf_counter() - start, 1))
            results['runs'] = [r for r in results['runs'] if r['key'] != key]
            results['runs'].append(record)
            results.update(version=RESULTS_VERSION, k_folds=int(k),
                           fold_seed=int(fold_seed),
                           extra_options=list(extra_options))
            _write_json(results_path, results)
            write_table(results, osp.splitext(results_path)[0] + '.md')
            log(f'{method.name} seed {seed}: UF1 {record["uf1"]:.2f} '
                f'UAR {record["uar"]:.2f} ({record["wall_s"]:.0f} s)')
    write_table(results, osp.splitext(results_path)[0] + '.md')
    if failures:
        # The finished runs are recorded; a failed fold is not a finished grid.
        raise RuntimeError(f'{len(failures)} fold-run(s) failed, their runs not '
                           f'recorded (first: {failures[0]}); the finished runs '
                           f'are in {results_path}')
    return results


def _run(python: str, method: Method, seed: int, folds: List[List[str]],
         run_dir: str, extra_options: Sequence[str], attention: bool,
         log: Callable[[str], None]) -> Dict[str, Any]:
    classes: Optional[List[str]] = None
    pooled: List[List[Any]] = []
    teacher: List[Optional[int]] = []
    options = seed_options(method.cfg_options, seed)
    per_fold, losses, att = [], [], []
    train_s = 0.0
    for i, fold in enumerate(folds):
        wd = osp.join(run_dir, f'fold_{i}')
        pred_path = osp.join(wd, 'predictions.json')
        if not osp.isfile(pred_path):
            log(f'{method.name} seed {seed}: fold {i + 1}/{len(folds)} '
                f'({len(fold)} subjects)')
            t0 = time.perf_counter()
            _train_fold(python, method, seed, fold, wd, extra_options,
                        osp.join(run_dir, 'train.log'))
            train_s += time.perf_counter() - t0
            if not osp.isfile(pred_path):
                raise RuntimeError(f'{method.name} seed {seed} fold {i}: '
                                   f'{pred_path} was not written')
        classes, preds = read_predictions(pred_path, classes)
        tested = {p['sample_id'].split('/')[0] + '_' + p['sample_id'].split('/')[1]
                  for p in preds}
        if not tested <= set(fold):
            raise AblationError(f'{pred_path}: predicts subjects '
                                f'{sorted(tested - set(fold))} outside the fold')
        gt = [p['gt'] for p in preds]
        pr = [p['pred'] for p in preds]
        per_fold.append({'fold': i, 'subjects': list(fold), 'n': len(preds),
                         'correct': int(sum(g == q for g, q in zip(gt, pr))),
                         **{k: round(v, 2) for k, v in
                            scores(gt, pr, len(classes)).items()}})
        pooled += [[p['sample_id'], p['gt'], p['pred']] for p in preds]
        teacher += [p.get('target_pred') for p in preds]
        losses.append(epoch_loss_means(wd))
        if attention:
            from .attention import measure_fold
            att.append(measure_fold(method.config, [*options, *extra_options],
                                    fold, wd))
    ids = [p[0] for p in pooled]
    if len(set(ids)) != len(ids):
        raise AblationError(f'{method.name} seed {seed}: a clip is scored in '
                            'two folds')
    s = scores([p[1] for p in pooled], [p[2] for p in pooled], len(classes))
    record = {
        'method': method.name, 'seed': int(seed), 'config': method.config,
        'cfg_options': [*options, *extra_options],
        'uf1': round(s['UF1'], 2), 'uar': round(s['UAR'], 2),
        'accuracy': round(s['accuracy'], 2), 'n': len(pooled),
        'classes': classes, 'folds': per_fold,
        'train_s': round(train_s, 1), 'device': device_name(),
        'losses': _mean_over_folds(losses),
        'predictions': sorted(pooled),
    }
    if teacher and all(isinstance(t, int) for t in teacher):
        # The EMA target branch scored on the same clips: has it learned?
        ts = scores([p[1] for p in pooled], teacher, len(classes))
        record.update(target_uf1=round(ts['UF1'], 2),
                      target_uar=round(ts['UAR'], 2))
    if att:
        from .attention import pool_folds
        record['attention'] = pool_folds(att)
    return record


def _mean_over_folds(per_fold: List[Dict[str, Dict[str, float]]]
                     ) -> Dict[str, Dict[str, float]]:
    keys = sorted({k for d in per_fold for k in d})
    out = {}
    for k in keys:
        vals = [d[k] for d in per_fold if k in d]
        out[k] = {part: round(float(np.mean([v[part] for v in vals])), 5)
                  for part in ('first_epoch', 'last_epoch')}
    return out


def parse_method(text: str) -> Method:
    """``NAME=CONFIG[:opt=v,opt=v]`` -> :class:`Method` (for the tool)."""
    if '=' not in text:
        raise AblationError(f'--method {text!r}: expected NAME=CONFIG'
                            '[::key=value ...]')
    name, rest = text.split('=', 1)
    config, _, opts = rest.partition('::')
    if not name or not osp.isfile(config):
        raise AblationError(f'--method {text!r}: config {config!r} not found')
    return Method(name, config, [o for o in opts.split(' ') if o])
