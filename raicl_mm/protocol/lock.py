"""One runner per LOSO work dir (and per fold): an advisory ``fcntl`` lock.

Two ``tools/loso.py`` on one work dir would train every fold twice at once
and overwrite each other's checkpoints. The runner therefore holds an
exclusive ``flock`` on ``WORK_DIR/loso.lock`` for its whole life and writes
who it is (pid, host, start time) into the file; a second runner reads that
and stops with one line. ``flock`` is released by the kernel when the
holder dies, even by SIGKILL, so a lock is never left stale. The lock file
descriptor is also handed to the fold guards (:mod:`.guard`): while any
process of a dead runner's folds is still alive, the work dir stays locked,
so a restart can never run beside an orphan that is still writing.

``filelock``/``mmengine`` offer no lock that reports its holder, hence the
few lines here.
"""
from __future__ import annotations

import datetime
import fcntl
import json
import os
import os.path as osp
import socket
import time
from typing import Optional

LOCK_FILE = 'loso.lock'
FOLD_LOCK_FILE = 'fold.lock'


class LockedError(RuntimeError):
    """The work dir (or fold) is in use; ``str`` names the holder."""


def _holder(path: str):
    """``(description, ending)``: who holds the lock; ``ending`` when its
    recorded process has exited on this host (its fold guards still hold
    the inherited descriptor)."""
    try:
        with open(path, encoding='utf-8') as f:
            info = json.loads(f.read(4096) or '{}')
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or 'pid' not in info:
        return 'another process (no holder recorded)', False
    alive = ''
    if info.get('host') == socket.gethostname():
        try:
            os.kill(int(info['pid']), 0)
        except (OSError, ValueError, TypeError):
            alive = ' (exited; its fold processes are still ending)'
    return (f"pid {info.get('pid')} on host {info.get('host')} since "
            f"{info.get('started')}"
            + (f" ({info['what']})" if info.get('what') else '') + alive,
            bool(alive))


class WorkDirLock:
    """Exclusive advisory lock on ``path`` that records its holder.

    Args:
        path: The lock file (created if missing).
        what: A short description of the holder (``tools/loso.py``).
        wait_s: How long to wait for a holder that is ending (its runner
            exited, some fold process not yet); a live holder is never
            waited for.

    Raises:
        LockedError: On :meth:`acquire` when another process holds it.
    """

    def __init__(self, path: str, what: str = '', wait_s: float = 10.0):
        self.path = path
        self.what = what
        self.wait_s = wait_s
        self.fd: Optional[int] = None

    def acquire(self) -> 'WorkDirLock':
        os.makedirs(osp.dirname(osp.abspath(self.path)), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder, ending = _holder(self.path)
                if ending and time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                os.close(fd)
                raise LockedError(
                    f'{self.path} is held by {holder}; wait for it to '
                    f'finish or stop it') from None
        info = dict(pid=os.getpid(), host=socket.gethostname(),
                    started=datetime.datetime.now().isoformat(
                        timespec='seconds'), what=self.what)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            # The holder record stays: a reader only trusts it under a lock.
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> 'WorkDirLock':
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def work_dir_lock(work_dir: str, what: str = 'tools/loso.py') -> WorkDirLock:
    """The lock of a whole LOSO work dir (not yet acquired)."""
    return WorkDirLock(osp.join(work_dir, LOCK_FILE), what)


def fold_lock(fold_dir: str, what: str = '') -> WorkDirLock:
    """The lock of one fold folder (a Slurm array task takes only this)."""
    return WorkDirLock(osp.join(fold_dir, FOLD_LOCK_FILE), what)
