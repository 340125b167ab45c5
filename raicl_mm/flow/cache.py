"""On-disk flow cache: one file per onset->frame pair, shared by every sampling.

An instance set (Eq. 2) is a list of onset->frame flows ``[u, v, strain]``; a
flow depends on the flow settings and on the two frames, never on which
sampling strategy asked for it. So the cache stores *pairs*:

    root/<method>-<H>x<W>-<flow hash>/          one folder per flow setting
        flow_key.json                           the settings it holds
        <dataset>/<subject>/<clip_id>/          one folder per clip
            <frame file>.<pair hash>.npy        one onset->frame flow

* The *flow hash* covers :meth:`FlowConfig.key_dict` (method, size, face
  crop and its model, solver parameters and version, OpenCV version) and
  :data:`CACHE_FORMAT_VERSION`: different flow settings coexist in their own
  folders instead of evicting each other.
* The *pair hash* covers the flow hash and the identity of the onset and of
  the frame: file name, size and modification time (copying a dataset
  without keeping mtimes therefore recomputes, the safe side). An edited
  frame gives another name; the stale file is removed when the new one is
  written.
* Any sampling (``middle``, ``apex_single``, ``full``, a resampled
  ``target_fps`` set...) reads the pairs of its positions and computes only
  those not on disk: switching strategies never recomputes a pair.

Why one ``.npy`` per pair (measured, ``benchmarks/README.md``, "flow cache
sharing"): a pair is written once and never rewritten, so concurrent writers
need no merge and an interrupted fill loses nothing but the pair in flight;
one ``.npz`` per clip reads faster raw but must be rewritten (read, merge,
write, under a lock) each time a strategy adds pairs; one ``.npz`` per pair
pays zipfile overhead per member. Through :meth:`FlowCache.load` (which
compares headers instead of parsing them) a fold's instance sets load as
fast as the old per-clip files did (~4-5 ms a clip of 16 pairs); the
dataset reads them once and keeps them in memory.

Writes go to a temporary file in the clip folder (mode ``0666 & ~umask``,
i.e. 0644 under the usual umask, so a group can share the cache) and are
moved into place with ``os.replace``: a reader never sees a partial file.
A pair file is a plain ``.npy`` (``np.load`` reads it) followed by the
CRC-32 of its data; it is not fsynced (an fsync per pair doubled the time of
a fast solver's fill): a file torn by a power cut fails its checksum and is
recomputed, which is all a cache needs. Two processes filling the same
cache take an advisory lock on the clip folder (``flock``) while they compute
its missing pairs, so each pair is computed once; the other waits and reads
it.

Flows are stored as float16 (half the disk, and well below TV-L1's own
error: float16 keeps about 3 significant digits) and returned as float32;
a flow outside float16's range (|x| > 65504) or not finite is refused when
stored, naming the clip. At 112x112 a pair file is 75,396 B (112*112*3*2 B,
a 128 B ``.npy`` header, 4 B of checksum): 16 pairs of the 442 CDE clips
take 0.53 GB, as the per-clip files did.

A read is validated (exact header, size, checksum, finite values; nothing is
parsed or unpickled):
anything else is a miss and is recomputed, never an exception.
"""
from __future__ import annotations

import glob
import hashlib
import io
import json
import multiprocessing
import os
import re
import stat
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from raicl_mm.datasets.sampling import SamplingConfig, clip_positions  # noqa: F401

from .cache_io import ClipLock, FlowCacheError, summarise  # noqa: F401
from .cache_io import one_line as _one_line
from .config import FlowConfig
from .instances import extract_instance_set
from .tvl1 import set_worker_threads

#: Bump when the file layout or the meaning of its arrays changes.
#: 1: one ``.npz`` per clip and sampling; 2: one ``.npy`` per pair.
CACHE_FORMAT_VERSION = 2

