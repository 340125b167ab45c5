"""Deterministic face-like frame pairs for the TV-L1 measurements, made with
numpy alone (no OpenCV, no raicl_mm), so that the CPU machine (OpenCV
baseline) and the GPU machine (torch TV-L1) solve the same pairs; the
SHA-256 of the uint8 pairs is recorded on both sides and compared.

A pair is a grey "face" (a smooth skin gradient, two eyes, brows, a mouth,
band-pass skin texture of 7 grey levels, as the synthetic generator's) and
the same face moved by a global shift of up to 2 px plus a smooth Gaussian
bump of 0.5-1.5 px (a micro-expression-sized local motion), both with
sensor noise (std 1 grey level), rounded to uint8.
"""
from __future__ import annotations

import hashlib
from typing import Tuple

import numpy as np


def _smooth(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur (reflect border), float64."""
    r = max(1, int(3 * sigma + 0.5))
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k /= k.sum()
    p = np.pad(img, r, mode='reflect')
    rows = sum(k[i] * p[i:i + img.shape[0], :] for i in range(2 * r + 1))
    return sum(k[i] * rows[:, i:i + img.shape[1]] for i in range(2 * r + 1))


def _ellipse(yy, xx, cy, cx, ry, rx, soft):
    d = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
    return np.clip((1.0 - d) / soft + 0.5, 0.0, 1.0)


def _face(size: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    img = 90 + 80 * _ellipse(yy, xx, 0.5, 0.5, 0.48, 0.40, 0.3)
    img += 15 * (yy - 0.5) + rng.uniform(-10, 10)
    for sx in (-1, 1):
        cx = 0.5 + sx * rng.uniform(0.14, 0.2)
        cy = rng.uniform(0.36, 0.42)
        img -= 70 * _ellipse(yy, xx, cy, cx, 0.035, 0.07, 0.4)      # eye
        img -= 40 * _ellipse(yy, xx, cy - 0.08, cx, 0.015, 0.09, 0.5)  # brow
    img -= 50 * _ellipse(yy, xx, rng.uniform(0.7, 0.76), 0.5, 0.03,
                         rng.uniform(0.12, 0.18), 0.4)              # mouth
    img -= 20 * _ellipse(yy, xx, 0.56, 0.5, 0.08, 0.03, 0.6)         # nose
    tex = _smooth(rng.standard_normal((size, size)), 1.0 * size / 112)
    tex -= _smooth(tex, 4.0 * size / 112)
    img += 7.0 * tex / (tex.std() + 1e-12)
    return img


def _bilinear(img: np.ndarray, sy: np.ndarray, sx: np.ndarray) -> np.ndarray:
    """``img`` sampled at (sy, sx), replicated border."""
    h, w = img.shape
    sy = np.clip(sy, 0, h - 1)
    sx = np.clip(sx, 0, w - 1)
    y0 = np.minimum(np.floor(sy).astype(np.int64), h - 2)
    x0 = np.minimum(np.floor(sx).astype(np.int64), w - 2)
    fy, fx = sy - y0, sx - x0
    return ((1 - fy) * ((1 - fx) * img[y0, x0] + fx * img[y0, x0 + 1]) +
            fy * ((1 - fx) * img[y0 + 1, x0] + fx * img[y0 + 1, x0 + 1]))


def make_pairs(n: int, size: int, seed: int = 0
               ) -> Tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 ``(ref, tgt)`` pairs of ``size`` px (each ``(n, size,
    size)``); pair k depends only on ``(seed, size, k)``."""
    refs, tgts = [], []
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    for k in range(n):
        rng = np.random.default_rng([seed, size, k])
        base = _face(size, rng)
        dx, dy = rng.uniform(-2, 2, 2)
        cx, cy = rng.uniform(0.3, 0.7, 2) * size
        amp = rng.uniform(0.5, 1.5)
        g = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (size / 5) ** 2))
        fx, fy = dx + amp * g, dy - amp * g
        # tgt(x + f(x)) ~ ref(x): sample ref at x - f(x).
        tgt = _bilinear(base, yy - fy, xx - fx)
        ref = base + rng.normal(0, 1.0, base.shape)
        tgt = tgt + rng.normal(0, 1.0, base.shape)
        refs.append(np.clip(np.round(ref), 0, 255).astype(np.uint8))
        tgts.append(np.clip(np.round(tgt), 0, 255).astype(np.uint8))
    return np.stack(refs), np.stack(tgts)


def sha256(refs: np.ndarray, tgts: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(refs).tobytes())
    h.update(np.ascontiguousarray(tgts).tobytes())
    return h.hexdigest()


def pairs_and_hash(n: int, size: int, seed: int = 0):
    refs, tgts = make_pairs(n, size, seed)
    return refs, tgts, sha256(refs, tgts)
