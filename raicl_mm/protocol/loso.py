"""A whole leave-one-subject-out protocol, resumable, locked, then pooled.

:func:`run_protocol` is ``tools/loso.py``: it locks the work dir
(:mod:`.lock`), prepares the data once (the synthetic set when asked for,
every clip's flow into the cache), writes or checks the plan (:mod:`.plan`),
brings every fold to ``predictions.json`` with :func:`.fold_runner.run_fold`
(train, resume, or test a final checkpoint; N folds at a time, each in its
own process group that dies with the runner) and makes the pooled report
(:mod:`.report`). :func:`plan_only` and :func:`run_task` are the two halves
``tools/slurm_loso.sh`` uses: the plan in the submitting shell, one fold per
array task.
"""
from __future__ import annotations

import atexit
import os
import os.path as osp
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Dict, List, Optional, Sequence

from . import fold_runner
from .lock import LockedError, fold_lock, work_dir_lock
from .plan import (PlanError, build_plan, plan_differences, prepare_data,
                   read_plan, run_settings, selected_folds, write_plan)


def _say(*lines: str, err: bool = False) -> None:
    print('\n'.join(lines), file=sys.stderr if err else sys.stdout,
          flush=True)


def _user_errors() -> tuple:
    from raicl_mm.engine.cli import user_errors
    from raicl_mm.flow.cache_io import FlowCacheError
    return user_errors() + (PlanError, LockedError, FlowCacheError)


def load_run_config(config: str, cfg_options: Optional[Dict]):
    """Read the config, merge ``--cfg-options`` (last), check it."""
    from raicl_mm.engine.cli import read_config
    from raicl_mm.engine.config import check_config
    cfg = read_config(config)
    if cfg_options:
        cfg.merge_from_dict(dict(cfg_options))
    check_config(cfg)
    return cfg


def _max_epochs(cfg) -> Optional[int]:
    train_cfg = cfg.get('train_cfg') or {}
    return train_cfg.get('max_epochs')


def _plan_under_lock(config: str, cfg, work_dir: str, cfg_options, amp: bool,
                     new_plan: bool) -> Dict:
    """Prepare the data and write (or check against) the plan; the caller
    holds the work-dir lock."""
    from .plan import archive_run
    old = read_plan(work_dir, required=False)
    if old is not None and not new_plan and 'settings' in old:
        # Refuse before hours of flow extraction when the settings alone
        # already differ.
        probe = dict(old, settings=run_settings(config, cfg, cfg_options,
                                                amp))
        diffs = [d for d in plan_differences(old, probe)
                 if not d.startswith(('folds', 'fold_samples'))]
        if diffs:
            raise PlanError(_mismatch(work_dir, diffs))
    report, summary = prepare_data(cfg)
    plan = build_plan(config, cfg, cfg_options, report, summary, amp)
    if not plan['folds']:
        raise PlanError(f'{config}: the protocol gives no folds (no samples)')
    if old is not None:
        diffs = plan_differences(old, plan)
        if diffs and not new_plan:
            raise PlanError(_mismatch(work_dir, diffs))
        if new_plan:
            moved = archive_run(work_dir)
            if moved:
                _say(f'new plan: the previous plan and its folds are moved to '
                     f'{moved}')
        else:
            plan['created'] = old.get('created', plan['created'])
    write_plan(work_dir, plan)
    if old is not None and not new_plan and 'plan_id' not in old:
        _adopt_unstamped_folds(work_dir, plan)
    if plan['failed_samples']:
        from raicl_mm.engine.config import data_settings
        policy = data_settings(cfg).get('on_missing', 'error')
        hint = ('every fold that holds one refuses it (dataset on_missing='
                "'error'); --cfg-options {train,val,test}_dataloader.dataset."
                "on_missing=skip leaves them out, and the report then "
                'refuses the run unless --allow-missing'
                if policy == 'error' else
                'the folds leave them out (on_missing=skip); the report '
                'refuses the run unless --allow-missing')
        _say(f'{len(plan["failed_samples"])} clips of the plan have no flow '
             f'and cannot be scored: '
             + ', '.join(f['sample_id'] for f in plan['failed_samples'])
             + f'; {hint}', err=True)
    return plan