#: The largest finite float16; a flow beyond it would be stored as inf.
FLOAT16_MAX = float(np.finfo(np.float16).max)

_UNSAFE = re.compile(r'[^A-Za-z0-9._-]')


def _safe_part(part: str) -> str:
    """A file-system-safe version of an id; a hash suffix keeps it unique."""
    safe = _UNSAFE.sub('_', str(part)).strip('.')
    if safe != str(part) or not safe:
        safe = f'{safe}-{hashlib.sha1(str(part).encode()).hexdigest()[:8]}'
    return safe


def _digest(obj) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str).encode('utf-8')
    return hashlib.sha256(blob).hexdigest()


def _file_mode() -> int:
    """``0666 & ~umask``: what ``open()`` would create (mkstemp makes 0600).

    The umask is read from ``/proc/self/status`` where it is listed: setting
    it to read it back (``os.umask``) would race with other threads.
    """
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _frame_id(path: str) -> list:
    """``[file name, size, mtime_ns]`` of a frame (None values if missing)."""
    try:
        st = os.stat(path)
        return [os.path.basename(path), st.st_size, st.st_mtime_ns]
    except OSError:
        return [os.path.basename(path), None, None]


class FlowCache:
    """Onset->frame flows of clips, stored per pair under ``root``.

    Args:
        root: Cache folder (created on first write); it holds one folder per
            flow setting, so several configs can share it.
        flow_cfg: How flows are computed (the folder's key).
        sampling_cfg: Which positions :meth:`load` / :meth:`build` return
            (the instance set); :meth:`flows_at` takes any positions.
        motion_fn: ``record -> (T,)`` per-frame motion for a sampling that
            spots the apex (passed to
            :func:`~raicl_mm.datasets.sampling.clip_positions`); it may itself
            read this cache's :meth:`flows_at`.

    Attributes:
        flow_key: :meth:`FlowConfig.key_dict` plus the format version.
        flow_dir: ``root/<method>-<H>x<W>-<hash>``, this setting's folder.
        stats: Pairs this object has computed / read from disk
            (``{'pairs_computed': n, 'pairs_reused': n}``), this process only.
    """

    def __init__(self, root: str, flow_cfg: FlowConfig,
                 sampling_cfg: Optional[SamplingConfig] = None,
                 motion_fn: Optional[Callable] = None) -> None:
        self.root = Path(root)
        self.flow_cfg = flow_cfg
        self.sampling_cfg = sampling_cfg or SamplingConfig()
        self.motion_fn = motion_fn
        self.flow_key = dict(version=CACHE_FORMAT_VERSION,
                             flow=flow_cfg.key_dict())
        self._flow_hash = _digest(self.flow_key)
        h, w = flow_cfg.size
        self.flow_dir = self.root / (f'{_safe_part(flow_cfg.method)}-{h}x{w}-'
                                     f'{self._flow_hash[:12]}')
        self._shape = (h, w, 3)
        self._nbytes = h * w * 3 * 2
        self.stats = dict(pairs_computed=0, pairs_reused=0)

    def __getstate__(self):
        # Worker processes get the cache without the (often unpicklable)
        # motion function: extract_all chooses the positions in the parent.
        state = dict(self.__dict__)
        state['motion_fn'] = None
        return state

    # ------------------------------------------------------------ layout
    def clip_dir(self, record) -> Path:
        """``flow_dir/<dataset>/<subject>/<clip_id>``, parts made safe."""
        return (self.flow_dir / _safe_part(record.dataset) /
                _safe_part(record.subject) / _safe_part(record.clip_id))

    def positions(self, record) -> List[int]:
        """The positions of ``record``'s instance set under ``sampling_cfg``."""
        return clip_positions(record, self.sampling_cfg, self.motion_fn)

    def pair_keys(self, record, positions: Sequence[int]) -> Dict[int, str]:
        """Hex digest of each onset->frame pair: flow setting, onset, frame.

        Take it *before* the frames are read, so that a frame edited
        meanwhile makes the written file stale rather than wrong.
        """
        paths = record.frame_paths
        if not paths:
            raise ValueError(f'sample {record.sample_id} has no frames')
        onset = _frame_id(paths[0])
        keys = {}
        for p in positions:
            p = int(p)
            if not 0 <= p < len(paths):
                raise ValueError(f'position {p} is outside sample '
                                 f'{record.sample_id} ({len(paths)} frames)')
            keys[p] = _digest([self._flow_hash, onset, _frame_id(paths[p])])
        return keys

    def pair_path(self, record, position: int, key: str) -> Path:
        """The file of one pair: ``clip_dir/<frame file>.<key[:16]>.npy``."""
        name = _safe_part(os.path.basename(record.frame_paths[int(position)]))
        return self.clip_dir(record) / f'{name}.{key[:16]}.npy'

    def paths_for(self, record, positions: Optional[Sequence[int]] = None
                  ) -> List[Path]:
        """The pair files of ``positions`` (default: the instance set)."""
        positions = self.positions(record) if positions is None else positions
        keys = self.pair_keys(record, positions)
        return [self.pair_path(record, p, keys[int(p)]) for p in positions]

    def key_for(self, record) -> str:
        """Hex digest identifying ``record``'s instance set (its positions and
        their pairs) under this cache's settings."""
        positions = self.positions(record)
        keys = self.pair_keys(record, positions)
        return _digest([[p, keys[p]] for p in positions])

    # ------------------------------------------------------------ reading
    def _read_pair(self, path: Path) -> Optional[np.ndarray]:
        """A stored pair, or None if missing or not exactly what we write.

        The file must be byte for byte a ``.npy`` of this cache's shape and
        float16 followed by the CRC-32 of its data: the header is compared
        with the one ``np.save`` writes (:attr:`_npy_header`) instead of
        being parsed, which halves the read time (numpy parses headers with
        ``ast.literal_eval``) and leaves a hostile file nothing to parse (no
        pickle, no size to allocate); the checksum catches a file torn by a
        crash (pairs are not fsynced).
        """
        head = self._npy_header
        try:
            # O_NONBLOCK: a FIFO planted at the path must not hang the read.
            fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NONBLOCK', 0))
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            with os.fdopen(fd, 'rb', closefd=False) as f:
                data = f.read(len(head) + self._nbytes + 5)
        except OSError:
            return None
        finally:
            os.close(fd)
        end = len(head) + self._nbytes
        if len(data) != end + 4 or not data.startswith(head) or \
                data[end:] != _crc(data[len(head):end]):
            return None
        arr = np.frombuffer(data, np.float16, count=self._nbytes // 2,
                            offset=len(head)).reshape(self._shape)
        if not np.isfinite(arr).all():
            return None
        return arr

    @property
    def _npy_header(self) -> bytes:
        head = getattr(self, '_npy_header_bytes', None)
        if head is None:
            buf = io.BytesIO()
            np.save(buf, np.zeros(self._shape, np.float16))
            head = buf.getvalue()[:-self._nbytes]
            self._npy_header_bytes = head
        return head

    def read_pairs(self, record, keys: Dict[int, str]
                   ) -> Dict[int, Optional[np.ndarray]]:
        """``{position: flow or None}`` of the pairs ``keys`` names (None:
        not on disk, or damaged)."""
        return {p: self._read_pair(self.pair_path(record, p, k))
                for p, k in keys.items()}

    def _as_set(self, record, positions, got) -> Dict:
        return dict(flows=np.stack([got[int(p)] for p in positions]
                                   ).astype(np.float32),
                    positions=[int(p) for p in positions],
                    frame_numbers=[int(record.frame_numbers[int(p)])
                                   for p in positions])

    def load(self, record) -> Optional[Dict]:
        """Read ``record``'s instance set if every pair of it is on disk.

        Args:
            record: A :class:`~raicl_mm.datasets.records.ClipRecord`.

        Returns:
            ``{'flows': (N, H, W, 3) float32, 'positions': [int],
            'frame_numbers': [int]}``, or None when a pair is missing,
            stale or corrupt (never raises for a bad file).

        Raises:
            ValueError: The positions cannot be chosen (see
                :func:`~raicl_mm.datasets.sampling.clip_positions`).
        """
        positions = self.positions(record)
        got = self.read_pairs(record, self.pair_keys(record, positions))
        if any(v is None for v in got.values()):
            return None
        self.stats['pairs_reused'] += len(got)
        return self._as_set(record, positions, got)

    # ------------------------------------------------------------ writing
    def _refuse_links(self, folder: Path) -> None:
        """Refuse a symbolic link between the cache root and ``folder``.

        The cache creates files and deletes stale ones in a clip's folder; a
        clip, subject, dataset or setting folder linked elsewhere (in a cache
        a group shares) would make it write and delete in the link's target.
        The root itself may be a link (a cache placed on another disk).

        Raises:
            FlowCacheError: Naming the linked folder and its target.
        """
        try:
            rel = folder.relative_to(self.root)
        except ValueError:
            return
        current = self.root
        for part in rel.parts:
            current = current / part
            if current.is_symlink():
                try:
                    target = os.readlink(current)
                except OSError:
                    target = '?'
                raise FlowCacheError(
                    f'flow cache folder {current} is a symbolic link (to {target}): '
                    'the cache never writes or deletes through a link; remove the '
                    'link (the cache recomputes what it needs)')
            if not current.exists():
                return

    def mkdir(self, folder: Path) -> None:
        """Create ``folder`` (inside ``flow_dir``) and the setting's manifest;
        a linked folder on the way is refused (:meth:`_refuse_links`)."""
        self._refuse_links(folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise FlowCacheError(
                f'flow cache folder {folder} cannot be created '
                f'({err.strerror or err}); set flow_cache to a writable '
                f'folder') from None
        # a link swapped in while the folders were made
        self._refuse_links(folder)
        manifest = self.flow_dir / 'flow_key.json'
        if not manifest.exists():
            # For people and tools listing the cache; created once, never
            # replaced (os.link fails if it exists).
            text = json.dumps(self.flow_key, indent=2, sort_keys=True,
                              default=str)
            self._atomic_write(manifest, lambda f: f.write(text.encode()),
                               replace=False)

    def _atomic_write(self, path: Path, write: Callable, replace=True,
                      sync=True) -> None:
        """Temp file in the same folder, 0666 & ~umask, (fsync,) rename."""
        folder = path.parent
        try:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f'.{path.name}.',
                                       suffix='.tmp')
        except OSError as err:
            raise FlowCacheError(
                f'flow cache folder {folder} is not writable '
                f'({err.strerror or err}); set flow_cache to a writable '
                f'folder') from None
        try:
            try:
                os.fchmod(fd, _file_mode())
                with os.fdopen(fd, 'wb') as f:
                    write(f)
                    f.flush()
                    if sync:
                        os.fsync(f.fileno())
                if replace:
                    os.replace(tmp, path)
                else:
                    try:
                        os.link(tmp, path)
                    except FileExistsError:
                        pass
                    os.unlink(tmp)
            except OSError as err:
                raise FlowCacheError(
                    f'cannot write to the flow cache folder {folder} '
                    f'({err.strerror or err})') from None
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def _out_of_range(self, record, positions, flows: np.ndarray
                      ) -> Dict[int, str]:
        """``{position: why}`` for each flow float16 cannot hold."""
        bad = {}
        for p, f in zip(positions, flows):
            finite = np.isfinite(f)
            peak = float(np.abs(f[finite]).max()) if finite.any() else 0.0
            if not finite.all() or peak > FLOAT16_MAX:
                what = ('not finite' if not finite.all()
                        else f'|value| up to {peak:.6g}')
                bad[int(p)] = (f'frame {record.frame_numbers[int(p)]} '
                               f'(position {int(p)}): {what}')
        return bad

    def store(self, record, flows: np.ndarray, positions: Sequence[int],
              keys: Optional[Dict[int, str]] = None) -> Dict:
        """Write computed pairs (atomically, float16), one file each.

        Args:
            record: The clip.
            flows: ``(N, H, W, 3)`` ``[u, v, strain]`` at the positions.
            positions: The positions the flows were computed at (any).
            keys: :meth:`pair_keys` taken *before* the frames were read; None
                computes them now.

        Returns:
            ``{'flows', 'positions', 'frame_numbers'}`` as :meth:`load` gives
            them (flows rounded through float16).

        Raises:
            ValueError: Wrong shape, or a flow that float16 cannot hold
                (|x| > 65504, NaN, inf): one line naming the clip and the
                frames; the clip's other pairs are stored.
            FlowCacheError: The folder cannot be written.
        """
        positions = [int(p) for p in positions]
        if keys is None:
            keys = self.pair_keys(record, positions)
        flows = np.asarray(flows)
        want = (len(positions),) + self._shape
        if flows.shape != want:
            raise ValueError(f'flows of sample {record.sample_id} have shape '
                             f'{flows.shape}, expected {want}')
        bad = self._out_of_range(record, positions, flows)
        self.mkdir(self.clip_dir(record))
        for p, f in zip(positions, flows):
            if p in bad:
                continue
            path = self.pair_path(record, p, keys[p])
            f16 = np.ascontiguousarray(f, dtype=np.float16)

            def write(fh, a=f16):
                np.save(fh, a)
                fh.write(_crc(a.tobytes()))
            # No fsync: the checksum makes a pair torn by a crash a miss
            # (recomputed), and an fsync per pair doubled the time of a
            # Farneback fill (benchmarks/README.md).
            self._atomic_write(path, write, sync=False)
            self._refuse_links(path.parent)
            self._drop_stale(path)
        if bad:
            raise ValueError(
                f'sample {record.sample_id}: flow out of float16 range, not '
                f'stored (max {FLOAT16_MAX:g}): {"; ".join(bad.values())}')
        return dict(flows=flows.astype(np.float16).astype(np.float32),
                    positions=positions,
                    frame_numbers=[int(record.frame_numbers[p])
                                   for p in positions])

    @staticmethod
    def _drop_stale(path: Path) -> None:
        """Remove the same frame's files of an older identity (best effort)."""
        stem = path.name.rsplit('.', 2)[0]
        try:
            for other in path.parent.glob(f'{glob.escape(stem)}.*.npy'):
                if other.name != path.name and \
                        other.name.rsplit('.', 2)[0] == stem:
                    try:
                        other.unlink()
                    except OSError:
                        pass
        except OSError:
            pass

    # ------------------------------------------------------------ filling
    def fill(self, record, positions: Sequence[int],
             compute: bool = True) -> Tuple[Dict[int, Optional[np.ndarray]],
                                            int, int]:
        """The pairs of ``positions``: read, and computed when missing.

        Missing pairs are computed in one call of
        :func:`~raicl_mm.flow.instances.extract_instance_set` under the
        clip's lock (re-checked once the lock is held: another process may
        have written them meanwhile).

        Returns:
            ``({position: (H, W, 3) float16 or None}, computed, reused)``;
            a None only when ``compute=False``.
        """
        unique = sorted({int(p) for p in positions})
        keys = self.pair_keys(record, unique)
        got = self.read_pairs(record, keys)
        missing = [p for p in unique if got[p] is None]
        computed = 0
        if missing and compute:
            folder = self.clip_dir(record)
            self.mkdir(folder)
            with ClipLock(folder):
                again = self.read_pairs(record, {p: keys[p] for p in missing})
                got.update({p: a for p, a in again.items() if a is not None})
                missing = [p for p in missing if got[p] is None]
                if missing:
                    flows = extract_instance_set(record, self.flow_cfg,
                                                 missing)
                    self.store(record, flows, missing, keys)
                    for p, f in zip(missing, flows):
                        got[p] = np.asarray(f, dtype=np.float16)
                    computed = len(missing)
        reused = sum(1 for v in got.values() if v is not None) - computed
        if compute:  # a look-up only (compute=False) is not counted
            self.stats['pairs_computed'] += computed
            self.stats['pairs_reused'] += reused
        return got, computed, reused

    def flows_at(self, record, positions: Sequence[int],
                 compute: bool = True) -> Optional[np.ndarray]:
        """Onset->frame flows of ``record`` at any positions, from the cache.

        What the apex spotter needs (every frame of a clip) and what any
        sampling reads: pairs already on disk are read, the others computed
        and stored, so a later instance set over the same frames costs
        nothing.

        Args:
            record: A :class:`~raicl_mm.datasets.records.ClipRecord`.
            positions: Indices into ``record.frame_paths`` (0 = the onset,
                whose flow is ~0); repeats allowed.
            compute: False = only read; None is returned if a pair is missing.

        Returns:
            ``(len(positions), H, W, 3)`` float32 ``[u, v, strain]``.
        """
        got, _, _ = self.fill(record, positions, compute=compute)
        if any(v is None for v in got.values()):
            return None
        out = np.zeros((len(positions),) + self._shape, np.float32)
        for i, p in enumerate(positions):
            out[i] = got[int(p)]
        return out

    def build_status(self, record, positions: Optional[Sequence[int]] = None
                     ) -> Tuple[Dict, int, int]:
        """The instance set, computing its missing pairs.

        Args:
            record: The clip.
            positions: The set's positions when already chosen (default:
                :meth:`positions`).

        Returns:
            ``(instance set as load gives it, pairs computed, pairs reused)``.
        """
        positions = self.positions(record) if positions is None else [
            int(p) for p in positions]
        got, computed, reused = self.fill(record, positions)
        return self._as_set(record, positions, got), computed, reused

    def build(self, record) -> Dict:
        """:meth:`load`, computing (and storing) the pairs that are missing."""
        return self.build_status(record)[0]

    def load_or_build(self, record) -> Dict:
        """Alias of :meth:`build`: only missing pairs are ever computed."""
        return self.build(record)

    def load_or_build_status(self, record) -> Tuple[Dict, bool]:
        """Like :meth:`build`, also saying whether any pair was computed."""
        out, computed, _ = self.build_status(record)
        return out, computed > 0

    def bytes_of(self, record, positions: Optional[Sequence[int]] = None
                 ) -> int:
        """Size on disk of the pair files of ``positions`` (default: the set)."""
        total = 0
        for path in self.paths_for(record, positions):
            try:
                total += path.stat().st_size
            except OSError:
                pass
        return total


def _crc(data: bytes) -> bytes:
    """CRC-32 of a pair's data, the 4 bytes after the array (little-endian)."""
    return zlib.crc32(data).to_bytes(4, 'little')


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


def extract_all(records: Iterable, cache: FlowCache,
                workers: Optional[int] = None,
                progress: bool = True) -> Dict:
    """Fill the cache with every record's instance set, in parallel.

    Only the pairs not on disk are computed (whatever sampling wrote them).

    Args:
        records: ClipRecords.
        cache: The cache to fill.
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
        # Positions here, not in the workers: a spotter's motion_fn stays
        # in this process. Clips read whole need no worker (and a run with
        # everything cached starts no pool).
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
        # here with cv2 5.0). The forkserver imports this module once and
        # forks clean workers from it.
        ctx = multiprocessing.get_context('forkserver')
        ctx.set_forkserver_preload([__name__])
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
