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
* Which positions make a clip's instance set is not the cache's business:
  whoever builds it hands it a *positions function* (``record -> [frame
  position]``; the datasets' sampling, see
  :func:`raicl_mm.datasets.instance_sets.sampled_cache`), or passes the
  positions to :meth:`FlowCache.flows_at` / :meth:`FlowCache.build_status`.
  Any sampling (``middle``, ``apex_single``, ``full``, a resampled
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
dataset reads them once and keeps them in memory. 16 pairs of the 442 CDE
clips at 112x112 take 0.53 GB, as the per-clip files did.

What one pair file holds and how it is read and written (float16 + CRC-32,
validated reads, atomic writes, no links followed) is
:mod:`raicl_mm.flow.cache_pairs`. Two processes filling the same cache take
an advisory lock on the clip folder (``flock``, :class:`ClipLock`) while
they compute its missing pairs, so each pair is computed once; the other
waits and reads it. Filling the cache for many clips at once is
:mod:`raicl_mm.flow.cache_fill` (:func:`extract_all`, re-exported here).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

# extract_all (the bulk fill, in its own module, which imports nothing of
# this one) is re-exported: callers have always found it here.
from .cache_fill import extract_all  # noqa: F401
from .cache_io import ClipLock, FlowCacheError, summarise  # noqa: F401
from .cache_pairs import (CACHE_FORMAT_VERSION, FLOAT16_MAX,  # noqa: F401
                          atomic_write, digest, drop_stale, frame_id,
                          read_pair, refuse_links, safe_part, write_pair)
from .config import FlowConfig
from .instances import extract_instance_set

__all__ = ['FlowCache', 'PositionsFn', 'extract_all', 'ClipLock',
           'FlowCacheError', 'summarise', 'CACHE_FORMAT_VERSION',
           'FLOAT16_MAX']

#: ``record -> [frame position]``: the positions of a clip's instance set.
PositionsFn = Callable[[object], Sequence[int]]


class FlowCache:
    """Onset->frame flows of clips, stored per pair under ``root``.

    Args:
        root: Cache folder (created on first write); it holds one folder per
            flow setting, so several configs can share it.
        flow_cfg: How flows are computed (the folder's key).
        positions_fn: ``record -> [frame position]``, the positions of a
            clip's instance set, which :meth:`load` / :meth:`build` return
            (the datasets hand it over:
            :func:`raicl_mm.datasets.instance_sets.sampled_cache`). None: a
            cache of pairs only; :meth:`flows_at`, :meth:`fill`,
            :meth:`store` and the methods given positions work, the
            instance-set ones raise. It travels with the cache when the
            cache is pickled, so it should pickle (or leave behind what
            does not).

    Attributes:
        flow_key: :meth:`FlowConfig.key_dict` plus the format version.
        flow_dir: ``root/<method>-<H>x<W>-<hash>``, this setting's folder.
        stats: Pairs this object has computed / read from disk
            (``{'pairs_computed': n, 'pairs_reused': n}``), this process only.
    """

    def __init__(self, root: str, flow_cfg: FlowConfig,
                 positions_fn: Optional[PositionsFn] = None) -> None:
        if positions_fn is not None and not callable(positions_fn):
            raise TypeError(
                f'FlowCache positions_fn must be record -> positions, got '
                f'{type(positions_fn).__name__} (a sampling config goes '
                'through raicl_mm.datasets.instance_sets.sampled_cache)')
        self.root = Path(root)
        self.flow_cfg = flow_cfg
        self.positions_fn = positions_fn
        self.flow_key = dict(version=CACHE_FORMAT_VERSION,
                             flow=flow_cfg.key_dict())
        self._flow_hash = digest(self.flow_key)
        h, w = flow_cfg.size
        self.flow_dir = self.root / (f'{safe_part(flow_cfg.method)}-{h}x{w}-'
                                     f'{self._flow_hash[:12]}')
        self._shape = (h, w, 3)
        self.stats = dict(pairs_computed=0, pairs_reused=0)

    # ------------------------------------------------------------ layout
    def clip_dir(self, record) -> Path:
        """``flow_dir/<dataset>/<subject>/<clip_id>``, parts made safe."""
        return (self.flow_dir / safe_part(record.dataset) /
                safe_part(record.subject) / safe_part(record.clip_id))

    def positions(self, record) -> List[int]:
        """The positions of ``record``'s instance set (``positions_fn``).

        Raises:
            ValueError: The cache has no positions function, or it cannot
                choose the positions (e.g. no apex).
        """
        if self.positions_fn is None:
            raise ValueError(
                f'flow cache {self.flow_dir} has no positions function: '
                'pass the positions (flows_at, build_status, paths_for) or '
                'build the cache with one')
        return list(self.positions_fn(record))

    def pair_keys(self, record, positions: Sequence[int]) -> Dict[int, str]:
        """Hex digest of each onset->frame pair: flow setting, onset, frame.

        Take it *before* the frames are read, so that a frame edited
        meanwhile makes the written file stale rather than wrong.
        """
        paths = record.frame_paths
        if not paths:
            raise ValueError(f'sample {record.sample_id} has no frames')
        onset = frame_id(paths[0])
        keys = {}
        for p in positions:
            p = int(p)
            if not 0 <= p < len(paths):
                raise ValueError(f'position {p} is outside sample '
                                 f'{record.sample_id} ({len(paths)} frames)')
            keys[p] = digest([self._flow_hash, onset, frame_id(paths[p])])
        return keys

    def pair_path(self, record, position: int, key: str) -> Path:
        """The file of one pair: ``clip_dir/<frame file>.<key[:16]>.npy``."""
        name = safe_part(os.path.basename(record.frame_paths[int(position)]))
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
        return digest([[p, keys[p]] for p in positions])

    # ------------------------------------------------------------ reading
    def read_pairs(self, record, keys: Dict[int, str]
                   ) -> Dict[int, Optional[np.ndarray]]:
        """``{position: flow or None}`` of the pairs ``keys`` names (None:
        not on disk, or damaged; see
        :func:`~raicl_mm.flow.cache_pairs.read_pair`)."""
        return {p: read_pair(self.pair_path(record, p, k), self._shape)
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
            ValueError: The positions cannot be chosen (:meth:`positions`).
        """
        positions = self.positions(record)
        got = self.read_pairs(record, self.pair_keys(record, positions))
        if any(v is None for v in got.values()):
            return None
        self.stats['pairs_reused'] += len(got)
        return self._as_set(record, positions, got)

    # ------------------------------------------------------------ writing
    def mkdir(self, folder: Path) -> None:
        """Create ``folder`` (inside ``flow_dir``) and the setting's manifest;
        a linked folder on the way is refused
        (:func:`~raicl_mm.flow.cache_pairs.refuse_links`)."""
        refuse_links(self.root, folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise FlowCacheError(
                f'flow cache folder {folder} cannot be created '
                f'({err.strerror or err}); set flow_cache to a writable '
                f'folder') from None
        # a link swapped in while the folders were made
        refuse_links(self.root, folder)
        manifest = self.flow_dir / 'flow_key.json'
        if not manifest.exists():
            # For people and tools listing the cache; created once, never
            # replaced (os.link fails if it exists).
            text = json.dumps(self.flow_key, indent=2, sort_keys=True,
                              default=str)
            atomic_write(manifest, lambda f: f.write(text.encode()),
                         replace=False)

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
            write_pair(path, f)
            refuse_links(self.root, path.parent)
            drop_stale(path)
        if bad:
            raise ValueError(
                f'sample {record.sample_id}: flow out of float16 range, not '
                f'stored (max {FLOAT16_MAX:g}): {"; ".join(bad.values())}')
        return dict(flows=flows.astype(np.float16).astype(np.float32),
                    positions=positions,
                    frame_numbers=[int(record.frame_numbers[p])
                                   for p in positions])

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