def _adopt_unstamped_folds(work_dir: str, plan: Dict) -> None:
    """A plan written before folds were stamped: its finished folds (same
    settings, checked above) are stamped now, so nothing computed is lost."""
    from .plan import STAMP_FILE, write_fold_stamp
    adopted = []
    for key in plan['folds']:
        fold_dir = osp.join(work_dir, f'fold_{key}')
        if not osp.isfile(osp.join(fold_dir, STAMP_FILE)) and write_fold_stamp(
                fold_dir, plan, key, 'adopted from a plan without stamps'):
            adopted.append(key)
    if adopted:
        _say(f'{len(adopted)} finished folds of the earlier plan (same settings) are '
             f'now stamped as this plan\'s: {", ".join(adopted)}')


def _mismatch(work_dir: str, diffs: List[str]) -> str:
    shown = '; '.join(diffs[:6]) + (f'; +{len(diffs) - 6} more'
                                    if len(diffs) > 6 else '')
    return (f'{osp.join(work_dir, "loso_plan.json")} was made with other '
            f'settings ({shown}); rerun with the plan\'s settings, or pass '
            f'--new-plan to archive its folds and start a new plan')


def _install_stop_handlers() -> None:
    """SIGTERM/SIGINT/SIGHUP and interpreter exit stop every fold group."""
    def handler(signum, _frame):
        n = fold_runner.stop_all()
        _say(f'loso: {signal.Signals(signum).name}: stopped {n} running '
             f'fold(s); rerun the same command to resume', err=True)
        os._exit(128 + signum)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, handler)
    atexit.register(fold_runner.stop_all)


