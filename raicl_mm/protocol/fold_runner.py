"""Run, resume or finish one LOSO fold as a tool subprocess of its own.

What a fold folder holds decides what is run (:func:`fold_state`):

=======================================  =====================================
``predictions.json``                     finished: skipped
a final checkpoint (``epoch_N.pth`` with  scored from it: ``tools/test.py
N >= max_epochs``), no predictions       CONFIG CKPT --fold KEY --dump
                                         FOLD/predictions.json`` (a fold killed
                                         after its last checkpoint; resuming
                                         would train nothing and score nothing)
an earlier checkpoint                    resumed: ``tools/train.py --resume``
nothing                                  trained: ``tools/train.py --fold KEY``
=======================================  =====================================

A checkpoint without mmengine's ``last_checkpoint`` marker may be partial (a
run killed while saving it), so the newest one that loads is used; it is
read only through :func:`raicl_mm.compat.load_checkpoint_file` (the
allow-list, ``weights_only=True``). A file that is refused there as
untrusted stops the fold with one line naming it; a truncated one is passed
over. Each fold runs under :mod:`.guard` in its own process group, so it
dies with the runner (:func:`stop_all`, SIGKILL included).
"""
from __future__ import annotations

import os
import os.path as osp
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
GUARD = osp.join(osp.dirname(osp.abspath(__file__)), 'guard.py')
PREDICTIONS_FILE = 'predictions.json'
LOG_FILE = 'loso_stdout.log'
_TRAIN_ONLY = ('train_dataloader', 'train_cfg', 'optim_wrapper',
               'param_scheduler', 'val_dataloader', 'val_cfg', 'val_evaluator',
               'auto_scale_lr')
_EPOCH = re.compile(r'epoch_(\d+)\.pth')


@dataclass
class FoldState:
    """What a fold folder asks for.

    Attributes:
        action: ``'finished'``, ``'test'``, ``'resume'``, ``'train'`` or
            ``'refused'``.
        checkpoint: The checkpoint to test or resume from (``'auto'``:
            mmengine's ``last_checkpoint`` marker), else None.
        note: One line for the user (a refused or passed-over file).
    """
    action: str
    checkpoint: Optional[str] = None
    note: str = ''


@dataclass
class FoldResult:
    """How a fold ended: ``status`` is ``finished``, ``skipped``, ``tested``
    or ``failed``; ``message`` one line (why it failed)."""
    key: str
    status: str
    seconds: float = 0.0
    message: str = ''

    @property
    def ok(self) -> bool:
        return self.status != 'failed'


def _epoch(path: str) -> int:
    m = _EPOCH.fullmatch(osp.basename(path))
    return int(m.group(1)) if m else -1


def _epoch_checkpoints(fold_dir: str) -> List[str]:
    """``epoch_N.pth`` files of a fold, newest (highest N) first."""
    found = [(m, osp.join(fold_dir, name)) for name in os.listdir(fold_dir)
             for m in [_EPOCH.fullmatch(name)] if m]
    return [p for _, p in sorted(found, key=lambda t: -int(t[0].group(1)))]


