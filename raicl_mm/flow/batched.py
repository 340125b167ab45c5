"""Filling the flow cache with the batched PyTorch TV-L1 (CPU or CUDA).

The pairs of many clips are solved as one batch by
:func:`raicl_mm.flow.tvl1_torch.tvl1_batch`; frames are read ahead in threads.
"""
from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Iterable, List, Tuple

import numpy as np
import torch

from .tvl1_torch import default_device, tvl1_batch


def _load_clip(cache, record):
    """Cache lookup, else key + positions + frames (in a loader thread)."""
    from .instances import load_clip_frames
    try:
        cached = cache.load(record)
        if cached is not None:
            return record, 'reused', cached, None
        key, positions = cache._key_and_positions(record)
        onset, frames = load_clip_frames(record, positions, cache.flow_cfg)
        return record, 'todo', (key, positions, onset, frames), None
    except Exception as exc:  # noqa: BLE001 - reported, the others go on
        return record, 'error', None, f'{type(exc).__name__}: {exc}'


def extract_all_torch(records: Iterable, cache, device=None,
                      batch_pairs: int = 256, progress: bool = True,
                      loader_threads: int = 2) -> Dict:
    """Fill ``cache`` for every record with the batched TV-L1.

    Frames are read, cropped and resized as :func:`~.flow.load_clip_frames`
    does (in ``loader_threads`` threads, ahead of the solver); the pairs of
    many clips are solved ``batch_pairs`` at a time; each finished clip gets
    its strain (:func:`~.flow.optical_strain`) and is written with
    :meth:`FlowCache.store` (atomic, float16).

    Args:
        records: ClipRecords.
        cache: A :class:`~.flow_cache.FlowCache` (its ``flow_cfg.method``
            should be ``'tvl1_torch'``; the flows are TV-L1 whatever it is).
        device: None = ``cache.flow_cfg.device`` or CUDA when available,
            else CPU.
        batch_pairs: Pairs per solver call.
        progress: Progress bar (clips) on stderr.
        loader_threads: Threads reading frames ahead of the solver.

    The solver runs with OpenCV's default parameters (:class:`TVL1Params`),
    which is what the cache key of ``method='tvl1_torch'`` records.

    Returns:
        The same keys as :func:`~.flow_cache.extract_all`: ``built``,
        ``reused``, ``failed`` ([{'id', 'error'}]), ``seconds``,
        ``pairs_per_s`` (pairs computed per second, loading included),
        ``bytes``.
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
    built = reused = pairs_done = 0
    failed: List[Dict] = []
    total_bytes = 0
    # Pending pairs: (clip slot, pair index, onset, frame); clips in flight.
    pend_ref: List[np.ndarray] = []
    pend_tgt: List[np.ndarray] = []
    pend_dst: List[Tuple[int, int]] = []
    clips: Dict[int, Dict] = {}

    def finish(slot: int) -> None:
        nonlocal built, total_bytes
        c = clips.pop(slot)
        rec = c['record']
        try:
            flows = np.stack([np.dstack([f, optical_strain(f[..., 0],
                                                           f[..., 1])])
                              for f in c['flows']]).astype(np.float32)
            cache.store(rec, flows, c['positions'], key=c['key'])
            total_bytes += cache.path_for(rec).stat().st_size
            built += 1
        except Exception as exc:  # noqa: BLE001
            failed.append(dict(id=rec.sample_id,
                               error=f'{type(exc).__name__}: {exc}'))
        if bar is not None:
            bar.update()

    def run_batch(n: int) -> None:
        nonlocal pairs_done
        ref = torch.from_numpy(np.stack(pend_ref[:n]))
        tgt = torch.from_numpy(np.stack(pend_tgt[:n]))
        flow = tvl1_batch(ref, tgt, device=dev).cpu().numpy()
        for k, (slot, j) in enumerate(pend_dst[:n]):
            c = clips[slot]
            c['flows'][j] = flow[k]
            c['left'] -= 1
            if c['left'] == 0:
                finish(slot)
        pairs_done += n
        del pend_ref[:n], pend_tgt[:n], pend_dst[:n]

    start = time.perf_counter()
    window = max(4, 2 * loader_threads)
    with ThreadPoolExecutor(max(1, int(loader_threads))) as pool:
        futures = []
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
            if status == 'error':
                failed.append(dict(id=rec.sample_id, error=error))
                if bar is not None:
                    bar.update()
                continue
            if status == 'reused':
                reused += 1
                total_bytes += cache.path_for(rec).stat().st_size
                if bar is not None:
                    bar.update()
                continue
            key, positions, onset, frames = data
            slot_id += 1
            clips[slot_id] = dict(record=rec, key=key, positions=positions,
                                  flows=[None] * len(frames),
                                  left=len(frames))
            for j, frame in enumerate(frames):
                pend_ref.append(onset)
                pend_tgt.append(frame)
                pend_dst.append((slot_id, j))
            while len(pend_ref) >= batch_pairs:
                run_batch(batch_pairs)
        if pend_ref:
            run_batch(len(pend_ref))
    seconds = time.perf_counter() - start
    if bar is not None:
        bar.file.write('\n')
    return dict(
        built=built, reused=reused,
        failed=sorted(failed, key=lambda d: d['id']),
        seconds=round(seconds, 3),
        pairs_per_s=round(pairs_done / seconds, 2) if seconds > 0 else 0.0,
        bytes=int(total_bytes))