def fold_threads(workers: int) -> int:
    """Intra-op threads of each fold process: the cores this process may use
    (its CPU affinity: ``taskset``, a Slurm or container limit) shared among
    the folds that run at once, and never more than an ``OMP_NUM_THREADS``
    the caller set (OpenMP threads beyond the cores spin-wait and slow every
    fold down)."""
    cores = (len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity')
             else (os.cpu_count() or 1))
    threads = max(1, cores // max(1, int(workers)))
    try:
        cap = int(os.environ.get('OMP_NUM_THREADS', ''))
    except ValueError:
        cap = 0
    return min(threads, cap) if cap > 0 else threads


def _fold_env(threads: int, gpu: Optional[int]) -> Dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    if gpu is not None:
        env['CUDA_VISIBLE_DEVICES'] = str(gpu)
    return env


def _status_line(res: fold_runner.FoldResult) -> str:
    text = f'  fold {res.key}: {res.status}'
    if res.seconds:
        text += f' in {res.seconds:.0f} s'
    if res.message:
        text += f' ({res.message})' if res.ok else f': {res.message}'
    return text


class _Progress:
    """The console line of each finished fold: its UF1 and accuracy, the
    pooled UF1 over the folds finished so far, and an ETA."""

    def __init__(self, work_dir: str, plan: Dict, selected: Sequence[str],
                 workers: int) -> None:
        self.work_dir, self.plan = work_dir, plan
        self.total = len(selected)
        self.workers = max(1, workers)
        self.done = 0
        self.trained_s: List[float] = []
        self.pooled: Dict[str, tuple] = {}   # fold -> (gts, preds)
        self.t0 = time.time()

    def _read(self, key: str):
        import json
        path = osp.join(self.work_dir, f'fold_{key}', fold_runner.PREDICTIONS_FILE)
        try:
            with open(path, encoding='utf-8') as f:
                preds = json.load(f)['predictions']
            return ([int(p['gt']) for p in preds], [int(p['pred']) for p in preds])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def line(self, res: fold_runner.FoldResult) -> str:
        from raicl_mm.evaluation.metrics import confusion_matrix, uf1_uar
        self.done += 1
        text = _status_line(res)
        n_cls = len(self.plan.get('classes') or [])
        got = self._read(res.key) if res.ok and n_cls else None
        if got is not None and got[0]:
            gts, preds = got
            self.pooled[res.key] = got
            fold = uf1_uar(confusion_matrix(gts, preds, n_cls))
            acc = sum(g == p for g, p in zip(gts, preds)) / len(gts)
            all_g = [g for v in self.pooled.values() for g in v[0]]
            all_p = [p for v in self.pooled.values() for p in v[1]]
            pooled = uf1_uar(confusion_matrix(all_g, all_p, n_cls))
            text += (f'; fold UF1 {_pct(fold.get("UF1"))} acc {_pct(acc)}; '
                     f'pooled UF1 {_pct(pooled.get("UF1"))} over {len(self.pooled)} '
                     'folds')
        if res.status in ('finished', 'tested') and res.seconds:
            self.trained_s.append(res.seconds)
        left = self.total - self.done
        text += f' [{self.done}/{self.total}'
        if left and self.trained_s:
            eta = sum(self.trained_s) / len(self.trained_s) * left / self.workers
            text += f', ETA {_duration(eta)}'
        return text + ']'


def _pct(value) -> str:
    return '-' if value is None else f'{100 * value:.2f}'


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f'{seconds} s'
    if seconds < 3600:
        return f'{seconds // 60} min {seconds % 60:02d} s'
    return f'{seconds // 3600} h {seconds % 3600 // 60:02d} min'


def run_protocol(config: str, work_dir: Optional[str] = None,
                 folds: Optional[Sequence[str]] = None, workers: int = 1,
                 gpus: Optional[Sequence[int]] = None, amp: bool = False,
                 cfg_options: Optional[Dict] = None, no_report: bool = False,
                 new_plan: bool = False, allow_missing: bool = False) -> int:
    """``tools/loso.py``: every fold, then the pooled report.

    Returns:
        Exit status: 0 when every selected fold finished and the report was
        made, 1 when a fold failed (the others still ran), 2 for a user
        error (config, locked work dir, other settings, incomplete report).
    """
    if workers < 1:
        _say('error: --workers must be >= 1', err=True)
        return 2
    work_dir = work_dir or osp.join(
        'work_dirs', osp.splitext(osp.basename(config))[0])
    t_start = time.time()
    lock = work_dir_lock(work_dir, 'tools/loso.py')
    try:
        cfg = load_run_config(config, cfg_options)
        os.makedirs(work_dir, exist_ok=True)
        lock.acquire()
        plan = _plan_under_lock(config, cfg, work_dir, cfg_options, amp,
                                new_plan)
        selected = selected_folds(plan, folds)
    except _user_errors() + (ValueError, OSError) as err:
        from raicl_mm.engine.cli import one_line
        _say(f'error: {one_line(err)}', err=True)
        lock.release()
        return 2
    try:
        return _run_folds(config, cfg, work_dir, plan, selected, workers,
                          gpus, amp, cfg_options, no_report,
                          allow_missing or bool(folds), lock, t_start)
    finally:
        fold_runner.stop_all(grace_s=1.0)
        lock.release()


def _run_folds(config, cfg, work_dir, plan, selected, workers, gpus, amp,
               cfg_options, no_report, allow_missing, lock, t_start) -> int:
    if gpus is None:
        try:
            import torch
            gpus = list(range(torch.cuda.device_count()))
        except Exception:  # noqa: BLE001 - no usable torch CUDA: CPU
            gpus = []
    threads = fold_threads(workers)
    _say(f'LOSO: {len(selected)} folds of {len(plan["folds"])}, {workers} at '
         f'a time, {threads} threads each'
         + (f', GPUs {list(gpus)}' if gpus else ', CPU'))
    _install_stop_handlers()
    max_epochs = _max_epochs(cfg)
    results: List[fold_runner.FoldResult] = []
    progress = _Progress(work_dir, plan, selected, workers)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(
            fold_runner.run_fold, key, work_dir, config, max_epochs,
            cfg_options, amp,
            _fold_env(threads, gpus[i % workers % len(gpus)] if gpus
                      else None),
            (lock.fd,), plan) for i, key in enumerate(selected)]
        for fut in as_completed(futures):
            res = fut.result()
            results.append(res)
            _say(progress.line(res))
    failed = [r for r in results if not r.ok]
    timing = dict(total_s=time.time() - t_start,
                  folds={r.key: round(r.seconds, 1) for r in results})
    from raicl_mm.evaluation.metrics import atomic_write_json
    atomic_write_json(osp.join(work_dir, 'loso_timing.json'), timing)
    for r in failed:
        _say(f'fold {r.key} failed: see '
             f'{osp.join(work_dir, "fold_" + r.key, fold_runner.LOG_FILE)}',
             err=True)
    if not no_report and not failed:
        from .report import make_report, report_lines
        try:
            report = make_report(work_dir, allow_missing)
        except (OSError, ValueError) as err:
            _say(f'loso_report: {err}', err=True)
            return 2
        _say(*report_lines(report))
    _say(f'LOSO wall time: {timing["total_s"]:.0f} s')
    return 1 if failed else 0


