"""Step 4, rendering: a subject's neutral face, then a planned clip's frames.

The face is drawn once per subject (anti-aliased OpenCV shapes at
``supersample`` x the frame size, blurred, with a band-pass skin texture);
every frame warps it by the clip's motion at that frame plus the nuisances
(``cv2.remap``), downsamples, and adds light changes and sensor noise.
"""
from __future__ import annotations

import functools
from typing import Any, Dict, List, Tuple

import cv2
import numpy as np

from .config import SyntheticConfig
from .face import SubjectFace, norm_grid
from .motion import au_field
from .nuisances import blink_closure


_SHIFT = 4  # cv2 fixed-point bits: sub-pixel shapes
_ONE = 1 << _SHIFT


def _pt(x: float, y: float, res: int) -> Tuple[int, int]:
    """Normalised point -> cv2 fixed-point pixel coordinates at ``res``."""
    return (int(round((x * res - 0.5) * _ONE)), int(round((y * res - 0.5) * _ONE)))


def _len(v: float, res: int) -> int:
    return max(1, int(round(v * res * _ONE)))


def _ellipse_alpha(res: int, center: Tuple[float, float],
                   axes: Tuple[float, float], angle: float = 0.0,
                   start: float = 0.0, end: float = 360.0,
                   thickness: float = -1.0) -> np.ndarray:
    """Anti-aliased ellipse (filled if ``thickness < 0``) as alpha in [0, 1].

    ``center``/``axes``/``thickness`` are fractions of the frame size.
    """
    canvas = np.zeros((res, res), np.uint8)
    th = -1 if thickness < 0 else max(1, int(round(thickness * res)))
    cv2.ellipse(canvas, _pt(*center, res), (_len(axes[0], res), _len(axes[1], res)),
                angle, start, end, 255, th, cv2.LINE_AA, _SHIFT)
    return canvas.astype(np.float32) / 255.0


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return img
    return cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT101)


def _over(img: np.ndarray, color: Any, alpha: np.ndarray) -> np.ndarray:
    """Alpha-composite ``color`` (BGR triple or image) over ``img``."""
    alpha = alpha[..., None]
    return img * (1.0 - alpha) + np.asarray(color, np.float32) * alpha


