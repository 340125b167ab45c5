"""Onset->frame optical flow and optical strain: one motion instance per frame.

Each instance is ``I_n = [u_n, v_n, eps_n]`` (paper Sec. 3.1, Eq. 1-2): the
horizontal and vertical flow from the onset frame to frame ``n`` and the
optical strain magnitude of that flow field. Frames are cropped (optionally),
resized to :attr:`FlowConfig.size` and turned grey *before* the flow, so the
flow values are in pixels at the configured size.

TV-L1 is OpenCV's ``cv2.optflow.DualTVL1OpticalFlow`` with OpenCV's default
parameters (the contrib build is required, see :mod:`raicl_mm.compat`);
Farneback (``cv2.calcOpticalFlowFarneback``) is a faster alternative.
``'tvl1_torch'`` is the same TV-L1 model and scheme with the same default
parameters in PyTorch (:mod:`raicl_mm.flow.tvl1_torch`): the pairs of a
clip (or, through :func:`raicl_mm.flow.cache_fill.extract_all`, of many
clips) are solved as one batch, on CUDA when available.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence

import cv2
import numpy as np

from .config import FARNEBACK_PARAMS, FLOW_METHODS

# One TV-L1 solver per process: creating it is cheap but not free, and cv2
# objects cannot be pickled to worker processes anyway.
_TVL1: Dict[int, Any] = {}


def set_worker_threads(num_threads: int = 1) -> None:
    """Limit OpenCV's internal threads, e.g. in each worker of a process pool.

    With one process per core, OpenCV's own thread pool would oversubscribe
    the cores; one thread per worker is fastest.

    Args:
        num_threads: Threads for OpenCV in this process.
    """
    cv2.setNumThreads(int(num_threads))


def _tvl1():
    """The process's TV-L1 solver (created once, OpenCV default parameters)."""
    pid = os.getpid()  # a forked child must not reuse its parent's object
    if pid not in _TVL1:
        from raicl_mm.compat import require_optflow
        _TVL1.clear()
        _TVL1[pid] = require_optflow().DualTVL1OpticalFlow_create()
    return _TVL1[pid]


def optical_strain(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Optical strain magnitude of a flow field (third channel of Eq. 2).

    ``eps = sqrt(u_x^2 + v_y^2 + 0.5 * (u_y + v_x)^2)``, i.e. the Frobenius
    norm of the infinitesimal strain tensor ``0.5 * (grad O + grad O^T)``.
    Derivatives are ``np.gradient``: central differences inside, one-sided
    at the borders, unit pixel spacing; x is the column axis, y the row axis.

    Args:
        u: Horizontal flow, ``(H, W)``.
        v: Vertical flow, ``(H, W)``.

    Returns:
        ``(H, W)`` float32 strain magnitude.
    """
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    if u.shape != v.shape or u.ndim != 2:
        raise ValueError(f'u and v must be 2-D of the same shape, got '
                         f'{u.shape} and {v.shape}')
    u_y, u_x = np.gradient(u)
    v_y, v_x = np.gradient(v)
    strain = np.sqrt(u_x ** 2 + v_y ** 2 + 0.5 * (u_y + v_x) ** 2)
    return strain.astype(np.float32)


def _check_gray(img: np.ndarray, name: str) -> np.ndarray:
    if img.ndim != 2:
        raise ValueError(f'{name} must be a 2-D grey image, got shape '
                         f'{img.shape}')
    if img.dtype != np.uint8:
        raise ValueError(f'{name} must be uint8, got {img.dtype}')
    return img


def compute_flow(onset_gray: np.ndarray, frame_gray: np.ndarray,
                 method: str = 'tvl1', device: Optional[str] = 'cpu'
                 ) -> np.ndarray:
    """Optical flow from the onset to a frame (Eq. 1).

    Args:
        onset_gray: ``(H, W)`` uint8 onset frame.
        frame_gray: ``(H, W)`` uint8 frame of the same size.
        method: ``'tvl1'``, ``'farneback'`` or ``'tvl1_torch'``.
        device: ``'tvl1_torch'`` only: torch device (None = CUDA when
            available); one pair is fastest on the CPU.

    Returns:
        ``(H, W, 2)`` float32 ``[u, v]`` in pixels: a point at ``(x, y)`` in
        the onset is at ``(x + u, y + v)`` in the frame.
    """
    _check_gray(onset_gray, 'onset_gray')
    _check_gray(frame_gray, 'frame_gray')
    if onset_gray.shape != frame_gray.shape:
        raise ValueError(f'onset and frame differ in size: {onset_gray.shape} '
                         f'vs {frame_gray.shape}')
    if method == 'tvl1':
        flow = _tvl1().calc(onset_gray, frame_gray, None)
    elif method == 'farneback':
        p = FARNEBACK_PARAMS
        flow = cv2.calcOpticalFlowFarneback(
            onset_gray, frame_gray, None, p['pyr_scale'], p['levels'],
            p['winsize'], p['iterations'], p['poly_n'], p['poly_sigma'],
            p['flags'])
    elif method == 'tvl1_torch':
        return _tvl1_torch_flows(onset_gray, [frame_gray], device)[0]
    else:
        raise ValueError(f'unknown flow method {method!r}; valid: '
                         f'{FLOW_METHODS}')
    return np.ascontiguousarray(flow, dtype=np.float32)


def _tvl1_torch_flows(onset_gray: np.ndarray, frames: Sequence[np.ndarray],
                      device: Optional[str]) -> np.ndarray:
    """``(N, H, W, 2)`` float32 TV-L1 flows onset->frame, one torch batch."""
    import torch

    from .tvl1_torch import default_device, tvl1_batch
    ref = torch.from_numpy(np.ascontiguousarray(onset_gray))
    ref = ref.unsqueeze(0).expand(len(frames), -1, -1)
    tgt = torch.from_numpy(np.stack(frames))
    flows = tvl1_batch(ref, tgt, device=default_device(device))
    return np.ascontiguousarray(flows.cpu().numpy(), dtype=np.float32)


def flow_instance(onset_gray: np.ndarray, frame_gray: np.ndarray,
                  method: str = 'tvl1') -> np.ndarray:
    """One motion instance ``I_n = [u_n, v_n, eps_n]`` (Eq. 2).

    Args:
        onset_gray: ``(H, W)`` uint8 onset frame.
        frame_gray: ``(H, W)`` uint8 frame.
        method: ``'tvl1'`` or ``'farneback'``.

    Returns:
        ``(H, W, 3)`` float32.
    """
    flow = compute_flow(onset_gray, frame_gray, method)
    strain = optical_strain(flow[..., 0], flow[..., 1])
    return np.dstack([flow, strain]).astype(np.float32, copy=False)
