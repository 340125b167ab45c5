"""A fold's process group dies with its runner, however the runner ends.

``tools/loso.py`` starts every fold as ``python -I guard.py CMD...`` in a
new session (the guard leads its own process group) and keeps the write end
of the guard's stdin pipe. The guard starts ``CMD`` (``tools/train.py`` /
``tools/test.py``) in that group and kills the whole group -- the tool, its
data-loader workers, its flow-extraction pool -- when

* the runner dies, even by SIGKILL: Linux sends the guard SIGTERM
  (``prctl(PR_SET_PDEATHSIG)``), and on any system the guard's stdin pipe
  reaches EOF (a watchdog thread reads it; the runner never writes);
* the runner stops the fold (SIGTERM/SIGINT/SIGHUP to the group).

The exit status of ``CMD`` is the guard's (128 + N for a signal N). The file
is run by path with ``-I`` and imports only the standard library: it starts
in a few tens of milliseconds and never imports torch.
"""
import ctypes
import os
import signal
import subprocess
import sys
import threading

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _kill_group(*_):
    # SIGKILL to the whole group, the guard included: nothing is left to
    # write into the fold folder.
    try:
        os.killpg(os.getpgrp(), signal.SIGKILL)
    finally:
        os._exit(137)


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith('linux'):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):  # no libc: the pipe still works
            pass
    if os.getppid() != parent:  # the runner died before prctl took effect
        _kill_group()


def _watch_stdin() -> None:
    try:
        while os.read(0, 1024):
            pass
    except OSError:
        pass
    _kill_group()


def main(argv) -> int:
    if not argv:
        print('usage: guard.py CMD [ARGS...]', file=sys.stderr)
        return 2
    parent = int(os.environ.pop('RAICL_GUARD_PARENT', os.getppid()))
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _kill_group)
    _die_with_parent(parent)
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    threading.Thread(target=_watch_stdin, daemon=True).start()
    rc = child.wait()
    return rc if rc >= 0 else 128 - rc


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
