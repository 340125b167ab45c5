"""Step 1, the layout of a face: one subject's geometry and appearance.

Positions and lengths are fractions of the frame (:func:`norm_grid` maps a
pixel grid to them), so a subject looks the same at any size.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np


@dataclass(frozen=True)
class SubjectFace:
    """Geometry and appearance of one synthetic subject.

    Positions and lengths are fractions of the frame size (``x`` from the
    left, ``y`` from the top), so one subject looks the same at any size.
    Colours are BGR in ``[0, 255]``.
    """

    cx: float
    cy: float
    a: float  # face half width
    b: float  # face half height
    skin: Tuple[float, float, float]
    hair: Tuple[float, float, float]
    lip: Tuple[float, float, float]
    iris: Tuple[float, float, float]
    bg_top: Tuple[float, float, float]
    bg_bottom: Tuple[float, float, float]
    hairline_y: float
    eye_y: float
    eye_dx: float
    eye_rx: float
    eye_ry: float
    brow_y: float
    brow_half: float
    brow_thick: float
    brow_tilt: float  # degrees; positive lifts the outer ends
    nose_top_y: float
    nose_tip_y: float
    nose_w: float
    mouth_y: float
    mouth_hw: float
    lip_h: float
    texture_seed: int

    def eye_centers(self) -> List[Tuple[float, float]]:
        """Centres of the left and right eye (image left first)."""
        return [(self.cx - self.eye_dx, self.eye_y),
                (self.cx + self.eye_dx, self.eye_y)]

    def to_pixels(self, size: int) -> Dict[str, Any]:
        """Landmarks in pixels of a ``size`` frame (for the manifest/tests)."""
        s = float(size)
        return {
            'face_center': [self.cx * s, self.cy * s],
            'face_axes': [self.a * s, self.b * s],
            'eyes': [[x * s, y * s, self.eye_rx * s, self.eye_ry * s]
                     for x, y in self.eye_centers()],
            'brow_y': self.brow_y * s,
            'nose_tip': [self.cx * s, self.nose_tip_y * s],
            'mouth': [self.cx * s, self.mouth_y * s, self.mouth_hw * s],
            'skin_bgr': list(self.skin),
        }


def _mix(c0: Sequence[float], c1: Sequence[float], t: float
         ) -> Tuple[float, float, float]:
    return tuple(float((1 - t) * x + t * y) for x, y in zip(c0, c1))


def make_subject(rng: np.random.Generator) -> SubjectFace:
    """Draw one subject's face (shape, tone, features) from ``rng``."""
    u = rng.uniform
    cx = 0.5 + u(-0.03, 0.03)
    cy = 0.53 + u(-0.03, 0.03)
    a = u(0.37, 0.45)  # cropped frames: the face fills most of the frame
    b = u(0.47, 0.54)
    # Skin tones from light to dark, with a small hue jitter per channel.
    skin = _mix((150, 180, 228), (62, 96, 150), u(0.0, 1.0))
    skin = tuple(float(np.clip(c + u(-10, 10), 30, 245)) for c in skin)
    hair = _mix((20, 22, 26), (45, 70, 100), u(0.0, 1.0))
    lip = tuple(float(c) for c in (np.array(skin) * np.array(
        [u(0.62, 0.75), u(0.55, 0.68), u(0.85, 0.98)])))
    iris = _mix((25, 35, 45), (70, 100, 120), u(0.0, 1.0))
    grey = u(70, 210)  # studio background: greyish, little saturation
    bg_top = tuple(float(np.clip(grey + u(-15, 15), 0, 255)) for _ in range(3))
    shift = u(-50, 20)
    bg_bottom = tuple(float(np.clip(v + shift, 20, 230)) for v in bg_top)
    eye_y = cy - b * u(0.10, 0.22)
    eye_dx = a * u(0.38, 0.48)
    eye_rx = a * u(0.15, 0.20)
    eye_ry = eye_rx * u(0.40, 0.52)
    brow_y = eye_y - b * u(0.15, 0.21)
    nose_tip_y = eye_y + b * u(0.32, 0.42)
    mouth_y = nose_tip_y + b * u(0.17, 0.25)
    return SubjectFace(
        cx=cx, cy=cy, a=a, b=b, skin=skin, hair=hair, lip=lip, iris=iris,
        bg_top=bg_top, bg_bottom=bg_bottom,
        hairline_y=cy - b * u(0.62, 0.82),
        eye_y=eye_y, eye_dx=eye_dx, eye_rx=eye_rx, eye_ry=eye_ry,
        brow_y=brow_y, brow_half=eye_rx * u(1.15, 1.45),
        brow_thick=u(0.018, 0.030), brow_tilt=u(-8.0, 10.0),
        nose_top_y=eye_y + b * 0.02, nose_tip_y=nose_tip_y,
        nose_w=a * u(0.30, 0.40), mouth_y=mouth_y,
        mouth_hw=a * u(0.30, 0.40), lip_h=b * u(0.045, 0.07),
        texture_seed=int(rng.integers(0, 2**31 - 1)))


def norm_grid(res: int) -> Tuple[np.ndarray, np.ndarray]:
    """Pixel centres of a ``res`` x ``res`` grid as frame fractions."""
    c = (np.arange(res, dtype=np.float32) + 0.5) / res
    return np.meshgrid(c, c)
