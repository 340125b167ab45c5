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
"""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

STRATEGIES = ('middle', 'apex_single', 'apex_window', 'full', 'random',
              'uniform', 'activation', 'decay')

#: Strategies that read the annotated apex.
APEX_STRATEGIES = ('apex_single', 'apex_window', 'activation', 'decay')


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
            protocol); 0 disables it.
        seed: Base seed; each clip's generator is seeded from
            ``(seed, sample_id)`` so ``random`` sampling and the apex jitter
            are reproducible and independent of clip order.
    """

    strategy: str = 'middle'
    num_instances: int = 16
    apex_jitter_std: float = 0.0
    seed: int = 0

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


def clip_rng(seed: int, sample_id: str) -> np.random.Generator:
    """A generator seeded from ``(seed, sample_id)``, stable across runs.

    Python's ``hash()`` of a string is salted per process, so the id is
    hashed with SHA-256 instead.
    """
    digest = hashlib.sha256(sample_id.encode('utf-8')).digest()
    return np.random.default_rng(
        [int(seed), int.from_bytes(digest[:8], 'little')])


def clip_positions(record, sampling_cfg: SamplingConfig) -> List[int]:
    """The positions of ``record``'s instance set under ``sampling_cfg``."""
    return sample_positions(
        record.num_frames, sampling_cfg.strategy,
        int(sampling_cfg.num_instances), record.apex_position(),
        float(sampling_cfg.apex_jitter_std),
        clip_rng(sampling_cfg.seed, record.sample_id))
