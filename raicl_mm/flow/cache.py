"""On-disk cache of instance sets: one ``.npz`` file per clip.

A cached file is used only when its key matches: the key hashes the flow
configuration (:meth:`FlowConfig.key_dict`), the sampling configuration, a
format version and the clip's identity (sample id, onset/apex/offset, every
frame's file name and size, and the modification time of the frames actually
read; copying a dataset without keeping mtimes therefore rebuilds, which is
the safe side). Anything else (missing, stale, unreadable, wrong shapes) is
rebuilt.
Files are written to a temporary file in the same folder and moved into place
with ``os.replace``, so an interrupted write never leaves a file that
:meth:`FlowCache.load` accepts.

Flows are stored as float16 (half the disk, and well below TV-L1's own
error: float16 keeps about 3 significant digits) and returned as float32.
At 112x112 with N=16 a clip file is 1,206,318 B (16*112*112*3*2 B of flow
plus ~2 KB of npz headers and key), i.e. about 0.53 GB for the 442 CDE
clips; at 64x64 about 0.39 MB. The file is an uncompressed ``np.savez``:
``savez_compressed`` saved only ~9 % on TV-L1 flows (measured) and loading
stays at ~2 ms per clip.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from raicl_mm.datasets.sampling import SamplingConfig, clip_positions

from .config import FlowConfig
from .instances import extract_instance_set
from .tvl1 import set_worker_threads

#: Bump when the file layout or the meaning of its arrays changes.
CACHE_FORMAT_VERSION = 1

_UNSAFE = re.compile(r'[^A-Za-z0-9._-]')


def _safe_part(part: str) -> str:
    """A file-system-safe version of an id; a hash suffix keeps it unique."""
    safe = _UNSAFE.sub('_', str(part)).strip('.')
    if safe != str(part) or not safe:
        safe = f'{safe}-{hashlib.sha1(str(part).encode()).hexdigest()[:8]}'
    return safe


class FlowCache:
    """Instance sets of clips, stored under ``root`` and keyed by everything
    that changes them.

    Args:
        root: Cache folder (created on first write).
        flow_cfg: How flows are computed.
        sampling_cfg: How positions are chosen.
    """

    def __init__(self, root: str, flow_cfg: FlowConfig,
                 sampling_cfg: SamplingConfig) -> None:
        self.root = Path(root)
        self.flow_cfg = flow_cfg
        self.sampling_cfg = sampling_cfg

    def path_for(self, record) -> Path:
        """``root/<dataset>/<subject>/<clip_id>.npz``, parts made safe."""
        return (self.root / _safe_part(record.dataset) /
                _safe_part(record.subject) /
                f'{_safe_part(record.clip_id)}.npz')

    def _key_and_positions(self, record) -> Tuple[str, List[int]]:
        positions = clip_positions(record, self.sampling_cfg)
        used = set(positions)
        frames = []
        for i, path in enumerate(record.frame_paths):
            try:
                st = os.stat(path)
                size = st.st_size
                # mtime only for the frames actually read: touching an unused
                # frame does not invalidate, editing a used one does.
                mtime = st.st_mtime_ns if (i == 0 or i in used) else None
            except OSError:
                size, mtime = None, None
            frames.append([os.path.basename(path), size, mtime])
        ident = dict(
            version=CACHE_FORMAT_VERSION,
            flow=self.flow_cfg.key_dict(),
            sampling=asdict(self.sampling_cfg),
            sample_id=record.sample_id,
            onset=record.onset, apex=record.apex, offset=record.offset,
            frame_numbers=list(record.frame_numbers),
            frames=frames)
        blob = json.dumps(ident, sort_keys=True, default=str).encode('utf-8')
        return hashlib.sha256(blob).hexdigest(), positions

    def key_for(self, record) -> str:
        """Hex digest identifying ``record``'s instance set under this cache's
        configuration."""
        return self._key_and_positions(record)[0]

    def _read(self, path: Path, key: str,
              positions: List[int]) -> Optional[Dict]:
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data['key']) != key:
                    return None
                flows = data['flows']
                stored_pos = data['positions']
                frame_numbers = data['frame_numbers']
        except Exception:  # noqa: BLE001 - any unreadable file is a cache miss
            return None
        n = len(positions)
        h, w = self.flow_cfg.size
        if (flows.shape != (n, h, w, 3) or stored_pos.shape != (n,)
                or frame_numbers.shape != (n,)
                or stored_pos.tolist() != list(positions)
                or not np.isfinite(flows).all()):
            return None
        return dict(flows=flows.astype(np.float32),
                    positions=[int(p) for p in stored_pos],
                    frame_numbers=[int(f) for f in frame_numbers])

    def load(self, record) -> Optional[Dict]:
        """Read ``record``'s instance set if a valid, current file exists.

        Args:
            record: A :class:`~raicl_mm.datasets.records.ClipRecord`.

        Returns:
            ``{'flows': (N, H, W, 3) float32, 'positions': [int],
            'frame_numbers': [int]}``, or None when the file is missing,
            stale (key differs) or corrupt. Never raises for a bad file.
        """
        path = self.path_for(record)
        if not path.is_file():
            return None
        key, positions = self._key_and_positions(record)
        return self._read(path, key, positions)

    def build(self, record) -> Dict:
        """Compute ``record``'s instance set and write it atomically.

        Returns:
            The same dict as :meth:`load` (flows rounded through float16, as
            a later load would return them).
        """
        key, positions = self._key_and_positions(record)
        flows = extract_instance_set(record, self.flow_cfg, positions)
        return self.store(record, flows, positions, key=key)

    def store(self, record, flows: np.ndarray, positions: List[int],
              key: Optional[str] = None) -> Dict:
        """Write an instance set computed elsewhere (e.g. by the batched
        TV-L1 of :func:`raicl_mm.flow.tvl1_torch.extract_all_torch`)
        atomically, exactly as :meth:`build` does.

        Args:
            record: The clip.
            flows: ``(N, H, W, 3)`` ``[u, v, strain]`` at the positions.
            positions: The positions the flows were computed at; they must be
                this cache's positions for the clip.
            key: :meth:`key_for` taken *before* the frames were read (so a
                frame edited meanwhile makes the file stale); None computes
                it now.

        Returns:
            The same dict as :meth:`load`.
        """
        positions = [int(p) for p in positions]
        if key is None:
            key, expected = self._key_and_positions(record)
            if expected != positions:
                raise ValueError(f'positions {positions} are not this '
                                 f'cache\'s positions {expected} for sample '
                                 f'{record.sample_id}')
        h, w = self.flow_cfg.size
        flows = np.asarray(flows)
        if flows.shape != (len(positions), h, w, 3):
            raise ValueError(f'flows of sample {record.sample_id} have shape '
                             f'{flows.shape}, expected '
                             f'{(len(positions), h, w, 3)}')
        flows16 = flows.astype(np.float16)  # float16 on disk, see module doc
        frame_numbers = [int(record.frame_numbers[p]) for p in positions]
        path = self.path_for(record)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.',
                                   suffix='.tmp')
        try:
            with os.fdopen(fd, 'wb') as f:
                np.savez(f, key=np.array(key), version=CACHE_FORMAT_VERSION,
                         flows=flows16,
                         positions=np.asarray(positions, dtype=np.int64),
                         frame_numbers=np.asarray(frame_numbers,
                                                  dtype=np.int64),
                         sample_id=np.array(record.sample_id))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return dict(flows=flows16.astype(np.float32), positions=positions,
                    frame_numbers=frame_numbers)

    def load_or_build(self, record) -> Dict:
        """:meth:`load`, rebuilding (and rewriting) when it gives None."""
        cached = self.load(record)
        if cached is not None:
            return cached
        return self.build(record)

    def load_or_build_status(self, record) -> Tuple[Dict, bool]:
        """Like :meth:`load_or_build`, also saying whether it was rebuilt."""
        cached = self.load(record)
        if cached is not None:
            return cached, False
        return self.build(record), True


def _worker_init() -> None:
    # One OpenCV thread per worker process: the pool already fills the cores.
    set_worker_threads(1)


def _extract_one(args) -> Dict:
    cache, record = args
    try:
        out, built = cache.load_or_build_status(record)
        return dict(id=record.sample_id, built=built,
                    pairs=len(out['positions']),
                    bytes=cache.path_for(record).stat().st_size)
    except Exception as exc:  # noqa: BLE001 - reported, the others go on
        return dict(id=record.sample_id, error=f'{type(exc).__name__}: {exc}')


def extract_all(records: Iterable, cache: FlowCache,
                workers: Optional[int] = None,
                progress: bool = True) -> Dict:
    """Fill the cache for every record, in parallel.

    Args:
        records: ClipRecords.
        cache: The cache to fill.
        workers: Processes; None = all cores, 1 = in this process.
            Ignored for ``flow_cfg.method == 'tvl1_torch'``: that goes to
            :func:`raicl_mm.flow.tvl1_torch.extract_all_torch` (one
            process, many clips' pairs per batch, ``flow_cfg.device``).
        progress: Show a progress bar with ETA on stderr
            (``mmengine.utils.ProgressBar``).

    Returns:
        ``{'built': n, 'reused': n, 'failed': [{'id', 'error'}],
        'seconds': float, 'pairs_per_s': float (flow pairs computed per
        second), 'bytes': total size of these clips' cache files}``.
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
    workers = min(workers, max(len(records), 1))
    bar = None
    if progress and records:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(len(records), file=sys.stderr)
    tasks = [(cache, r) for r in records]
    results = []
    start = time.perf_counter()
    if workers == 1:
        for task in tasks:
            results.append(_extract_one(task))
            if bar is not None:
                bar.update()
    else:
        # Small chunks: clips differ a lot in cost, and the bar stays live.
        chunksize = max(1, min(8, len(tasks) // (workers * 8)))
        # Not 'fork': a child forked after OpenCV's (or torch's) thread pool
        # has run in the parent can deadlock in its first parallel call (seen
        # here with cv2 5.0). The forkserver imports this module once and
        # forks clean workers from it.
        ctx = multiprocessing.get_context('forkserver')
        ctx.set_forkserver_preload([__name__])
        with ctx.Pool(workers, initializer=_worker_init) as pool:
            for res in pool.imap_unordered(_extract_one, tasks, chunksize):
                results.append(res)
                if bar is not None:
                    bar.update()
    seconds = time.perf_counter() - start
    if bar is not None:
        bar.file.write('\n')
    ok = [r for r in results if 'error' not in r]
    pairs = sum(r['pairs'] for r in ok if r['built'])
    return dict(
        built=sum(1 for r in ok if r['built']),
        reused=sum(1 for r in ok if not r['built']),
        failed=sorted(({'id': r['id'], 'error': r['error']}
                       for r in results if 'error' in r),
                      key=lambda d: d['id']),
        seconds=round(seconds, 3),
        pairs_per_s=round(pairs / seconds, 2) if seconds > 0 else 0.0,
        bytes=int(sum(r['bytes'] for r in ok)))