def fold_state(fold_dir: str, max_epochs: Optional[int],
               plan: Optional[Dict] = None) -> FoldState:
    """Decide what a fold folder needs next (see the module's table).

    Args:
        fold_dir: ``WORK_DIR/fold_KEY``.
        max_epochs: ``train_cfg.max_epochs`` of the run; a checkpoint of
            that epoch is final.
        plan: The LOSO plan: predictions count as finished only when their
            stamp says this plan's run wrote them (:func:`.plan.fold_stamp_problem`);
            others are refused, never taken as finished nor overwritten.

    Returns:
        The :class:`FoldState`.
    """
    from raicl_mm.compat import (CheckpointError, UntrustedCheckpointError,
                                 load_checkpoint_file)
    if not osp.isdir(fold_dir):
        return FoldState('train')
    if osp.isfile(osp.join(fold_dir, PREDICTIONS_FILE)):
        if plan is not None:
            from .plan import fold_stamp_problem
            key = osp.basename(osp.normpath(fold_dir))[len('fold_'):]
            problem = fold_stamp_problem(fold_dir, plan, key)
            if problem:
                return FoldState('refused', None, (
                    f'{problem}; move {fold_dir} away (or rerun tools/loso.py with '
                    '--new-plan) to train this fold again'))
        return FoldState('finished')

    def classify(path: str, marker: bool) -> FoldState:
        final = max_epochs is not None and _epoch(path) >= max_epochs
        if final:
            return FoldState('test', path)
        return FoldState('resume', 'auto' if marker else path)

    marker = osp.join(fold_dir, 'last_checkpoint')
    if osp.isfile(marker):
        with open(marker, encoding='utf-8', errors='replace') as f:
            target = f.read(4096).strip()
        # mmengine writes the marker after the checkpoint is complete; a
        # marker naming a file outside this fold is not ours to follow.
        if target and osp.isfile(target) and osp.samefile(
                osp.dirname(osp.abspath(target)), fold_dir):
            return classify(target, marker=True)
    notes = []
    for path in _epoch_checkpoints(fold_dir):
        try:
            load_checkpoint_file(path, map_location='cpu')
        except UntrustedCheckpointError as err:
            return FoldState('refused', path, str(err))
        except CheckpointError as err:  # partial / empty: an older one
            notes.append(f'passed over {osp.basename(path)} ({err})')
            continue
        state = classify(path, marker=False)
        state.note = '; '.join(notes)
        return state
    return FoldState('train', None, '; '.join(notes))


def _cfg_option_args(options: Dict) -> List[str]:
    """``--cfg-options`` back as command-line text (DictAction's syntax)."""
    out = []
    for k, v in (options or {}).items():
        out.append(f'{k}={_option_text(v)}')
    return (['--cfg-options'] + out) if out else []


def _option_text(v) -> str:
    if isinstance(v, (list, tuple)):
        inner = ','.join(_option_text(x) for x in v)
        return f'[{inner}]' if isinstance(v, list) else f'({inner})'
    if isinstance(v, str):
        return repr(v) if any(c in v for c in ',[]()') else v
    return str(v)


def fold_command(state: FoldState, config: str, key: str, fold_dir: str,
                 cfg_options: Optional[Dict] = None,
                 amp: bool = False) -> List[str]:
    """The tool command line for a fold in ``state``."""
    if state.action == 'test':
        cmd = [sys.executable, osp.join(ROOT, 'tools', 'test.py'), config,
               state.checkpoint, '--fold', key, '--work-dir', fold_dir,
               '--dump', osp.join(fold_dir, PREDICTIONS_FILE)]
        # tools/test.py drops the training parts of the config; an option
        # that sets one again would make the Runner refuse a half training
        # set-up. The test loader's own options are kept.
        cfg_options = {k: v for k, v in (cfg_options or {}).items()
                       if not k.split('.')[0] in _TRAIN_ONLY}
    else:
        cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), config,
               '--fold', key, '--work-dir', fold_dir]
        if state.action == 'resume':
            cmd += ['--resume'] + ([] if state.checkpoint == 'auto'
                                   else [state.checkpoint])
        if amp:
            cmd.append('--amp')
    return cmd + _cfg_option_args(cfg_options)


# ---------------------------------------------------------------- processes
_LIVE: Dict[int, subprocess.Popen] = {}
_LIVE_LOCK = threading.Lock()
_STOPPING = threading.Event()


def start_guarded(cmd: Sequence[str], log, env: Dict[str, str],
                  pass_fds: Sequence[int] = ()) -> subprocess.Popen:
    """Start ``cmd`` under :mod:`.guard`, leader of a new process group.

    Args:
        cmd: The command.
        log: File object for stdout and stderr.
        env: Environment of the command.
        pass_fds: Descriptors the guard keeps open for its life (the work
            dir lock: the dir stays locked until the fold's group is gone).
    """
    env = dict(env, RAICL_GUARD_PARENT=str(os.getpid()))
    with _LIVE_LOCK:
        if _STOPPING.is_set():
            raise RuntimeError('the runner is stopping')
        proc = subprocess.Popen([sys.executable, '-I', GUARD, *cmd],
                                stdin=subprocess.PIPE, stdout=log,
                                stderr=subprocess.STDOUT, env=env,
                                start_new_session=True,
                                pass_fds=tuple(pass_fds))
        _LIVE[proc.pid] = proc
    return proc


