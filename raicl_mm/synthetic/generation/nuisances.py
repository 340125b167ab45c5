"""Step 3, nuisances: what moves or changes in a clip whatever its class.

Eye blinks, a global head drift and in-plane rotation, illumination gain and
a moving shading gradient, the JPEG quality; planned per clip (from the
clip's own random streams, so a clip's frames do not depend on the others),
applied by :func:`raicl_mm.synthetic.generation.render.render_clip`.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from .config import SyntheticConfig


def plan_blink(cfg: SyntheticConfig, rng: np.random.Generator, onset: int,
               length: int) -> Optional[Dict[str, Any]]:
    """A blink in a clip of ``length`` frames from ``onset`` (``blink_prob``),
    or None: ``{'start', 'end'}`` frame numbers and the lid's ``closure``."""
    if rng.uniform() < cfg.blink_prob:
        dur = int(rng.integers(cfg.blink_frames[0], cfg.blink_frames[1] + 1))
        dur = min(dur, length)
        start = int(rng.integers(0, length - dur + 1))
        return {'start': onset + start, 'end': onset + start + dur - 1,
                'closure': float(rng.uniform(0.7, 1.0))}
    return None


def plan_head_drift(cfg: SyntheticConfig, rng: np.random.Generator,
                    length: int) -> np.ndarray:
    """Global head drift ``(length, 2)`` in output pixels.

    A random walk pulled toward a random end point, scaled so that its
    largest excursion is drawn in ``[0, head_shift_px]``.
    """
    drift = np.zeros((length, 2))
    if cfg.head_shift_px > 0 and length > 1:
        walk = np.cumsum(rng.normal(0, 1, (length, 2)), axis=0)
        walk += np.linspace(0, 1, length)[:, None] * rng.normal(0, 3, 2)
        walk -= walk[0]
        peak = np.sqrt((walk ** 2).sum(1)).max()
        if peak > 0:
            drift = walk / peak * rng.uniform(0, cfg.head_shift_px)
    return drift


def _random_walk(rng: np.random.Generator, length: int, dims: int) -> np.ndarray:
    """A random walk from 0, drawn toward a random end point, peak |.| 1."""
    walk = np.cumsum(rng.normal(0, 1, (length, dims)), axis=0)
    walk += np.linspace(0, 1, length)[:, None] * rng.normal(0, 3, dims)
    walk -= walk[0]
    peak = np.abs(walk).max()
    return walk / peak if peak > 0 else walk


def plan_nuisances(cfg: SyntheticConfig, clip: Dict[str, Any],
                    rng: np.random.Generator) -> None:
    """Per-frame nuisances independent of the class: rotation, light, JPEG."""
    length = clip['num_frames']
    dist = clip['distractors']
    if cfg.head_rotation_deg > 0 and length > 1:
        angle = _random_walk(rng, length, 1)[:, 0] * rng.uniform(
            0, cfg.head_rotation_deg)
        clip['_rotation'] = angle.round(6).tolist()
        dist['head_rotation_deg'] = float(np.abs(angle).max())
    if cfg.illumination_std > 0 and length > 1:
        # Global gain (flicker, auto exposure) and a moving shading gradient.
        gain = _random_walk(rng, length, 1)[:, 0] * rng.uniform(
            0.5, 2.0) * cfg.illumination_std
        grad = _random_walk(rng, length, 1)[:, 0] * rng.uniform(
            0.5, 2.0) * cfg.illumination_std
        clip['_gain'] = gain.round(6).tolist()
        clip['_gradient'] = grad.round(6).tolist()
        clip['_gradient_angle'] = float(rng.uniform(0, 2 * np.pi))
        dist['illumination_gain'] = float(np.abs(gain).max())
    if cfg.jpeg_quality_range is not None:
        clip['jpeg_quality'] = int(rng.integers(cfg.jpeg_quality_range[0],
                                                cfg.jpeg_quality_range[1] + 1))


def blink_closure(clip: Dict[str, Any], frame: int) -> float:
    blink = clip['distractors']['blink']
    if not blink or not blink['start'] <= frame <= blink['end']:
        return 0.0
    dur = blink['end'] - blink['start'] + 2
    return blink['closure'] * float(np.sin(np.pi * (frame - blink['start'] + 1) / dur) ** 2)
