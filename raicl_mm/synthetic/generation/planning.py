"""Planning a set: every subject and clip decided before any pixel.

Subjects' faces, clip lengths, classes (balanced per subject or by
``class_weights``), onsets, apexes, amplitudes, the benchmark's regions and
their timing, and the nuisances of every clip, each drawn from its own seeded
stream keyed by ``(seed, subject, clip)``.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .classes import (DISTRACTOR_REGIONS, PRIMARY_REGION, SECONDARY_REGIONS,
                      SYNTHETIC_CLASSES, WEAK_REGIONS)
from .config import SyntheticConfig
from .face import SubjectFace, make_subject
from .files import FRAMES_DIR, MASKS_DIR
from .motion import temporal_profile
from .nuisances import plan_blink, plan_head_drift, plan_nuisances


def _spread_lengths(n: int, lo: int, hi: int, rng: np.random.Generator
                    ) -> np.ndarray:
    """``n`` lengths spread evenly over ``[lo, hi]`` (stratified), shuffled."""
    span = hi - lo + 1
    strata = (np.arange(n) + rng.uniform(0, 1, n)) / n
    return rng.permutation(lo + np.minimum((strata * span).astype(int), span - 1))


def plan(cfg: SyntheticConfig) -> Tuple[List[SubjectFace], List[Dict[str, Any]]]:
    """Decide every subject and clip of a set (no pixels yet).

    Returns:
        ``(faces, clips)``; each clip is a JSON-able dict with its subject,
        name, emotion, frame numbers, amplitude and distractor settings.
    """
    cfg.validate()
    faces = [make_subject(np.random.default_rng([cfg.seed, 0, s]))
             for s in range(cfg.num_subjects)]
    counts = clips_per_subject(cfg)
    starts = np.concatenate([[0], np.cumsum(counts)])
    set_rng = np.random.default_rng([cfg.seed, 2])
    lengths = _spread_lengths(int(starts[-1]), cfg.min_len, cfg.max_len, set_rng)
    labels = _set_labels(cfg, int(starts[-1]))
    clips = []
    for s in range(cfg.num_subjects):
        if labels is None:
            sub_rng = np.random.default_rng([cfg.seed, 3, s])
            order = [cfg.classes[i % len(cfg.classes)]
                     for i in range(cfg.clips_per_subject)]
            order = [order[i] for i in sub_rng.permutation(len(order))]
        else:
            order = labels[starts[s]:starts[s + 1]]
        # Some people move more than others (a per-subject amplitude factor).
        sub_gain = float(np.exp(np.random.default_rng([cfg.seed, 5, s]).normal(
            0.0, cfg.subject_amplitude_std))) if cfg.subject_amplitude_std else 1.0
        for c, emotion in enumerate(order):
            rng = np.random.default_rng([cfg.seed, 1, s, c])
            length = int(lengths[starts[s] + c])
            onset = int(rng.integers(cfg.onset_range[0], cfg.onset_range[1] + 1))
            apex_idx = int(round(rng.uniform(*cfg.apex_range) * (length - 1)))
            suffix = 'f' if rng.uniform() < 0.5 else ''
            clip = {
                'subject': f'{s + 1:02d}',
                'subject_index': s,
                'clip_index': c,
                'filename': f'EP{c + 1:02d}_{int(rng.integers(1, 7)):02d}{suffix}',
                'emotion': emotion,
                'action_units': SYNTHETIC_CLASSES[emotion]['action_units'],
                'onset': onset,
                'apex': onset + apex_idx,
                'offset': onset + length - 1,
                'num_frames': length,
                'amplitude_px': float(rng.uniform(*cfg.amplitude)),
            }
            # Benchmark features draw from their own stream, so the demo's
            # clips stay byte-identical.
            brng = np.random.default_rng([cfg.seed, 4, s, c])
            _plan_benchmark(cfg, clip, apex_idx, sub_gain, brng)
            blink = plan_blink(cfg, rng, onset, length)
            drift = plan_head_drift(cfg, rng, length)
            clip['distractors'] = {
                'blink': blink,
                'head_shift_px': float(np.sqrt((drift ** 2).sum(1)).max()),
                'noise_std': float(cfg.noise_std),
            }
            clip['_drift'] = drift.round(6).tolist()
            plan_nuisances(cfg, clip, brng)
            clip['noise_seed'] = int(rng.integers(0, 2**31 - 1))
            clip['frames_dir'] = f'{FRAMES_DIR}/sub{clip["subject"]}/{clip["filename"]}'
            clip['mask'] = f'{MASKS_DIR}/sub{clip["subject"]}/{clip["filename"]}.png'
            if cfg.design != 'distinct':
                stem = f'{MASKS_DIR}/sub{clip["subject"]}/{clip["filename"]}'
                clip['mask_primary'] = f'{stem}_primary.png'
                clip['mask_secondary'] = f'{stem}_secondary.png'
            if cfg.design == 'strong_weak':
                clip['mask_weak'] = f'{stem}_weak.png'
            clips.append(clip)
    if cfg.shuffle_labels is not None:
        order = np.random.default_rng([cfg.seed, 8, int(cfg.shuffle_labels)]
                                      ).permutation(len(clips))
        for clip, j in zip(clips, order):
            clip['sheet_emotion'] = clips[j]['emotion']
    return faces, clips


def clips_per_subject(cfg: SyntheticConfig) -> np.ndarray:
    """Clip count of every subject (``clips_range`` drawn per subject)."""
    if cfg.clips_range is None:
        return np.full(cfg.num_subjects, cfg.clips_per_subject, int)
    rng = np.random.default_rng([cfg.seed, 7])
    lo, hi = cfg.clips_range
    return rng.integers(lo, hi + 1, cfg.num_subjects)


def _set_labels(cfg: SyntheticConfig, total: int) -> Optional[List[str]]:
    """Every clip's class when ``class_weights`` is set, else None.

    The counts are the weights' largest-remainder rounding of ``total``, so
    the set's balance is exact and not left to chance; the order is shuffled
    over the whole set (subjects hold different mixes, as in real sets).
    """
    if cfg.class_weights is None:
        return None
    w = np.asarray(cfg.class_weights, float)
    share = w / w.sum() * total
    counts = np.floor(share).astype(int)
    for i in np.argsort(-(share - counts))[:total - counts.sum()]:
        counts[i] += 1
    labels = np.repeat(np.arange(len(w)), counts)
    labels = np.random.default_rng([cfg.seed, 6]).permutation(labels)
    return [cfg.classes[i] for i in labels]


def _draw_amplitude(cfg: SyntheticConfig, rng: np.random.Generator) -> float:
    lo, hi = cfg.amplitude
    if cfg.amplitude_dist == 'log_uniform':
        return float(lo * (hi / lo) ** rng.uniform())
    return float(rng.uniform(lo, hi))


def _shifted_apex(length: int, apex_idx: int, shift: float) -> int:
    """``apex_idx`` moved by ``shift`` clip lengths, kept in ``[1, T-1]``."""
    return int(min(max(round(apex_idx + shift * (length - 1)), 1),
                   max(length - 1, 1)))


def _plan_benchmark(cfg: SyntheticConfig, clip: Dict[str, Any], apex_idx: int,
                    sub_gain: float, rng: np.random.Generator) -> None:
    """Add the truth of the benchmark's features to a planned clip.

    Sets ``true_apex`` (the primary region's apex, which drives the frames)
    and, from ``apex_error_std``, the annotated ``apex`` written in the sheet;
    the per-frame ``intensity`` of every moving region; for
    ``shared_primary`` the secondary region, its peak and apex; and an
    optional class-independent distractor.
    """
    length = clip['num_frames']
    onset = clip['onset']
    clip['true_apex'] = onset + apex_idx
    if cfg.design != 'distinct' or cfg.amplitude_dist != 'uniform' \
            or sub_gain != 1.0:
        amp = _draw_amplitude(cfg, rng) * sub_gain
        clip['amplitude_px'] = float(np.clip(amp, *cfg.amplitude))
    if cfg.apex_error_std > 0 and length > 2:
        # The coder's apex: truth plus a Gaussian error, kept inside the clip.
        err = rng.normal(0.0, cfg.apex_error_std * length)
        clip['apex'] = onset + _shifted_apex(length, apex_idx, err / max(length - 1, 1))
    intensity = {'primary': temporal_profile(length, apex_idx)}
    clip['regions'] = {'primary': (PRIMARY_REGION if cfg.design != 'distinct'
                                   else clip['emotion'])}
    if cfg.design != 'distinct':
        ratio = float(rng.uniform(*cfg.secondary_ratio))
        sec_apex = _shifted_apex(length, apex_idx,
                                 float(rng.uniform(*cfg.secondary_lag)))
        intensity['secondary'] = temporal_profile(length, sec_apex)
        clip['regions']['secondary'] = SECONDARY_REGIONS[clip['emotion']]
        clip['secondary_px'] = clip['amplitude_px'] * ratio
        clip['secondary_apex'] = onset + sec_apex
    if cfg.design == 'strong_weak':
        weak_apex = _shifted_apex(length, apex_idx,
                                  float(rng.uniform(*cfg.weak_lag)))
        intensity['weak'] = temporal_profile(length, weak_apex)
        clip['regions']['weak'] = WEAK_REGIONS[clip['emotion']]
        clip['weak_px'] = clip['secondary_px'] * float(
            rng.uniform(*cfg.weak_ratio))
        clip['weak_apex'] = onset + weak_apex
    if cfg.distractor_prob > 0 and rng.uniform() < cfg.distractor_prob:
        region = DISTRACTOR_REGIONS[int(rng.integers(len(DISTRACTOR_REGIONS)))]
        d_apex = int(rng.integers(1, max(length - 1, 1) + 1))
        intensity['distractor'] = temporal_profile(length, min(d_apex, length - 1))
        clip['regions']['distractor'] = region
        clip['distractor_px'] = clip['amplitude_px'] * float(
            rng.uniform(*cfg.distractor_ratio))
    clip['intensity'] = {k: v.tolist() for k, v in intensity.items()}
