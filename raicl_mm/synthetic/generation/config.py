"""Every knob of the synthetic set, checked (:class:`SyntheticConfig`)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, Optional, Tuple

from .classes import DESIGNS, SECONDARY_REGIONS, SYNTHETIC_CLASSES


@dataclass
class SyntheticConfig:
    """Every knob of the synthetic set.

    Attributes:
        num_subjects: Number of subjects (``sub01``...).
        clips_per_subject: Clips per subject; classes are balanced within a
            subject (round robin over ``classes``) and shuffled.
        size: Frame width and height in pixels.
        min_len: Shortest clip, in frames (onset to offset inclusive).
        max_len: Longest clip, in frames. Lengths are spread evenly over
            ``[min_len, max_len]`` across the whole set, then shuffled.
        amplitude: ``(low, high)`` peak displacement at the apex, in pixels
            of the output frame; drawn uniformly per clip.
        apex_range: ``(low, high)`` position of the apex as a fraction of
            the clip, drawn uniformly per clip.
        onset_range: ``(low, high)`` first frame number of a clip (CASME II
            frame numbers start at an offset into the source video).
        blink_prob: Probability that a clip contains an eye blink.
        blink_frames: ``(low, high)`` length of a blink in frames.
        head_shift_px: Largest global head drift within a clip, in pixels;
            each clip drifts by a random amount up to this.
        noise_std: Standard deviation of per-frame sensor noise (grey levels).
        texture_contrast: Standard deviation of the skin's band-pass texture
            (grey levels).
        mask_threshold: A pixel is in the motion mask where the displacement
            field reaches this fraction of its peak.
        color: Write colour (BGR) frames, as CASME II; else grey frames.
        jpeg_quality: JPEG quality of the frames (1-100).
        supersample: Faces are drawn and warped at ``size * supersample`` and
            reduced with area averaging, so that the onset frame goes through
            the same resampling as every other frame.
        classes: Emotions to generate, a subset of :data:`SYNTHETIC_CLASSES`.
        seed: Seed of everything.
        design: ``'distinct'`` (the demo: each class moves its own region)
            or ``'shared_primary'`` (benchmark v2: every class moves one
            shared primary region, :data:`PRIMARY_REGION`, and a weaker
            class-specific secondary region, :data:`SECONDARY_REGIONS`) or
            ``'strong_weak'`` (benchmark v3: ``shared_primary`` plus a weak
            class-specific region, :data:`WEAK_REGIONS`, at ``weak_ratio`` of
            the secondary's peak, with its own timing).
        class_weights: Fraction of clips of each class (same order as
            ``classes``); the set holds exactly the rounded counts
            (largest remainder), shuffled over all subjects. None = the
            demo's round robin within each subject.
        clips_range: ``(low, high)`` clips of one subject, drawn uniformly per
            subject (real sets are unbalanced across subjects); None = every
            subject has ``clips_per_subject``.
        amplitude_dist: ``'uniform'`` or ``'log_uniform'`` draw of the peak
            amplitude within ``amplitude``.
        subject_amplitude_std: Std of a per-subject log-normal factor on the
            amplitude (some people move more); 0 = none.
        secondary_ratio: ``(low, high)`` peak of the secondary region as a
            fraction of the primary's (``shared_primary`` only).
        secondary_lag: ``(low, high)`` shift of the secondary region's apex
            from the primary's, as a fraction of the clip length.
        weak_ratio: ``(low, high)`` peak of the weak region as a fraction of
            the secondary's (``strong_weak`` only; at most 0.5).
        weak_lag: ``(low, high)`` shift of the weak region's apex from the
            primary's, as a fraction of the clip length (``strong_weak``).
        apex_error_std: Std of the apex annotation error, as a fraction of
            the clip length: the sheet's ApexFrame is the true apex of the
            primary region plus this Gaussian error (the manifest keeps the
            truth as ``true_apex``); 0 = the sheet holds the true apex.
        distractor_prob: Probability that a clip also moves a class-independent
            distractor region (:data:`DISTRACTOR_REGIONS`) with its own timing.
        distractor_ratio: ``(low, high)`` peak of the distractor as a fraction
            of the primary's.
        illumination_std: Std of the per-frame global gain change (a random
            walk, fraction of the grey level) plus a moving shading gradient.
        head_rotation_deg: Largest in-plane head rotation within a clip.
        jpeg_quality_range: ``(low, high)`` JPEG quality drawn per clip; None
            = ``jpeg_quality`` for every clip.
        shuffle_labels: The label-shuffled control: when set (a seed), the
            sheet's emotion and action units are a random permutation of the
            true ones over the whole set (class counts kept); the frames and
            masks are those of the unshuffled set and the manifest keeps the
            truth (``emotion``) beside ``sheet_emotion``. None = true labels.
    """

    num_subjects: int = 8
    clips_per_subject: int = 12
    size: int = 128
    min_len: int = 9
    max_len: int = 40
    amplitude: Tuple[float, float] = (0.6, 1.5)
    apex_range: Tuple[float, float] = (0.25, 0.75)
    onset_range: Tuple[int, int] = (30, 200)
    blink_prob: float = 0.3
    blink_frames: Tuple[int, int] = (5, 12)
    head_shift_px: float = 0.5
    noise_std: float = 1.0
    texture_contrast: float = 7.0
    mask_threshold: float = 0.2
    color: bool = True
    jpeg_quality: int = 95
    supersample: int = 2
    classes: Tuple[str, ...] = ('surprise', 'happiness', 'disgust')
    seed: int = 0
    design: str = 'distinct'
    class_weights: Optional[Tuple[float, ...]] = None
    clips_range: Optional[Tuple[int, int]] = None
    amplitude_dist: str = 'uniform'
    subject_amplitude_std: float = 0.0
    secondary_ratio: Tuple[float, float] = (0.3, 0.6)
    secondary_lag: Tuple[float, float] = (0.0, 0.0)
    weak_ratio: Tuple[float, float] = (0.3, 0.5)
    weak_lag: Tuple[float, float] = (0.0, 0.0)
    apex_error_std: float = 0.0
    distractor_prob: float = 0.0
    distractor_ratio: Tuple[float, float] = (0.3, 0.6)
    illumination_std: float = 0.0
    head_rotation_deg: float = 0.0
    jpeg_quality_range: Optional[Tuple[int, int]] = None
    shuffle_labels: Optional[int] = None

    def validate(self) -> 'SyntheticConfig':
        """Check every option; raise ``ValueError`` naming the bad one."""

        def bad(name: str, why: str) -> None:
            raise ValueError(
                f'SyntheticConfig.{name} = {getattr(self, name)!r}: {why}')

        def pair(name: str) -> Tuple[Any, Any]:
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or len(value) != 2:
                bad(name, 'must be a (low, high) pair')
            if value[0] > value[1]:
                bad(name, 'low must not exceed high')
            return value[0], value[1]

        for name in ('num_subjects', 'clips_per_subject'):
            if int(getattr(self, name)) < 1:
                bad(name, 'must be at least 1')
        if self.num_subjects > 99:
            bad('num_subjects', 'CASME II subject folders hold two digits '
                '(sub01..sub99)')
        if self.clips_per_subject > 99:
            bad('clips_per_subject', 'clip names hold two digits (EP01..EP99)')
        if self.size < 32:
            bad('size', 'must be at least 32 pixels')
        if self.min_len < 2:
            bad('min_len', 'a clip needs at least 2 frames (onset and more)')
        if self.max_len < self.min_len:
            bad('max_len', f'must be >= min_len ({self.min_len})')
        lo, _ = pair('amplitude')
        if lo <= 0:
            bad('amplitude', 'must be positive')
        lo, hi = pair('apex_range')
        if lo < 0 or hi > 1:
            bad('apex_range', 'must lie within [0, 1]')
        lo, _ = pair('onset_range')
        if lo < 0:
            bad('onset_range', 'frame numbers must be >= 0')
        lo, _ = pair('blink_frames')
        if lo < 2:
            bad('blink_frames', 'a blink lasts at least 2 frames')
        if not 0.0 <= self.blink_prob <= 1.0:
            bad('blink_prob', 'must lie within [0, 1]')
        for name in ('head_shift_px', 'noise_std', 'texture_contrast'):
            if getattr(self, name) < 0:
                bad(name, 'must be >= 0')
        if not 0.0 < self.mask_threshold < 1.0:
            bad('mask_threshold', 'must lie strictly between 0 and 1')
        if not 1 <= self.jpeg_quality <= 100:
            bad('jpeg_quality', 'must lie within [1, 100]')
        if self.supersample < 1:
            bad('supersample', 'must be at least 1')
        if not self.classes:
            bad('classes', 'must name at least one class')
        unknown = [c for c in self.classes if c not in SYNTHETIC_CLASSES]
        if unknown:
            bad('classes', f'unknown {unknown}; choose from '
                f'{sorted(SYNTHETIC_CLASSES)}')
        if len(set(self.classes)) != len(self.classes):
            bad('classes', 'contains duplicates')
        if self.design not in DESIGNS:
            bad('design', f'choose from {DESIGNS}')
        if self.class_weights is not None:
            w = self.class_weights
            if (not isinstance(w, (tuple, list)) or len(w) != len(self.classes)
                    or any(not isinstance(v, (int, float)) or v <= 0 for v in w)):
                bad('class_weights', f'needs {len(self.classes)} positive '
                    'numbers, one per class')
        if self.clips_range is not None:
            lo, hi = pair('clips_range')
            if lo < 1 or hi > 99:
                bad('clips_range', 'must lie within [1, 99]')
        if self.amplitude_dist not in ('uniform', 'log_uniform'):
            bad('amplitude_dist', "choose 'uniform' or 'log_uniform'")
        for name in ('secondary_ratio', 'distractor_ratio'):
            lo, _ = pair(name)
            if lo < 0:
                bad(name, 'must be >= 0')
        lo, hi = pair('secondary_lag')
        if lo < -1 or hi > 1:
            bad('secondary_lag', 'must lie within [-1, 1]')
        for name in ('subject_amplitude_std', 'apex_error_std',
                     'illumination_std', 'head_rotation_deg'):
            if getattr(self, name) < 0:
                bad(name, 'must be >= 0')
        if not 0.0 <= self.distractor_prob <= 1.0:
            bad('distractor_prob', 'must lie within [0, 1]')
        if self.jpeg_quality_range is not None:
            lo, hi = pair('jpeg_quality_range')
            if lo < 1 or hi > 100:
                bad('jpeg_quality_range', 'must lie within [1, 100]')
        if self.design in ('shared_primary', 'strong_weak'):
            missing = [c for c in self.classes if c not in SECONDARY_REGIONS]
            if missing:
                bad('classes', f'{missing} have no secondary region')
        lo, hi = pair('weak_ratio')
        if not 0.0 < lo <= hi <= 0.5:
            bad('weak_ratio', 'must satisfy 0 < low <= high <= 0.5 (the weak '
                'region at most half the strong one)')
        lo, hi = pair('weak_lag')
        if not -1.0 <= lo <= hi <= 1.0:
            bad('weak_lag', 'must lie within [-1, 1]')
        return self

    def to_json(self) -> Dict[str, Any]:
        """The configuration as it reads back from JSON (tuples -> lists)."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> 'SyntheticConfig':
        """Rebuild a configuration stored by :meth:`to_json`."""
        known = {f.name for f in fields(cls)}
        kwargs = {k: (tuple(v) if isinstance(v, list) else v)
                  for k, v in data.items() if k in known}
        return cls(**kwargs)
