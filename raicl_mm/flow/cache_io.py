"""What the flow cache and the batched extractor share: the errors, the lock
on a clip's folder, and the summary of a fill.

:mod:`raicl_mm.flow.cache` (the cache), :mod:`raicl_mm.flow.cache_pairs`
(one pair file), :mod:`raicl_mm.flow.cache_fill` (the process-pool fill) and
:mod:`raicl_mm.flow.batched` (the batched PyTorch fill, which the pool fill
calls for ``method='tvl1_torch'``) import this module; it imports none of
them, so the fills depend on each other in one direction only.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Dict, List, Optional


class FlowCacheError(RuntimeError):
    """The cache folder cannot be written (read-only, full, not a folder).

    Not a property of a clip: filling stops at the first one, with one line
    naming the folder. Pairs already written stay valid.
    """


class ClipLock:
    """An advisory ``flock`` on a clip's cache folder.

    Held while the clip's missing pairs are computed and written, so that
    two processes filling one cache compute each pair once. Locking the
    folder itself leaves no lock file behind.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._fd: Optional[int] = None

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock; False when ``blocking=False`` and it is held."""
        fd = os.open(self.folder, os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        """Let the next process in (closing the descriptor drops the lock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> 'ClipLock':
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def one_line(exc: BaseException) -> str:
    """``Type: message`` of an exception, on one line."""
    text = ' '.join(str(exc).split())
    return f'{type(exc).__name__}: {text}'



def summarise(results: List[Dict], seconds: float) -> Dict:
    """The summary of :func:`~raicl_mm.flow.cache_fill.extract_all` from
    per-clip results."""
    ok = [r for r in results if 'error' not in r]
    pairs = sum(r['pairs_computed'] for r in ok)
    return dict(
        built=sum(1 for r in ok if r['built']),
        reused=sum(1 for r in ok if not r['built']),
        pairs_computed=int(pairs),
        pairs_reused=int(sum(r['pairs_reused'] for r in ok)),
        failed=sorted(({'id': r['id'], 'error': r['error']}
                       for r in results if 'error' in r),
                      key=lambda d: d['id']),
        seconds=round(seconds, 3),
        pairs_per_s=round(pairs / seconds, 2) if seconds > 0 else 0.0,
        bytes=int(sum(r['bytes'] for r in ok)))