def _forget(proc: subprocess.Popen) -> None:
    with _LIVE_LOCK:
        _LIVE.pop(proc.pid, None)
    if proc.stdin:
        proc.stdin.close()


def stop_all(grace_s: float = 5.0) -> int:
    """Stop every running fold: SIGTERM to each group, SIGKILL after
    ``grace_s``; no new fold starts afterwards. Returns how many ran."""
    _STOPPING.set()
    with _LIVE_LOCK:
        procs = list(_LIVE.values())
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_s
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return len(procs)


def stopping() -> bool:
    return _STOPPING.is_set()


def _last_error(log_path: str) -> str:
    """The tool's one-line error (``error: ...``), else its last line."""
    try:
        with open(log_path, 'rb') as f:
            f.seek(max(0, osp.getsize(log_path) - 20000))
            lines = [ln.strip() for ln in
                     f.read().decode('utf-8', 'replace').splitlines()
                     if ln.strip()]
    except OSError:
        return ''
    for line in reversed(lines):
        if line.startswith('error:'):
            return line
    return lines[-1][:300] if lines else ''


def run_fold(key: str, work_dir: str, config: str, max_epochs: Optional[int],
             cfg_options: Optional[Dict] = None, amp: bool = False,
             env: Optional[Dict[str, str]] = None,
             pass_fds: Sequence[int] = (),
             plan: Optional[Dict] = None) -> FoldResult:
    """Bring one fold to ``predictions.json`` (train, resume or test).

    Args:
        key: Fold key.
        work_dir: The LOSO work dir (the fold lives in ``fold_KEY``).
        config: Config path.
        max_epochs: ``train_cfg.max_epochs`` of the run.
        cfg_options: ``--cfg-options`` of the run.
        amp: Pass ``--amp`` to training.
        env: Environment of the tool (threads, GPU).
        pass_fds: See :func:`start_guarded`.
        plan: The LOSO plan: the tool is told its identity (it may then
            write into the planned fold) and the predictions are stamped.

    Returns:
        The :class:`FoldResult`.
    """
    fold_dir = osp.join(work_dir, f'fold_{key}')
    os.makedirs(fold_dir, exist_ok=True)
    state = fold_state(fold_dir, max_epochs, plan)
    env = dict(env or os.environ)
    if plan is not None:
        from .plan import PLAN_ENV, plan_id
        env[PLAN_ENV] = plan_id(plan)
    if state.action == 'finished':
        return FoldResult(key, 'skipped')
    if state.action == 'refused':
        # compat's one line names the file, what it needs and the opt-in
        # (RAICL_TRUST_CHECKPOINT reaches the fold's tool too).
        return FoldResult(key, 'failed', 0.0, f'error: {state.note}')
    cmd = fold_command(state, config, key, fold_dir, cfg_options, amp)
    log_path = osp.join(fold_dir, LOG_FILE)
    t0 = time.time()
    with open(log_path, 'ab') as log:
        log.write(f'\n=== {time.strftime("%Y-%m-%d %H:%M:%S")} '
                  f'{state.action}: {" ".join(cmd)}\n'.encode())
        if state.note:
            log.write(f'{state.note}\n'.encode())
        log.flush()
        try:
            proc = start_guarded(cmd, log, env, pass_fds)
        except RuntimeError as err:
            return FoldResult(key, 'failed', 0.0, str(err))
        try:
            rc = proc.wait()
        finally:
            _forget(proc)
    secs = time.time() - t0
    if osp.isfile(osp.join(fold_dir, PREDICTIONS_FILE)) and rc == 0:
        if plan is not None:
            from .plan import write_fold_stamp
            write_fold_stamp(fold_dir, plan, key, f'tools/loso.py ({state.action})')
        return FoldResult(key, 'tested' if state.action == 'test'
                          else 'finished', secs, state.note)
    if stopping():
        return FoldResult(key, 'failed', secs, 'stopped with the runner')
    why = _last_error(log_path)
    if rc == 0:
        why = f'exit 0 but no {PREDICTIONS_FILE}' + (f' ({why})' if why
                                                     else '')
    else:
        why = f'exit {rc}' + (f': {why}' if why else '')
    return FoldResult(key, 'failed', secs, why)
