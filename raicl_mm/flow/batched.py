"""Filling the flow cache with the batched PyTorch TV-L1 (CPU or CUDA).

The missing pairs of many clips are solved as one batch by
:func:`raicl_mm.flow.tvl1_torch.tvl1_batch`; frames are read ahead in threads.
It is the same per-pair cache as :func:`raicl_mm.flow.cache_fill.extract_all`
fills: pairs already on disk (from any sampling) are read, only the others
are solved, and each clip's new pairs are written with
:meth:`FlowCache.store` under the clip's lock.
"""
from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Iterable, List, Tuple

import numpy as np
import torch

from .cache_io import ClipLock, FlowCacheError, one_line as _one_line, summarise
from .tvl1_torch import default_device, tvl1_batch


def _load_clip(cache, record):
    """Positions, pair keys, the pairs on disk and the frames of the missing
    ones (in a loader thread).

    Returns:
        ``(record, status, data, error)`` with status ``'reused'`` (every
        pair on disk), ``'todo'`` (the clip's lock is held; data has the
        frames), ``'busy'`` (another process holds the lock: retried at the
        end, after it has written), ``'error'`` or ``'cache_error'``.
    """
    from .instances import load_clip_frames
    lock = None
    try:
        positions = cache.positions(record)
        keys = cache.pair_keys(record, positions)
        got = cache.read_pairs(record, keys)
        missing = [p for p in sorted(keys) if got[p] is None]
        if missing:
            folder = cache.clip_dir(record)
            cache.mkdir(folder)
            lock = ClipLock(folder)
            # Never wait here while holding other clips' locks (two
            # batched fillers could wait on each other).
            if not lock.acquire(blocking=False):
                return record, 'busy', None, None
            again = cache.read_pairs(record, {p: keys[p] for p in missing})
            missing = [p for p in missing if again[p] is None]
        if not missing:
            if lock is not None:
                lock.release()
            return record, 'reused', dict(positions=positions,
                                          reused=len(keys)), None
        onset, frames = load_clip_frames(record, missing, cache.flow_cfg)
        return record, 'todo', dict(
            positions=positions, keys=keys, missing=missing, onset=onset,
            frames=frames, lock=lock,
            reused=len(keys) - len(missing)), None
    except FlowCacheError as exc:
        if lock is not None:
            lock.release()
        return record, 'cache_error', None, str(exc)
    except Exception as exc:  # noqa: BLE001 - reported, the others go on
        if lock is not None:
            lock.release()
        return record, 'error', None, _one_line(exc)


