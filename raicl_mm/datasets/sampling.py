"""Multiple Instances Representation (MIR): which frames become flow instances.

A micro-expression clip of ``T`` frames (position 0 is the onset) becomes a
set of optical-flow instances ``I_n`` computed from the onset to the frame at
each sampled position (paper, Sec. 3.1, Eq. 1-2). This module only chooses the
positions; :mod:`raicl_mm.flow` turns them into flow.

Strategies (paper Table 3, appendix A.1.2 / A.2.1):

``middle``
    ``N`` consecutive frames centred on the clip's centre (the paper's
    default). A smaller ``N`` shrinks the window inward, a larger ``N``
    grows it outward; a clip with at most ``N`` usable frames is fully sampled.
``apex_single``
    The single onset/apex instance ("Apex*" of Table 3).
``apex_window``
    ``N`` consecutive frames centred on the apex ("Apex"), shifted to stay
    inside the clip.
``full``
    Every usable frame.
``random``
    ``N`` distinct positions drawn with ``rng``.
``uniform``
    ``N`` positions evenly spread over ``[1, T-1]``.
``activation`` / ``decay``
    The onset->apex phase ``[1, apex]`` / the apex->offset phase
    ``[apex, T-1]``; ``N`` evenly spread positions when the phase is longer.

Position 0 is never returned: the flow onset->onset is zero. Every list is
sorted ascending, unique, and inside ``[1, T-1]``.

Where the apex comes from (``SamplingConfig.apex_source``, the "Rethinking key-frame-based micro-expression recognition"'s
"Spotting" column): ``'annotation'`` (the sheet), ``'spotted'`` (the frame
where the onset->frame motion of the face peaks, :func:`spot_apex`) or
``'annotation_or_spotted'`` (the spotter only where the sheet has no apex,
e.g. SMIC-HS). A clip whose apex-based strategy has no apex falls back to the
clip centre with a warning naming the sample, is counted by
:func:`apex_report`, or is refused (``missing_apex='error'``).

Frame-rate normalisation (``SamplingConfig.target_fps``, the "Modeling the evolution dynamics to enhance micro-expression recognition"'s 100 fps):
a clip is first resampled to the target rate by uniform frame sampling
(:func:`resample_indices`: each target-rate instant takes the nearest real
frame); MIR then chooses positions on the resampled clip and they are mapped
back to real frame indices, so resampling only changes which frames are read.
"""
from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import asdict, dataclass, fields
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

STRATEGIES = ('middle', 'apex_single', 'apex_window', 'full', 'random',
              'uniform', 'activation', 'decay')

#: Strategies that read the annotated apex.
APEX_STRATEGIES = ('apex_single', 'apex_window', 'activation', 'decay')

#: Where an apex-based strategy takes the apex from.
APEX_SOURCES = ('annotation', 'spotted', 'annotation_or_spotted')
#: What an apex-based strategy does on a clip without an apex.
MISSING_APEX = ('centre', 'error')


def _even_spread(lo: int, hi: int, n: int) -> List[int]:
    """``n`` positions evenly spread over ``[lo, hi]`` (all of them if fewer).

    Rounded ``np.linspace``; duplicates from rounding are dropped, so fewer
    than ``n`` may come back only when the range is shorter than ``n``.
    """
    if hi - lo + 1 <= n:
        return list(range(lo, hi + 1))
    return sorted({int(p) for p in np.rint(np.linspace(lo, hi, n))})


def _window(centre: float, n: int, last: int) -> List[int]:
    """``n`` consecutive positions centred on ``centre``, inside ``[1, last]``.

    Assumes ``last >= n`` (the caller falls back to full sampling otherwise).
    For even ``n`` the window takes one more frame after the centre than
    before it.
    """
    start = int(np.floor(centre - (n - 1) / 2.0 + 0.5))
    start = min(max(start, 1), last - n + 1)
    return list(range(start, start + n))