@functools.lru_cache(maxsize=4)
def render_face(face: SubjectFace, size: int, supersample: int = 1,
                texture_contrast: float = 7.0
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw a subject's neutral face at ``size * supersample`` pixels.

    Args:
        face: The subject.
        size: Output frame size in pixels.
        supersample: Drawing resolution factor.
        texture_contrast: Standard deviation of the skin texture.

    Returns:
        ``(open_eyes, closed_eyes, eye_region)``: two float32 BGR images in
        ``[0, 255]`` that differ only inside the eyes, and the float32 alpha
        of the region a closing eyelid covers. Treat them as read-only (the
        result is cached).
    """
    res = size * supersample
    ss = float(supersample)
    xx, yy = norm_grid(res)
    rng = np.random.default_rng(face.texture_seed)

    # Background: vertical gradient with a little grain.
    t = yy[..., None]
    img = (np.asarray(face.bg_top, np.float32) * (1 - t)
           + np.asarray(face.bg_bottom, np.float32) * t)
    img = img + 2.0 * _blur(rng.standard_normal((res, res)).astype(np.float32),
                            1.5 * ss)[..., None]

    # Skin texture: band-pass noise (pores, fine structure) + blotches.
    noise = rng.standard_normal((res, res)).astype(np.float32)
    fine = _blur(noise, 0.7 * ss) - _blur(noise, 2.5 * ss)
    fine /= fine.std() + 1e-6
    coarse = _blur(rng.standard_normal((res, res)).astype(np.float32),
                   0.05 * size * ss)
    coarse /= coarse.std() + 1e-6
    r2 = ((xx - face.cx) / face.a) ** 2 + ((yy - face.cy) / face.b) ** 2
    light = -0.5 * ((xx - face.cx) / face.a + (yy - face.cy) / face.b)
    shade = 1.0 + 0.08 * light - 0.22 * np.clip(r2 - 0.55, 0.0, 1.0) \
        + 0.03 * coarse
    skin = (np.asarray(face.skin, np.float32) * shade[..., None]
            + texture_contrast * fine[..., None])

    face_alpha = _blur(_ellipse_alpha(res, (face.cx, face.cy), (face.a, face.b)),
                       0.8 * ss)
    img = _over(img, skin, face_alpha)

    # Hair above a curved hairline, slightly wider than the face.
    hairline = face.hairline_y + 0.35 * face.b * ((xx - face.cx) / face.a) ** 2
    hair_alpha = 0.5 + 0.5 * np.tanh((hairline - yy) * size / 1.6)  # sigmoid
    hair_alpha *= _blur(_ellipse_alpha(res, (face.cx, face.cy - 0.02),
                                       (face.a * 1.08, face.b * 1.06)), 1.0 * ss)
    hair_img = (np.asarray(face.hair, np.float32)
                + 1.2 * texture_contrast * fine[..., None])
    img = _over(img, hair_img, hair_alpha)

    # Nose: soft side shading, nostrils, a highlight on the tip.
    nose_shadow = np.zeros((res, res), np.float32)
    for side in (-1, 1):
        canvas = np.zeros((res, res), np.uint8)
        cv2.line(canvas, _pt(face.cx + side * face.nose_w * 0.25, face.nose_top_y, res),
                 _pt(face.cx + side * face.nose_w * 0.42, face.nose_tip_y - 0.02, res),
                 255, max(1, int(round(0.012 * res))), cv2.LINE_AA, _SHIFT)
        nose_shadow += canvas.astype(np.float32) / 255.0
        nostril = _ellipse_alpha(
            res, (face.cx + side * face.nose_w * 0.30, face.nose_tip_y + 0.01),
            (face.nose_w * 0.17, face.nose_w * 0.09), angle=side * 15)
        img = _over(img, np.asarray(face.skin) * 0.35, 0.8 * _blur(nostril, 0.6 * ss))
    img *= (1.0 - 0.14 * _blur(np.clip(nose_shadow, 0, 1), 1.5 * ss))[..., None]
    tip = _blur(_ellipse_alpha(res, (face.cx, face.nose_tip_y - 0.01),
                               (face.nose_w * 0.22, face.nose_w * 0.16)), 2.0 * ss)
    img *= (1.0 + 0.08 * tip)[..., None]

    # Nasolabial folds and mouth.
    for side in (-1, 1):
        fold = _ellipse_alpha(
            res, (face.cx + side * (face.nose_w * 0.55 + face.mouth_hw * 0.4),
                  (face.nose_tip_y + face.mouth_y) / 2 + 0.02),
            (face.mouth_hw * 0.45, face.b * 0.16),
            start=90 - side * 90 - 60, end=90 - side * 90 + 60,
            thickness=0.01)
        img *= (1.0 - 0.10 * _blur(fold, 1.2 * ss))[..., None]
    lips = _blur(_ellipse_alpha(res, (face.cx, face.mouth_y),
                                (face.mouth_hw, face.lip_h)), 0.8 * ss)
    lip_img = (np.asarray(face.lip, np.float32)
               + 0.6 * texture_contrast * fine[..., None])
    img = _over(img, lip_img, 0.9 * lips)
    line = _ellipse_alpha(res, (face.cx, face.mouth_y - face.lip_h * 0.6),
                          (face.mouth_hw * 0.97, face.lip_h * 0.6),
                          start=15, end=165, thickness=0.011)
    img = _over(img, np.asarray(face.lip) * 0.4, 0.85 * _blur(line, 0.5 * ss))

    # Brows: thick arcs of hair colour with the hair texture.
    for (ex, _), side in zip(face.eye_centers(), (-1, 1)):
        arc = _ellipse_alpha(
            res, (ex, face.brow_y + face.brow_half * 0.35),
            (face.brow_half, face.brow_half * 0.35), angle=side * face.brow_tilt,
            start=195, end=345, thickness=face.brow_thick)
        img = _over(img, hair_img, 0.85 * _blur(arc, 0.6 * ss))

    # Eyes: socket shading, then the open and the closed version.
    eye_region = np.zeros((res, res), np.float32)
    sclera = np.zeros((res, res), np.float32)
    iris = np.zeros((res, res), np.float32)
    pupil = np.zeros((res, res), np.float32)
    upper_lid = np.zeros((res, res), np.float32)
    closed_lid = np.zeros((res, res), np.float32)
    socket = np.zeros((res, res), np.float32)
    for ex, ey in face.eye_centers():
        socket += _ellipse_alpha(res, (ex, ey - face.eye_ry * 0.4),
                                 (face.eye_rx * 1.5, face.eye_ry * 2.3))
        sclera += _ellipse_alpha(res, (ex, ey), (face.eye_rx, face.eye_ry))
        eye_region += _ellipse_alpha(res, (ex, ey),
                                     (face.eye_rx * 1.2, face.eye_ry * 1.6))
        iris += _ellipse_alpha(res, (ex, ey), (face.eye_ry * 1.05,) * 2)
        pupil += _ellipse_alpha(res, (ex, ey), (face.eye_ry * 0.45,) * 2)
        upper_lid += _ellipse_alpha(res, (ex, ey), (face.eye_rx, face.eye_ry),
                                    start=190, end=350, thickness=0.012)
        closed_lid += _ellipse_alpha(res, (ex, ey + face.eye_ry * 0.2),
                                     (face.eye_rx, face.eye_ry * 0.45),
                                     start=10, end=170, thickness=0.012)
    img *= (1.0 - 0.12 * _blur(np.clip(socket, 0, 1), 2.0 * ss))[..., None]
    sclera = _blur(np.clip(sclera, 0, 1), 0.5 * ss)
    iris = np.clip(iris, 0, 1) * sclera
    pupil = np.clip(pupil, 0, 1) * sclera
    open_img = _over(img, (210, 215, 222), 0.95 * sclera)
    open_img = _over(open_img, face.iris, iris)
    open_img = _over(open_img, (12, 12, 14), pupil)
    open_img = _over(open_img, np.asarray(face.hair) * 0.6,
                     0.9 * _blur(np.clip(upper_lid, 0, 1), 0.5 * ss))
    closed_img = _over(img, np.asarray(face.hair) * 0.6,
                       0.9 * _blur(np.clip(closed_lid, 0, 1), 0.5 * ss))

    final = [np.clip(_blur(x, 0.5 * ss), 0, 255).astype(np.float32)
             for x in (open_img, closed_img)]
    eye_region = _blur(np.clip(eye_region, 0, 1), 0.7 * ss)
    for arr in (*final, eye_region):
        arr.setflags(write=False)
    return final[0], final[1], eye_region


def warp_face(base: np.ndarray, gx: np.ndarray, gy: np.ndarray,
              dx: np.ndarray, dy: np.ndarray, angle_rad: float,
              rx: np.ndarray, ry: np.ndarray, ss: int, size: int) -> np.ndarray:
    """One frame: ``base`` moved by the displacement ``(dx, dy)`` plus a small
    in-plane head rotation of ``angle_rad`` about the face centre (``rx``,
    ``ry``: the grid relative to it), drawn at the supersampled grid and
    reduced to ``size`` with area averaging. ``dx``/``dy`` are updated."""
    if angle_rad:
        c, s_ = np.float32(np.cos(angle_rad)), np.float32(np.sin(angle_rad))
        dx += c * rx - s_ * ry - rx
        dy += s_ * rx + c * ry - ry
    warped = cv2.remap(base, gx - dx, gy - dy, cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REFLECT101)
    if ss > 1:
        warped = cv2.resize(warped, (size, size), interpolation=cv2.INTER_AREA)
    return warped


def render_clip(face: SubjectFace, clip: Dict[str, Any], cfg: SyntheticConfig
                ) -> List[np.ndarray]:
    """Render one planned clip's frames, onset first, as uint8 images."""
    ss, size = cfg.supersample, cfg.size
    res = size * ss
    open_img, closed_img, eye_region = render_face(
        face, size, ss, float(cfg.texture_contrast))
    peaks = {'primary': clip['amplitude_px'], 'secondary': clip.get('secondary_px'),
             'weak': clip.get('weak_px'), 'distractor': clip.get('distractor_px')}
    fields_ = {name: au_field(face, region, res) * np.float32(peaks[name] * ss)
               for name, region in clip['regions'].items()}
    grid = np.arange(res, dtype=np.float32)
    gx, gy = np.meshgrid(grid, grid)
    # Eyelid sweep: covers the eye region from its top down to closure.
    top = (face.eye_y - face.eye_ry * 1.6) * res
    span = face.eye_ry * 3.2 * res
    drift = np.asarray(clip['_drift'], np.float32) * ss
    rotation = np.deg2rad(np.asarray(clip.get('_rotation', [0.0] * clip['num_frames'])))
    rx, ry = gx - face.cx * res, gy - face.cy * res
    if '_gain' in clip:
        xs = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
        px, py = np.meshgrid(xs, xs)
        ang = clip['_gradient_angle']
        ramp = (2.0 * (np.cos(ang) * px + np.sin(ang) * py))[..., None]
    noise_rng = np.random.default_rng(clip['noise_seed'])
    frames = []
    for i in range(clip['num_frames']):
        closure = blink_closure(clip, clip['onset'] + i)
        if closure > 0:
            lid = np.clip((top + closure * span - gy) / (1.5 * ss) + 0.5, 0, 1)
            base = _over(open_img, closed_img, eye_region * lid)
        else:
            base = open_img
        dx = np.full_like(gx, drift[i, 0])
        dy = np.full_like(gy, drift[i, 1])
        for name, fld in fields_.items():
            k = np.float32(clip['intensity'][name][i])
            if k:
                dx += k * fld[..., 0]
                dy += k * fld[..., 1]
        warped = warp_face(base, gx, gy, dx, dy, rotation[i], rx, ry, ss, size)
        if '_gain' in clip:
            warped = warped * (1.0 + clip['_gain'][i]
                               + clip['_gradient'][i] * ramp).astype(np.float32)
        if cfg.noise_std > 0:
            warped = warped + noise_rng.normal(
                0, cfg.noise_std, warped.shape).astype(np.float32)
        frame = np.clip(np.rint(warped), 0, 255).astype(np.uint8)
        if not cfg.color:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        frames.append(frame)
    return frames