def extract_all_torch(records: Iterable, cache, device=None,
                      batch_pairs: int = 256, progress: bool = True,
                      loader_threads: int = 2) -> Dict:
    """Fill ``cache`` for every record with the batched TV-L1.

    Frames are read, cropped and resized as
    :func:`~raicl_mm.flow.instances.load_clip_frames` does (in
    ``loader_threads`` threads, ahead of the solver); the missing pairs of
    many clips are solved ``batch_pairs`` at a time; each finished clip gets
    its strain (:func:`~raicl_mm.flow.tvl1.optical_strain`) and its new pairs
    are written with :meth:`FlowCache.store` (atomic, float16).

    Args:
        records: ClipRecords.
        cache: A :class:`~raicl_mm.flow.cache.FlowCache` (its
            ``flow_cfg.method`` should be ``'tvl1_torch'``; the flows are
            TV-L1 whatever it is).
        device: None = ``cache.flow_cfg.device`` or CUDA when available,
            else CPU.
        batch_pairs: Pairs per solver call.
        progress: Progress bar (clips) on stderr.
        loader_threads: Threads reading frames ahead of the solver.

    The solver runs with OpenCV's default parameters (:class:`TVL1Params`),
    which is what the cache key of ``method='tvl1_torch'`` records.

    Returns:
        The same keys as :func:`~raicl_mm.flow.cache_fill.extract_all`:
        ``built``, ``reused``, ``pairs_computed``, ``pairs_reused``, ``failed``
        ([{'id', 'error'}]), ``seconds``, ``pairs_per_s`` (pairs solved per
        second, loading included), ``bytes``.

    Raises:
        FlowCacheError: The cache cannot be written (one line naming the
            folder); the locks taken are released.
    """
    from .tvl1 import optical_strain
    records = list(records)
    if batch_pairs < 1:
        raise ValueError(f'batch_pairs must be >= 1, got {batch_pairs}')
    dev = default_device(device if device is not None
                         else getattr(cache.flow_cfg, 'device', None))
    bar = None
    if progress and records:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(len(records), file=sys.stderr)
    results: List[Dict] = []
    busy = []
    solved = 0
    # Pending pairs: (clip slot, pair index, onset, frame); clips in flight.
    pend_ref: List[np.ndarray] = []
    pend_tgt: List[np.ndarray] = []
    pend_dst: List[Tuple[int, int]] = []
    clips: Dict[int, Dict] = {}

    def tick():
        if bar is not None:
            bar.update()

    def finish(slot: int) -> None:
        c = clips.pop(slot)
        rec = c['record']
        try:
            flows = np.stack([np.dstack([f, optical_strain(f[..., 0],
                                                           f[..., 1])])
                              for f in c['flows']]).astype(np.float32)
            cache.store(rec, flows, c['missing'], c['keys'])
            results.append(dict(id=rec.sample_id, built=True,
                                pairs_computed=len(c['missing']),
                                pairs_reused=c['reused'],
                                bytes=cache.bytes_of(rec, c['positions'])))
        except FlowCacheError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported, the others go on
            results.append(dict(id=rec.sample_id, error=_one_line(exc)))
        finally:
            c['lock'].release()
        tick()

    def run_batch(n: int) -> None:
        nonlocal solved
        ref = torch.from_numpy(np.stack(pend_ref[:n]))
        tgt = torch.from_numpy(np.stack(pend_tgt[:n]))
        flow = tvl1_batch(ref, tgt, device=dev).cpu().numpy()
        for k, (slot, j) in enumerate(pend_dst[:n]):
            c = clips[slot]
            c['flows'][j] = flow[k]
            c['left'] -= 1
            if c['left'] == 0:
                finish(slot)
        solved += n
        del pend_ref[:n], pend_tgt[:n], pend_dst[:n]

    start = time.perf_counter()
    window = max(4, 2 * loader_threads)
    futures = []
    try:
        with ThreadPoolExecutor(max(1, int(loader_threads))) as pool:
            it = iter(records)
            for rec in it:
                futures.append(pool.submit(_load_clip, cache, rec))
                if len(futures) >= window:
                    break
            slot_id = 0
            while futures:
                rec, status, data, error = futures.pop(0).result()
                nxt = next(it, None)
                if nxt is not None:
                    futures.append(pool.submit(_load_clip, cache, nxt))
                if status == 'cache_error':
                    raise FlowCacheError(error)
                if status == 'error':
                    results.append(dict(id=rec.sample_id, error=error))
                    tick()
                    continue
                if status == 'busy':
                    busy.append(rec)
                    continue
                if status == 'reused':
                    results.append(dict(
                        id=rec.sample_id, built=False, pairs_computed=0,
                        pairs_reused=data['reused'],
                        bytes=cache.bytes_of(rec, data['positions'])))
                    tick()
                    continue
                slot_id += 1
                clips[slot_id] = dict(record=rec, flows=[None] * len(
                    data['frames']), left=len(data['frames']), **data)
                for j, frame in enumerate(data['frames']):
                    pend_ref.append(data['onset'])
                    pend_tgt.append(frame)
                    pend_dst.append((slot_id, j))
                while len(pend_ref) >= batch_pairs:
                    run_batch(batch_pairs)
            if pend_ref:
                run_batch(len(pend_ref))
    finally:
        # On an error: drop every lock this call still holds.
        for c in clips.values():
            c['lock'].release()
        for fut in futures:
            if fut.done() and fut.exception() is None:
                _, status, data, _ = fut.result()
                if status == 'todo':
                    data['lock'].release()
    # Clips another process was filling: wait for its lock (holding none),
    # then read what it wrote or solve the rest here.
    for rec in busy:
        try:
            _, computed, reused = cache.build_status(rec)
            solved += computed
            results.append(dict(id=rec.sample_id, built=computed > 0,
                                pairs_computed=computed, pairs_reused=reused,
                                bytes=cache.bytes_of(rec)))
        except FlowCacheError:
            raise
        except Exception as exc:  # noqa: BLE001
            results.append(dict(id=rec.sample_id, error=_one_line(exc)))
        tick()
    seconds = time.perf_counter() - start
    if bar is not None:
        bar.file.write('\n')
    out = summarise(results, seconds)
    out['pairs_per_s'] = round(solved / seconds, 2) if seconds > 0 else 0.0
    return out
