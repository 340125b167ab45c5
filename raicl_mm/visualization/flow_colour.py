"""Optical-flow direction maps: Algorithm 1 of the MEGC OF-direction paper.

Algorithm 1 ("OF Direction Generation"), followed literally::

    theta <- CartToPolar(flow[..., 1], flow[..., 0])   # radians, [0, 2*pi)
    h     <- theta * 180 / (2 * pi)                     # 8-bit hue [0, 180)
    s, v  <- 255, 255
    bgr   <- HSVtoBGR([h, s, v])

Note the argument order: ``cv2.cartToPolar(x, y)`` returns ``atan2(y, x)``, and
the algorithm passes the VERTICAL component as ``x`` and the HORIZONTAL one as
``y``, so ``theta = atan2(u, v)`` with ``u = flow[..., 0]``, ``v = flow[...,
1]`` (image coordinates, ``v`` grows downwards). Hence (OpenCV hue units):

* downward (v > 0):  theta = 0      -> h = 0   (red)
* rightward (u > 0): theta = pi/2   -> h = 45  (yellow-green)
* upward (v < 0):    theta = pi     -> h = 90  (cyan)
* leftward (u < 0):  theta = 3pi/2  -> h = 135 (violet)

The hue is rounded to the nearest integer (modulo 180) before the uint8
conversion, so that exact axis directions do not fall one step short by float
truncation.

The paper notes that "the OF components are normalized before calculating the
OF direction map" (its Fig. 3) without giving the formula;
:func:`normalise_flow` implements the reading we use: each component divided
by its own maximum absolute value over the field (sign kept, each component in
``[-1, 1]``), which lets a weak vertical motion show up next to a strong
horizontal one.
"""
from __future__ import annotations

import cv2
import numpy as np


def _check_flow(flow: np.ndarray) -> np.ndarray:
    arr = np.asarray(flow)
    if arr.ndim != 3 or arr.shape[-1] != 2:
        raise ValueError(f'flow must have shape (H, W, 2), got {arr.shape}')
    if not np.isfinite(arr).all():
        raise ValueError('flow holds NaN or infinite values')
    return arr.astype(np.float32)


def normalise_flow(flow: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Normalise each flow component by its own maximum absolute value.

    Args:
        flow: ``(H, W, 2)`` field, ``[..., 0]`` horizontal, ``[..., 1]``
            vertical.
        eps: A component whose max ``|.|`` is below ``eps`` is left as zeros.

    Returns:
        ``(H, W, 2)`` float32 field, each component in ``[-1, 1]``.
    """
    arr = _check_flow(flow)
    out = np.zeros_like(arr)
    for k in range(2):
        peak = float(np.abs(arr[..., k]).max(initial=0.0))
        if peak > eps:
            out[..., k] = arr[..., k] / peak
    return out


def flow_to_colour(flow: np.ndarray, magnitude: bool = False,
                   normalise: bool = False) -> np.ndarray:
    """Colour an optical-flow field by direction (Algorithm 1).

    Args:
        flow: ``(H, W, 2)`` field, ``[..., 0]`` horizontal (u), ``[..., 1]``
            vertical (v, positive downwards).
        magnitude: If False (Algorithm 1), value = 255 everywhere. If True,
            the common variant: value = magnitude min-max normalised to
            ``[0, 255]`` (hue unchanged).
        normalise: Apply :func:`normalise_flow` first, as the paper's note
            says.

    Returns:
        ``(H, W, 3)`` uint8 BGR image.
    """
    arr = normalise_flow(flow) if normalise else _check_flow(flow)
    # Algorithm 1, step 2: theta = CartToPolar(flow[..., 1], flow[..., 0]).
    mag, theta = cv2.cartToPolar(np.ascontiguousarray(arr[..., 1]),
                                 np.ascontiguousarray(arr[..., 0]),
                                 angleInDegrees=False)
    # Step 3: h = theta * 180 / (2 pi), OpenCV's 8-bit hue range [0, 180).
    hue = np.mod(np.rint(theta * 180.0 / (2.0 * np.pi)), 180.0)
    hsv = np.empty(arr.shape[:2] + (3, ), dtype=np.uint8)
    hsv[..., 0] = hue.astype(np.uint8)
    hsv[..., 1] = 255  # step 4
    if magnitude:
        hsv[..., 2] = cv2.normalize(mag, None, 0, 255,
                                    cv2.NORM_MINMAX).astype(np.uint8)
    else:
        hsv[..., 2] = 255
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)  # step 6
