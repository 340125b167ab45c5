"""Step 2, motion: displacement fields of the classes and regions, and
their time courses.

A class or region moves the skin by a sum of Gaussian bumps placed on the
face's landmarks (:func:`au_field`, unit peak); its intensity over a clip
rises from the onset to the apex and falls to the offset
(:func:`temporal_profile`); :func:`clip_field` sums a planned clip's regions
at one frame. :func:`motion_mask` is the ground-truth region kept beside the
frames.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .classes import REGIONS, SYNTHETIC_CLASSES
from .face import SubjectFace, norm_grid


def _au_bumps(face: SubjectFace, emotion: str
              ) -> List[Tuple[float, float, float, float, float, float]]:
    """Gaussian bumps ``(x, y, sigma_x, sigma_y, vx, vy)`` of one class.

    Each bump moves the skin around ``(x, y)`` along ``(vx, vy)`` (relative
    weight); positions and sigmas are frame fractions.
    """
    f = face
    bumps = []
    if emotion == 'surprise':  # AU1 (inner brow raiser) + AU2 (outer)
        for ex, _ in f.eye_centers():
            side = 1.0 if ex > f.cx else -1.0
            inner = ex - side * f.brow_half * 0.45
            outer = ex + side * f.brow_half * 0.5
            bumps.append((inner, f.brow_y, f.brow_half * 0.45, f.b * 0.09, 0.0, -1.0))
            bumps.append((outer, f.brow_y, f.brow_half * 0.45, f.b * 0.09, 0.0, -0.9))
        bumps.append((f.cx, f.brow_y - f.b * 0.17, f.a * 0.45, f.b * 0.08, 0.0, -0.5))
    elif emotion == 'happiness':  # AU12 (lip corner puller)
        for side in (-1.0, 1.0):
            x = f.cx + side * f.mouth_hw
            bumps.append((x, f.mouth_y, f.mouth_hw * 0.35, f.b * 0.07,
                          side * 0.85, -0.55))
            bumps.append((x + side * f.mouth_hw * 0.15, f.mouth_y - f.b * 0.11,
                          f.mouth_hw * 0.35, f.b * 0.07, side * 0.25, -0.45))
    elif emotion == 'disgust':  # AU4 (brow lowerer) + AU9 (nose wrinkler)
        for ex, _ in f.eye_centers():
            side = 1.0 if ex > f.cx else -1.0
            bumps.append((ex - side * f.brow_half * 0.35, f.brow_y,
                          f.brow_half * 0.5, f.b * 0.07, -side * 0.5, 0.87))
            bumps.append((f.cx + side * f.nose_w * 0.42, f.nose_tip_y - f.b * 0.02,
                          f.nose_w * 0.22, f.b * 0.06, 0.0, -0.8))
        bumps.append((f.cx, (f.eye_y + f.nose_tip_y) / 2 - f.b * 0.02,
                      f.nose_w * 0.3, f.b * 0.07, 0.0, -0.8))
    elif emotion == 'brow_lowerer':  # AU4: brows down and inward
        for ex, _ in f.eye_centers():
            side = 1.0 if ex > f.cx else -1.0
            bumps.append((ex - side * f.brow_half * 0.35, f.brow_y,
                          f.brow_half * 0.5, f.b * 0.07, -side * 0.5, 0.87))
    elif emotion == 'nose_wrinkler':  # AU9: nose sides and bridge up
        for side in (-1.0, 1.0):
            bumps.append((f.cx + side * f.nose_w * 0.42, f.nose_tip_y - f.b * 0.02,
                          f.nose_w * 0.22, f.b * 0.06, 0.0, -0.8))
        bumps.append((f.cx, (f.eye_y + f.nose_tip_y) / 2 + f.b * 0.02,
                      f.nose_w * 0.3, f.b * 0.06, 0.0, -0.8))
    elif emotion == 'lip_corner_puller':  # AU12
        for side in (-1.0, 1.0):
            bumps.append((f.cx + side * f.mouth_hw, f.mouth_y, f.mouth_hw * 0.35,
                          f.b * 0.07, side * 0.85, -0.55))
    elif emotion == 'frontalis':  # AU1+2: upper forehead up
        for side in (-1.0, 1.0):
            bumps.append((f.cx + side * f.a * 0.3, f.brow_y - f.b * 0.2,
                          f.a * 0.2, f.b * 0.07, 0.0, -1.0))
    elif emotion == 'upper_lid_raiser':  # AU5: upper eyelids up
        for ex, _ in f.eye_centers():
            bumps.append((ex, f.eye_y - f.eye_ry * 1.2, f.brow_half * 0.45,
                          f.b * 0.05, 0.0, -1.0))
    elif emotion == 'cheek_raiser':  # AU6: cheeks up toward the eyes
        for ex, _ in f.eye_centers():
            bumps.append((ex, f.eye_y + f.b * 0.2, f.brow_half * 0.5,
                          f.b * 0.07, 0.0, -1.0))
    elif emotion == 'upper_lip_raiser':  # AU10: upper lip up
        bumps.append((f.cx, f.mouth_y - f.b * 0.06, f.mouth_hw * 0.6,
                      f.b * 0.05, 0.0, -1.0))
    elif emotion == 'dimpler':  # AU14: beside the lip corners, inward
        for side in (-1.0, 1.0):
            bumps.append((f.cx + side * f.mouth_hw * 1.3, f.mouth_y + f.b * 0.02,
                          f.mouth_hw * 0.22, f.b * 0.06, -side * 0.8, 0.2))
    elif emotion == 'chin_raiser':  # AU17: chin up
        bumps.append((f.cx, f.mouth_y + f.b * 0.22, f.a * 0.25, f.b * 0.07,
                      0.0, -0.8))
    else:
        raise ValueError(f'emotion {emotion!r} is not a synthetic class or '
                         f'region; choose from {sorted(SYNTHETIC_CLASSES)} or '
                         f'{sorted(REGIONS)}')
    return bumps


def au_field(face: SubjectFace, emotion: str, res: int,
             norm_res: Optional[int] = None) -> np.ndarray:
    """The unit-peak displacement field of one class or region on a grid.

    Args:
        face: The subject whose landmarks place the motion.
        emotion: One of :data:`SYNTHETIC_CLASSES` (the ``distinct`` design)
            or of :data:`REGIONS` (``shared_primary``).
        res: Grid size in pixels.
        norm_res: Grid on which the peak magnitude is made exactly 1
            (default ``res``). Use the drawing grid so that fields sampled at
            different resolutions share one scale.

    Returns:
        float32 array ``(res, res, 2)`` of ``(dx, dy)`` per unit amplitude
        (multiply by the amplitude in output pixels).
    """
    def raw(n: int) -> np.ndarray:
        xx, yy = norm_grid(n)
        out = np.zeros((n, n, 2), np.float32)
        for x, y, sx, sy, vx, vy in _au_bumps(face, emotion):
            g = np.exp(-0.5 * (((xx - x) / sx) ** 2 + ((yy - y) / sy) ** 2))
            out[..., 0] += vx * g
            out[..., 1] += vy * g
        return out

    norm = raw(norm_res or res)
    peak = float(np.sqrt((norm ** 2).sum(-1)).max())
    field_ = norm if not norm_res or norm_res == res else raw(res)
    return (field_ / peak).astype(np.float32)


def motion_mask(face: SubjectFace, emotion: str, size: int,
                threshold: float = 0.2, supersample: int = 2) -> np.ndarray:
    """Ground-truth motion region: uint8 0/255 where ``|field| >= threshold``.

    ``emotion`` is a class (``distinct`` design) or a region name.
    """
    fld = au_field(face, emotion, size, norm_res=size * supersample)
    mag = np.sqrt((fld ** 2).sum(-1))
    return np.where(mag >= threshold, 255, 0).astype(np.uint8)


def temporal_profile(length: int, apex_index: int) -> np.ndarray:
    """Smooth rise (onset -> apex) and fall (apex -> offset) in ``[0, 1]``.

    Raised-cosine halves: 0 at the onset, 1 at ``apex_index``, 0 at the
    offset, with zero slope at each of them.
    """
    if not 0 <= apex_index < length:
        raise ValueError(f'apex_index {apex_index} outside a clip of {length}')
    i = np.arange(length, dtype=np.float64)
    p = np.zeros(length)
    if apex_index > 0:
        rise = i <= apex_index
        p[rise] = 0.5 - 0.5 * np.cos(np.pi * i[rise] / apex_index)
    p[apex_index] = 1.0
    tail = length - 1 - apex_index
    if tail > 0:
        fall = i > apex_index
        p[fall] = 0.5 + 0.5 * np.cos(np.pi * (i[fall] - apex_index) / tail)
    return p


def clip_field(face: SubjectFace, clip: Dict[str, Any], res: int,
               frame_index: int, norm_res: Optional[int] = None) -> np.ndarray:
    """The expression's displacement at one frame of a clip, ``(res, res, 2)``.

    Sum over the clip's moving regions of peak x intensity x unit field, in
    pixels of a ``norm_res`` grid (default ``res``); rigid head motion is not
    part of it.
    """
    norm_res = norm_res or res
    scale = norm_res / float(res)
    out = np.zeros((res, res, 2), np.float32)
    peaks = {'primary': clip['amplitude_px'], 'secondary': clip.get('secondary_px'),
             'weak': clip.get('weak_px'), 'distractor': clip.get('distractor_px')}
    for name, region in clip['regions'].items():
        k = clip['intensity'][name][frame_index]
        if k:
            out += au_field(face, region, res, norm_res=norm_res) * np.float32(
                k * peaks[name] / scale)
    return out
