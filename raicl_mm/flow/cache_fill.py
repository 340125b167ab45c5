"""Filling the flow cache for many clips at once: :func:`extract_all`.

Each clip's positions are chosen here, in the calling process (by the
cache's positions function, which may read the cache itself, e.g. a
spotter's motion); clips read whole from disk need no work; the others go
to a pool of worker processes (one OpenCV thread each), each filling one
clip under its lock (:meth:`FlowCache.build_status
<raicl_mm.flow.cache.FlowCache.build_status>`). ``method='tvl1_torch'``
goes to the batched solver instead (:mod:`raicl_mm.flow.batched`). Both
fills return the same summary (:func:`~raicl_mm.flow.cache_io.summarise`).

This module uses the cache only through the object it is handed, and
imports nothing of :mod:`raicl_mm.flow.cache` (which re-exports
:func:`extract_all`).
"""
from __future__ import annotations

import copy
import multiprocessing
import os
import sys
import time
from typing import Dict, Iterable, Optional

from .cache_io import FlowCacheError, summarise
from .cache_io import one_line as _one_line
from .tvl1 import set_worker_threads


def _worker_init() -> None:
    # One OpenCV thread per worker process: the pool already fills the cores.
    set_worker_threads(1)


def _extract_one(args) -> Dict:
    cache, record, positions = args
    try:
        _, computed, reused = cache.build_status(record, positions)
        return dict(id=record.sample_id, built=computed > 0,
                    pairs_computed=computed, pairs_reused=reused,
                    bytes=cache.bytes_of(record, positions))
    except FlowCacheError as exc:
        return dict(id=record.sample_id, cache_error=str(exc))
    except Exception as exc:  # noqa: BLE001 - reported, the others go on
        return dict(id=record.sample_id, error=_one_line(exc))


def extract_all(records: Iterable, cache,
                workers: Optional[int] = None,
                progress: bool = True) -> Dict:
    """Fill the cache with every record's instance set, in parallel.

    Only the pairs not on disk are computed (whatever sampling wrote them).

    Args:
        records: ClipRecords.
        cache: The :class:`~raicl_mm.flow.cache.FlowCache` to fill; its
            positions function chooses each clip's positions.
        workers: Processes; None = all cores, 1 = in this process.
            Ignored for ``flow_cfg.method == 'tvl1_torch'``: that goes to
            :func:`raicl_mm.flow.batched.extract_all_torch` (one process,
            many clips' pairs per batch, ``flow_cfg.device``).
        progress: Show a progress bar with ETA on stderr
            (``mmengine.utils.ProgressBar``).

    Returns:
        ``{'built': clips with a pair computed, 'reused': clips read whole,
        'pairs_computed': n, 'pairs_reused': n, 'failed': [{'id',
        'error'}], 'seconds': float, 'pairs_per_s': float (pairs computed
        per second), 'bytes': size of these clips' pair files}``.

    Raises:
        FlowCacheError: The cache cannot be written (one line naming the
            folder); pairs written before stay.
    """
    if cache.flow_cfg.method == 'tvl1_torch':
        from .batched import extract_all_torch
        return extract_all_torch(records, cache,
                                 device=cache.flow_cfg.device,
                                 progress=progress)
    records = list(records)
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f'workers must be >= 1, got {workers}')
    bar = None
    if progress and records:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(len(records), file=sys.stderr)
    results, tasks = [], []
    start = time.perf_counter()
    for rec in records:
        # Positions here, not in the workers: the positions function (and a
        # spotter's motion it may read) stays in this process. Clips read
        # whole need no worker (and a run with everything cached starts no
        # pool).
        try:
            positions = cache.positions(rec)
            got, _, reused = cache.fill(rec, positions, compute=False)
        except Exception as exc:  # noqa: BLE001 - the clip fails, others go on
            results.append(dict(id=rec.sample_id, error=_one_line(exc)))
            if bar is not None:
                bar.update()
            continue
        if all(v is not None for v in got.values()):
            results.append(dict(id=rec.sample_id, built=False,
                                pairs_computed=0, pairs_reused=reused,
                                bytes=cache.bytes_of(rec, positions)))
            if bar is not None:
                bar.update()
        else:
            tasks.append((cache, rec, positions))
    workers = min(workers, max(len(tasks), 1))
    if workers == 1:
        for task in tasks:
            results.append(_extract_one(task))
            if bar is not None:
                bar.update()
            if 'cache_error' in results[-1]:
                break
    else:
        # Small chunks: clips differ a lot in cost, and the bar stays live.
        chunksize = max(1, min(8, len(tasks) // (workers * 8)))
        # Not 'fork': a child forked after OpenCV's (or torch's) thread pool
        # has run in the parent can deadlock in its first parallel call (seen
        # here with cv2 5.0). The forkserver imports the modules below once
        # and forks clean workers from it.
        ctx = multiprocessing.get_context('forkserver')
        # Preloaded: this module and those of the cache and the records the
        # tasks carry, so that no worker imports them again (a script's own
        # classes excepted: the workers import a script only if they must).
        preload = [__name__, type(cache).__module__] + [
            type(rec).__module__ for _, rec, _ in tasks]
        ctx.set_forkserver_preload([m for m in dict.fromkeys(preload)
                                    if m != '__main__'])
        # The workers get each clip's positions with its task, and the cache
        # without its positions function (which may hold a spotter reading
        # this process's cache, or not pickle at all).
        shipped = copy.copy(cache)
        shipped.positions_fn = None
        tasks = [(shipped, rec, positions) for _, rec, positions in tasks]
        with ctx.Pool(workers, initializer=_worker_init) as pool:
            for res in pool.imap_unordered(_extract_one, tasks, chunksize):
                results.append(res)
                if bar is not None:
                    bar.update()
                if 'cache_error' in res:
                    break  # leaving the block terminates the others
    seconds = time.perf_counter() - start
    if bar is not None:
        bar.file.write('\n')
    for res in results:
        if 'cache_error' in res:
            raise FlowCacheError(res['cache_error'])
    return summarise(results, seconds)