def _resolve_apex(num_frames: int, apex_pos: Optional[int],
                  apex_jitter_std: float, rng: np.random.Generator,
                  strategy: str) -> int:
    """The apex position used by an apex-based strategy, in ``[1, T-1]``."""
    last = num_frames - 1
    if apex_pos is None:
        apex = last // 2 if last >= 2 else 1
        warnings.warn(
            f'sampling strategy {strategy!r} needs an apex but the clip has '
            f'none (apex_pos=None); falling back to the clip centre, '
            f'position {apex} of {num_frames} frames', stacklevel=3)
    else:
        apex = int(apex_pos)
        if not 0 <= apex <= last:
            raise ValueError(f'apex_pos={apex_pos} is outside the clip of '
                             f'{num_frames} frames (valid 0..{last})')
    if apex_jitter_std > 0:
        # Robustness protocol with imprecise key frames: Gaussian noise (std in
        # frames) on the annotated apex, rounded and clipped into the clip.
        apex = int(np.rint(apex + rng.normal(0.0, apex_jitter_std)))
    # Position 0 is the onset itself (zero flow): the nearest useful one is 1.
    return min(max(apex, 1), last)


def sample_positions(num_frames: int,
                     strategy: str = 'middle',
                     num_instances: int = 16,
                     apex_pos: Optional[int] = None,
                     apex_jitter_std: float = 0.0,
                     rng: Optional[np.random.Generator] = None) -> List[int]:
    """Choose the frames whose onset->frame flows form the instance set.

    Args:
        num_frames: Number of frames of the clip, onset included (``T``).
            Must be at least 2.
        strategy: One of :data:`STRATEGIES`.
        num_instances: ``N``, the number of instances wanted (ignored by
            ``apex_single`` and ``full``).
        apex_pos: Index of the apex in the clip's frame list
            (``ClipRecord.apex_position()``), or None when not annotated; the
            apex-based strategies then fall back to the clip centre
            ``(T-1)//2`` and emit a ``UserWarning``.
        apex_jitter_std: Standard deviation, in frames, of Gaussian noise
            added to the apex (apex-based strategies only); 0 disables it.
        rng: Random generator for ``random`` and for the apex jitter. When
            None a fresh, unseeded generator is used (not reproducible).

    Returns:
        Sorted, unique positions in ``[1, num_frames - 1]``.

    Raises:
        ValueError: unknown strategy, fewer than 2 frames, ``num_instances``
            below 1, negative jitter, or an apex outside the clip.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f'unknown sampling strategy {strategy!r}; valid: '
                         f'{", ".join(STRATEGIES)}')
    if num_frames < 2:
        raise ValueError(f'a clip needs at least 2 frames (onset + one more) '
                         f'to give an onset->frame flow; got num_frames='
                         f'{num_frames}')
    if num_instances < 1:
        raise ValueError(f'num_instances must be >= 1, got {num_instances}')
    if apex_jitter_std < 0:
        raise ValueError(
            f'apex_jitter_std must be >= 0, got {apex_jitter_std}')
    if rng is None:
        rng = np.random.default_rng()

    last = num_frames - 1  # usable positions are 1..last
    n = int(num_instances)

    if strategy == 'full':
        return list(range(1, last + 1))
    if strategy == 'middle':
        if last <= n:  # appendix A.1.2: full sampling for short clips
            return list(range(1, last + 1))
        return _window(last / 2.0, n, last)
    if strategy == 'uniform':
        return _even_spread(1, last, n)
    if strategy == 'random':
        if last <= n:
            return list(range(1, last + 1))
        drawn = rng.choice(np.arange(1, last + 1), size=n, replace=False)
        return sorted(int(p) for p in drawn)

    apex = _resolve_apex(num_frames, apex_pos, apex_jitter_std, rng, strategy)
    if strategy == 'apex_single':
        return [apex]
    if strategy == 'apex_window':
        if last <= n:
            return list(range(1, last + 1))
        return _window(float(apex), n, last)
    if strategy == 'activation':
        return _even_spread(1, apex, n)
    # decay
    return _even_spread(apex, last, n)


def middle_position(positions: List[int]) -> int:
    """The middle instance of a set, the one used at inference (paper A.1.3).

    Args:
        positions: The set's positions (any order).

    Returns:
        The element at index ``len // 2`` of the sorted positions (for an even
        count, the later of the two central ones).

    Raises:
        ValueError: if ``positions`` is empty.
    """
    if len(positions) == 0:
        raise ValueError('middle_position() got an empty instance set')
    ordered = sorted(positions)
    return int(ordered[len(ordered) // 2])


@dataclass
class SamplingConfig:
    """How the positions of a clip's instance set are chosen.

    Attributes:
        strategy: One of :data:`raicl_mm.datasets.sampling.STRATEGIES`.
        num_instances: ``N`` (16 in the paper).
        apex_jitter_std: Gaussian noise on the apex, in frames (robustness
            protocol); 0 disables it. With ``target_fps`` the frames are
            those of the target rate.
        seed: Base seed; each clip's generator is seeded from
            ``(seed, sample_id)`` so ``random`` sampling and the apex jitter
            are reproducible and independent of clip order.
        apex_source: One of :data:`APEX_SOURCES` (module docstring).
        missing_apex: ``'centre'`` (fall back to the clip centre, warned and
            counted by :func:`apex_report`) or ``'error'`` (refuse the clip)
            when an apex-based strategy finds no apex.
        target_fps: Resample every clip to this rate before MIR; None keeps
            the recorded rate.
        spot_sigma: Gaussian smoothing of the motion curve before its peak is
            taken, as a fraction of the clip length (sigma in frames =
            ``spot_sigma * (T - 1)``); 0 disables it.
        spot_margin: The peak is searched in ``[margin, 1 - margin]`` of the
            clip (fractions of ``T - 1``), away from the onset and the offset.
    """

    strategy: str = 'middle'
    num_instances: int = 16
    apex_jitter_std: float = 0.0
    seed: int = 0
    apex_source: str = 'annotation'
    missing_apex: str = 'centre'
    target_fps: Optional[float] = None
    spot_sigma: float = 0.05
    spot_margin: float = 0.1

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f'SamplingConfig.strategy={self.strategy!r} is '
                             f'unknown; valid: {", ".join(STRATEGIES)}')
        if int(self.num_instances) < 1:
            raise ValueError(f'SamplingConfig.num_instances must be >= 1, got '
                             f'{self.num_instances}')
        if self.apex_jitter_std < 0:
            raise ValueError(f'SamplingConfig.apex_jitter_std must be >= 0, '
                             f'got {self.apex_jitter_std}')
        if self.apex_source not in APEX_SOURCES:
            raise ValueError(f'SamplingConfig.apex_source={self.apex_source!r} is '
                             f'unknown; valid: {", ".join(APEX_SOURCES)}')
        if self.missing_apex not in MISSING_APEX:
            raise ValueError(f'SamplingConfig.missing_apex={self.missing_apex!r} is '
                             f'unknown; valid: {", ".join(MISSING_APEX)}')
        if self.target_fps is not None:
            fps = self.target_fps
            if isinstance(fps, bool) or not isinstance(fps, (int, float)) or \
                    not math.isfinite(fps) or fps <= 0:
                raise ValueError(f'SamplingConfig.target_fps must be a positive '
                                 f'number or None, got {fps!r}')
        if not 0 <= self.spot_sigma <= 1:
            raise ValueError(f'SamplingConfig.spot_sigma must be in [0, 1] (a '
                             f'fraction of the clip), got {self.spot_sigma}')
        if not 0 <= self.spot_margin < 0.5:
            raise ValueError(f'SamplingConfig.spot_margin must be in [0, 0.5), '
                             f'got {self.spot_margin}')

    def key_dict(self) -> Dict:
        """The fields that identify an instance set (for cache keys).

        Fields added after the first cache format (``apex_source`` and
        later) appear only when they differ from their default, so instance
        sets cached before they existed keep their keys; the spotter's
        settings appear only when the spotter can be used.
        """
        out = asdict(self)
        defaults = {f.name: f.default for f in fields(self)}
        for name in ('apex_source', 'missing_apex', 'target_fps'):
            if out[name] == defaults[name]:
                del out[name]
        if self.apex_source == 'annotation':
            del out['spot_sigma'], out['spot_margin']
        return out


def clip_rng(seed: int, sample_id: str) -> np.random.Generator:
    """A generator seeded from ``(seed, sample_id)``, stable across runs.

    Python's ``hash()`` of a string is salted per process, so the id is
    hashed with SHA-256 instead.
    """
    digest = hashlib.sha256(sample_id.encode('utf-8')).digest()
    return np.random.default_rng(
        [int(seed), int.from_bytes(digest[:8], 'little')])


# --------------------------------------------------------------------------
# apex spotting
# --------------------------------------------------------------------------
def spot_apex(motion: Sequence[float], sigma: float = 0.05,
              margin: float = 0.1) -> int:
    """The spotted apex: where the onset->frame motion of the face peaks.

    ``motion[t]`` is the size of the motion from the onset to frame ``t``
    (``motion[0]``, onset->onset, is 0); a micro-expression's displacement
    from the onset grows to the apex and decays to the offset, so its
    maximum is the apex. The curve is smoothed with a Gaussian of
    ``sigma * (T - 1)`` frames (edges replicated) against single-frame
    spikes (noise, a blink frame), and the peak is searched in
    ``[margin, 1 - margin]`` of the clip (at least position 1), away from
    the onset and from the offset.

    Args:
        motion: Per-frame motion, one value per frame of the clip (``T``).
        sigma: Smoothing as a fraction of ``T - 1``; 0 = none.
        margin: Excluded fraction at each end.

    Returns:
        The apex position in ``[1, T - 1]`` (the first on ties).

    Raises:
        ValueError: Fewer than 2 values, or a value that is not finite.
    """
    m = np.asarray(motion, dtype=np.float64).reshape(-1)
    if m.size < 2:
        raise ValueError(f'spot_apex needs the motion of at least 2 frames, got {m.size}')
    if not np.isfinite(m).all():
        bad = int(np.flatnonzero(~np.isfinite(m))[0])
        raise ValueError(f'spot_apex: motion of frame position {bad} is {m[bad]}')
    last = m.size - 1
    s = sigma * last
    if s >= 0.5:
        # Written out (not scipy): a few lines, and the edge rule is explicit.
        radius = int(math.ceil(3 * s))
        k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / s) ** 2)
        m = np.convolve(np.pad(m, radius, mode='edge'), k / k.sum(), mode='valid')
    lo = max(1, int(math.ceil(margin * last)))
    hi = min(last, int(math.floor((1 - margin) * last)))
    if lo > hi:
        lo, hi = 1, last
    return lo + int(np.argmax(m[lo:hi + 1]))


MotionFn = Callable[[object], Sequence[float]]


def spotted_apex_position(record, sampling_cfg: SamplingConfig,
                          motion_fn: Optional[MotionFn] = None) -> int:
    """The spotter's apex of a record, as an index into its frame list.

    Taken from ``record.meta['apex_spotted']`` (a frame number, written by
    whoever has the clip's flows, e.g. the flow cache) when present, else
    from ``spot_apex(motion_fn(record))``.

    Raises:
        ValueError: Neither is available, or the motion has the wrong length.
    """
    frame = (record.meta or {}).get('apex_spotted')
    if frame is not None:
        numbers = list(record.frame_numbers)
        if not numbers:
            raise ValueError(f'sample {record.sample_id}: meta apex_spotted={frame} '
                             'but the record lists no frames')
        return min(range(len(numbers)), key=lambda i: abs(numbers[i] - int(frame)))
    if motion_fn is None:
        raise ValueError(f'sample {record.sample_id}: sampling.apex_source='
                         f'{sampling_cfg.apex_source!r} needs the spotter, but no '
                         "per-frame motion was given (motion_fn) and meta['apex_spotted'] "
                         'is not set')
    motion = np.asarray(motion_fn(record), dtype=np.float64).reshape(-1)
    if motion.size != record.num_frames:
        raise ValueError(f'sample {record.sample_id}: the motion curve has {motion.size} '
                         f'values for {record.num_frames} frames')
    return spot_apex(motion, sampling_cfg.spot_sigma, sampling_cfg.spot_margin)


def resolve_apex(record, sampling_cfg: SamplingConfig,
                 motion_fn: Optional[MotionFn] = None) -> Tuple[Optional[int], str]:
    """Where a record's apex comes from under ``sampling_cfg.apex_source``.

    Returns:
        ``(position or None, how)`` with ``how`` one of ``'annotation'``,
        ``'spotted'`` or ``'missing'`` (no annotation and no spotter asked).
    """
    source = sampling_cfg.apex_source
    if source == 'annotation':
        pos = record.apex_position()
        return (pos, 'annotation') if pos is not None else (None, 'missing')
    if source == 'annotation_or_spotted':
        pos = record.apex_position()
        if pos is not None:
            return pos, 'annotation'
    return spotted_apex_position(record, sampling_cfg, motion_fn), 'spotted'


def motion_from_flows(flows: np.ndarray) -> np.ndarray:
    """Per-frame motion of onset->frame flows, the spotter's signal.

    For each frame ``t``, the mean over pixels of ``|w_t - median(w_t)|``
    with ``w_t`` the onset->frame flow; subtracting the median flow removes a
    global head shift, which would otherwise grow through the clip and pull
    the peak to the end.

    Args:
        flows: ``(T, H, W, >=2)`` flows (``[u, v, ...]``), frame 0 the onset.

    Returns:
        ``(T,)`` float64.
    """
    out = np.zeros(len(flows))
    for t, f in enumerate(flows):
        w = np.asarray(f[..., :2], dtype=np.float64)
        w = w - np.median(w.reshape(-1, 2), axis=0)
        out[t] = float(np.sqrt((w ** 2).sum(-1)).mean())
    return out


def onset_motion(record, flow_cfg=None) -> np.ndarray:
    """A reference ``motion_fn`` that computes the flow of every frame itself.

    The dataset uses the flow cache instead
    (``motion_from_flows(cache.flows_at(record, range(T)))``), so the flows
    the spotter needs are computed once and shared with every sampling.

    Args:
        record: A clip record with frames.
        flow_cfg: A :class:`raicl_mm.flow.FlowConfig` (None: its defaults).

    Returns:
        ``(T,)`` float64, 0 at the onset.
    """
    from raicl_mm.flow import FlowConfig
    from raicl_mm.flow import tvl1
    from raicl_mm.flow.instances import load_clip_frames
    cfg = flow_cfg if flow_cfg is not None else FlowConfig()
    positions = list(range(1, record.num_frames))
    onset, frames = load_clip_frames(record, positions, cfg)
    flows = [np.zeros(onset.shape + (2,))] + [
        tvl1.flow_instance(onset, frame, cfg.method) for frame in frames]
    return motion_from_flows(np.stack([f[..., :2] for f in flows]))


# --------------------------------------------------------------------------
# frame-rate normalisation
# --------------------------------------------------------------------------
def resample_indices(frame_numbers: Sequence[int], fps: float,
                     target_fps: float) -> List[int]:
    """The real frame of each instant of the clip resampled to ``target_fps``.

    Uniform frame sampling: instant ``k`` is at ``k / target_fps`` seconds
    after the onset and takes the real frame nearest in time (frame numbers
    give the times, so frames missing on disk are never invented). Down-
    sampling skips frames; upsampling repeats them.

    Args:
        frame_numbers: The clip's frame numbers (onset first, ascending).
        fps: The clip's recorded rate.
        target_fps: The wanted rate.

    Returns:
        Indices into ``frame_numbers``, non-decreasing, starting at 0 and
        ending at the last frame's instant; at least 2 when the clip has 2
        frames.
    """
    if not fps or fps <= 0:
        raise ValueError(f'resampling to {target_fps} fps needs the clip\'s frame rate, '
                         f'got fps={fps!r}')
    numbers = np.asarray(frame_numbers, dtype=np.float64)
    if numbers.size == 0:
        return []
    times = (numbers - numbers[0]) / float(fps)
    count = int(math.floor(times[-1] * target_fps + 1e-9)) + 1
    if numbers.size >= 2:
        count = max(count, 2)
    instants = np.arange(count) / float(target_fps)
    if numbers.size >= 2 and count == 2 and instants[1] > times[-1]:
        instants[1] = times[-1]
    right = np.clip(np.searchsorted(times, instants), 1, max(1, times.size - 1))
    left = right - 1
    if times.size == 1:
        return [0] * count
    pick = np.where(np.abs(times[left] - instants) <= np.abs(times[right] - instants),
                    left, right)
    return [int(i) for i in pick]


def clip_positions(record, sampling_cfg: SamplingConfig,
                   motion_fn: Optional[MotionFn] = None) -> List[int]:
    """The positions of ``record``'s instance set under ``sampling_cfg``.

    Args:
        record: A :class:`~raicl_mm.datasets.records.ClipRecord`.
        sampling_cfg: The sampling configuration.
        motion_fn: ``record -> (T,)`` per-frame onset->frame motion, used
            when the spotter is asked for and ``meta['apex_spotted']`` is
            absent (e.g. :func:`onset_motion`).

    Returns:
        Sorted unique indices into ``record.frame_paths`` in ``[1, T-1]``.

    Raises:
        ValueError: The spotter is needed but has no motion; an apex-based
            strategy on a clip without apex with ``missing_apex='error'``;
            ``target_fps`` on a clip without a frame rate.
    """
    cfg = sampling_cfg
    rng = clip_rng(cfg.seed, record.sample_id)
    apex_pos = None
    if cfg.strategy in APEX_STRATEGIES:
        apex_pos, how = resolve_apex(record, cfg, motion_fn)
        if how == 'missing':
            if cfg.missing_apex == 'error':
                raise ValueError(f'sample {record.sample_id}: sampling strategy '
                                 f'{cfg.strategy!r} needs an apex and the sheet has '
                                 "none; set sampling.apex_source='annotation_or_spotted' "
                                 "or sampling.missing_apex='centre'")
            apex_pos = (record.num_frames - 1) // 2 if record.num_frames > 2 else 1
            warnings.warn(f'sample {record.sample_id}: no apex for strategy '
                          f'{cfg.strategy!r}; falling back to the clip centre '
                          f'(position {apex_pos} of {record.num_frames} frames)',
                          stacklevel=2)
    if cfg.target_fps is None:
        return sample_positions(record.num_frames, cfg.strategy, int(cfg.num_instances),
                                apex_pos, float(cfg.apex_jitter_std), rng)
    index = resample_indices(record.frame_numbers or list(range(record.num_frames)),
                             record.fps, float(cfg.target_fps))
    apex_v = None
    if apex_pos is not None:
        # The resampled instant nearest to the real apex.
        apex_v = min(range(1, len(index)), key=lambda k: abs(index[k] - apex_pos))
    virtual = sample_positions(len(index), cfg.strategy, int(cfg.num_instances),
                               apex_v, float(cfg.apex_jitter_std), rng)
    real = sorted({index[k] for k in virtual} - {0})
    # Upsampling a short clip can map the first instants back onto the onset.
    return real or [1]


def apex_report(records, sampling_cfg: SamplingConfig,
                motion_fn: Optional[MotionFn] = None) -> Dict:
    """Where each clip's apex comes from, counted (for logs and dataset_info).

    Args:
        records: Clip records.
        sampling_cfg: The sampling configuration.
        motion_fn: As for :func:`clip_positions`; when None, clips that need
            the spotter are counted as ``'to_spot'``.

    Returns:
        ``dict(strategy, apex_source, uses_apex, counts={annotation, spotted,
        to_spot, centre_fallback}, centre_fallback=[sample ids])``; with a
        strategy that reads no apex only ``uses_apex=False``.
    """
    cfg = sampling_cfg
    out = dict(strategy=cfg.strategy, apex_source=cfg.apex_source,
               uses_apex=cfg.strategy in APEX_STRATEGIES)
    if not out['uses_apex']:
        return out
    counts = dict(annotation=0, spotted=0, to_spot=0, centre_fallback=0)
    fallback = []
    for record in records:
        has = record.apex_position() is not None
        if cfg.apex_source == 'annotation' and not has:
            counts['centre_fallback'] += 1
            fallback.append(record.sample_id)
        elif cfg.apex_source == 'annotation' or (
                cfg.apex_source == 'annotation_or_spotted' and has):
            counts['annotation'] += 1
        elif motion_fn is None and (record.meta or {}).get('apex_spotted') is None:
            counts['to_spot'] += 1
        else:
            counts['spotted'] += 1
    out.update(counts=counts, centre_fallback=fallback)
    return out