def plan_only(config: str, work_dir: str, cfg_options: Optional[Dict] = None,
              amp: bool = False, new_plan: bool = False) -> int:
    """Prepare the data and write the plan (``tools/slurm_loso.sh``'s first
    step); prints the number of folds on stdout."""
    try:
        cfg = load_run_config(config, cfg_options)
        os.makedirs(work_dir, exist_ok=True)
        with work_dir_lock(work_dir, 'tools/loso.py --plan-only'):
            plan = _plan_under_lock(config, cfg, work_dir, cfg_options, amp,
                                    new_plan)
    except _user_errors() + (ValueError, OSError) as err:
        from raicl_mm.engine.cli import one_line
        _say(f'error: {one_line(err)}', err=True)
        return 2
    _say(f'LOSO plan: {len(plan["folds"])} folds -> '
         f'{osp.join(work_dir, "loso_plan.json")}', err=True)
    _say(str(len(plan['folds'])))
    return 0


def run_task(config: str, work_dir: str, index: int,
             cfg_options: Optional[Dict] = None, amp: bool = False) -> int:
    """One fold of an existing plan (a Slurm array task): checks the run's
    settings against the plan, locks only the fold, runs it."""
    try:
        plan = read_plan(work_dir)
        cfg = load_run_config(config, cfg_options)
        if not 0 <= index < len(plan['folds']):
            raise PlanError(f'--task {index}: the plan has '
                            f'{len(plan["folds"])} folds')
        if 'settings' in plan:
            probe = dict(plan, settings=run_settings(config, cfg, cfg_options,
                                                     amp))
            diffs = plan_differences(plan, probe)
            if diffs:
                raise PlanError(_mismatch(work_dir, diffs))
        key = plan['folds'][index]
        fold_dir = osp.join(work_dir, f'fold_{key}')
        os.makedirs(fold_dir, exist_ok=True)
        lock = fold_lock(fold_dir, f'fold task {index}').acquire()
    except _user_errors() + (ValueError, OSError) as err:
        from raicl_mm.engine.cli import one_line
        _say(f'error: {one_line(err)}', err=True)
        return 2
    try:
        _install_stop_handlers()
        res = fold_runner.run_fold(key, work_dir, config, _max_epochs(cfg),
                                   cfg_options, amp, dict(os.environ),
                                   (lock.fd,), plan)
    finally:
        lock.release()
    if res.status == 'skipped':
        _say(f'fold {key}: finished before, skipped')
    else:
        _say(_status_line(res).strip())
    if not res.ok:
        _say(f'fold {key} failed: see '
             f'{osp.join(fold_dir, fold_runner.LOG_FILE)}', err=True)
        return 1
    return 0

