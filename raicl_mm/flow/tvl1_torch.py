"""Batched Dual TV-L1 optical flow in PyTorch (CUDA when available, else CPU).

The same model and numerical scheme as OpenCV's
``cv2.optflow.DualTVL1OpticalFlow`` (opencv_contrib ``optflow/tvl1flow.cpp``,
Zach, Pock & Bischof 2007; Sanchez Perez et al. 2013, IPOL "TV-L1 Optical
Flow Estimation") with OpenCV's default parameters, run on a whole batch of
image pairs ``(B, H, W)`` at once, so that every onset->frame pair of many
clips is one tensor program.

What is reproduced from OpenCV's CPU code path, step by step:

* intensities: ``uint8`` images are used as 0..255 floats; float images are
  multiplied by 255 first (OpenCV's convention for ``CV_32F`` input: [0, 1]).
* pyramid: ``nscales`` levels, each ``cv::resize(prev, fx=fy=scaleStep,
  INTER_LINEAR)`` of the previous level (no Gaussian pre-smoothing: OpenCV's
  contrib version does none; sizes are ``round(prev * scaleStep)``, the
  sampling grid uses the exact factor as OpenCV does); a level under 16 px
  stops the pyramid.
* per scale: the dual variables ``p`` start at 0; the flow comes from the
  coarser scale by ``resize(INTER_LINEAR)`` to the finer size times
  ``1 / scaleStep`` (zero at the coarsest scale).
* per warp: centred-difference gradient of ``I1`` (OpenCV's one-sided
  half differences at the border), ``I1``, ``I1x``, ``I1y`` warped with
  bicubic interpolation (A = -0.75) and a zero constant border, exactly
  OpenCV's ``remap(INTER_CUBIC, BORDER_CONSTANT)``; ``grad = |grad I1w|^2``
  and ``rho_c``.
* per outer iteration (at most ``outerIterations``): 5x5 median filter of
  ``u1``, ``u2`` (replicated border, as ``cv::medianBlur``), then at most
  ``innerIterations`` of: thresholding step (TH, Eq. of ``estimateV``),
  backward-difference divergence of ``p``, ``u = v + theta div p``, forward
  differences of ``u`` and the projected dual update
  ``p = (p + tau/theta grad u) / (1 + tau/theta |grad u|)``.
* stopping: the sum over pixels of the squared update of ``u`` against
  ``epsilon^2 * H * W`` (per pair: a pair that has converged leaves the
  batch for the rest of that warp, exactly as its own OpenCV call would
  stop), so a pair gives the same flow alone or in a batch.

Not implemented (OpenCV's defaults do not use them): ``gamma != 0`` (the
illumination term) and ``useInitialFlow``.
"""
from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Dict, Iterable, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

#: ``std::numeric_limits<float>::epsilon()``: OpenCV's test for a zero
#: image gradient in the thresholding step.
_FLT_EPS = float(np.finfo(np.float32).eps)


@dataclass(frozen=True)
class TVL1Params:
    """Dual TV-L1 parameters; the defaults are OpenCV's
    (``cv2.optflow.DualTVL1OpticalFlow_create()``, read off with its getters:
    tau 0.25, lambda 0.15, theta 0.3, 5 scales, 5 warpings, epsilon 0.01,
    30 inner and 10 outer iterations, scale step 0.8, gamma 0, median
    filtering 5, no initial flow).

    ``lambda_`` has a trailing underscore because ``lambda`` is a keyword.
    """

    tau: float = 0.25
    lambda_: float = 0.15
    theta: float = 0.3
    nscales: int = 5
    warps: int = 5
    epsilon: float = 0.01
    inner_iterations: int = 30
    outer_iterations: int = 10
    scale_step: float = 0.8
    gamma: float = 0.0
    median_filtering: int = 5
    use_initial_flow: bool = False

    def __post_init__(self) -> None:
        if self.gamma != 0:
            raise NotImplementedError('TVL1Params.gamma != 0 (illumination '
                                      'term) is not implemented')
        if self.use_initial_flow:
            raise NotImplementedError('TVL1Params.use_initial_flow is not '
                                      'implemented')
        if self.median_filtering not in (0, 1, 3, 5):
            raise ValueError(f'TVL1Params.median_filtering must be 0/1 (off), '
                             f'3 or 5, got {self.median_filtering}')
        if not 0 < self.scale_step < 1:
            raise ValueError(f'TVL1Params.scale_step must be in (0, 1), got '
                             f'{self.scale_step}')
        for name in ('nscales', 'warps', 'inner_iterations',
                     'outer_iterations'):
            if int(getattr(self, name)) < 1:
                raise ValueError(f'TVL1Params.{name} must be >= 1')

    @classmethod
    def from_opencv(cls, algo=None) -> 'TVL1Params':
        """The parameters of an OpenCV ``DualTVL1OpticalFlow`` object (a
        freshly created one when ``algo`` is None)."""
        if algo is None:
            from raicl_mm.compat import require_optflow
            algo = require_optflow().DualTVL1OpticalFlow_create()
        return cls(tau=algo.getTau(), lambda_=algo.getLambda(),
                   theta=algo.getTheta(), nscales=algo.getScalesNumber(),
                   warps=algo.getWarpingsNumber(),
                   epsilon=algo.getEpsilon(),
                   inner_iterations=algo.getInnerIterations(),
                   outer_iterations=algo.getOuterIterations(),
                   scale_step=algo.getScaleStep(), gamma=algo.getGamma(),
                   median_filtering=algo.getMedianFiltering(),
                   use_initial_flow=algo.getUseInitialFlow())

    def key(self) -> Dict:
        """JSON-serialisable parameters (for cache keys)."""
        return asdict(self)


# ------------------------------------------------------------------ helpers


def _linear_taps(dst: int, src: int, scale: float, device
                 ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """OpenCV ``resize(INTER_LINEAR)`` taps along one axis.

    ``scale`` is OpenCV's ``scale_x`` (source pixels per destination pixel):
    ``f = (d + 0.5) * scale - 0.5``, clamped to the first/last pixel
    (replicated border).
    """
    f = ((np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5
         ).astype(np.float32)
    s = np.floor(f).astype(np.int64)
    w = (f - s).astype(np.float32)
    low = s < 0
    s[low], w[low] = 0, 0
    high = s >= src - 1
    s[high], w[high] = src - 1, 0
    s1 = np.minimum(s + 1, src - 1)
    return (torch.from_numpy(s).to(device), torch.from_numpy(s1).to(device),
            torch.from_numpy(w).to(device))


def _resize_linear(x: torch.Tensor, size: Tuple[int, int],
                   scale: Optional[Tuple[float, float]] = None
                   ) -> torch.Tensor:
    """``cv::resize(INTER_LINEAR)`` of the last two dims of ``x``.

    Args:
        x: ``(..., H, W)`` float.
        size: ``(h, w)`` of the result.
        scale: ``(scale_y, scale_x)`` source pixels per result pixel; None
            uses ``H / h`` and ``W / w`` (OpenCV with an explicit ``dsize``).
    """
    h_in, w_in = x.shape[-2:]
    h, w = size
    sy, sx = scale if scale is not None else (h_in / h, w_in / w)
    y0, y1, wy = _linear_taps(h, h_in, sy, x.device)
    x0, x1, wx = _linear_taps(w, w_in, sx, x.device)
    wy = wy.to(x.dtype)[:, None]
    wx = wx.to(x.dtype)
    rows = x.index_select(-2, y0) * (1 - wy) + x.index_select(-2, y1) * wy
    return (rows.index_select(-1, x0) * (1 - wx) +
            rows.index_select(-1, x1) * wx)


def _centered_gradient(img: torch.Tensor
                       ) -> Tuple[torch.Tensor, torch.Tensor]:
    """OpenCV's ``centeredGradient``: half central differences, half
    one-sided differences on the border rows/columns."""
    p = F.pad(img.unsqueeze(1), (1, 1, 1, 1), mode='replicate').squeeze(1)
    dx = 0.5 * (p[..., 1:-1, 2:] - p[..., 1:-1, :-2])
    dy = 0.5 * (p[..., 2:, 1:-1] - p[..., :-2, 1:-1])
    return dx, dy


def _forward_gradient(u: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Forward differences, 0 on the last column (x) / last row (y)."""
    ux = F.pad(u[..., :, 1:] - u[..., :, :-1], (0, 1))
    uy = F.pad(u[..., 1:, :] - u[..., :-1, :], (0, 0, 0, 1))
    return ux, uy


def _divergence(px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Backward differences with ``p = 0`` before the first column/row."""
    return (px - F.pad(px[..., :, :-1], (1, 0)) +
            py - F.pad(py[..., :-1, :], (0, 0, 1, 0)))


def _median_blur(u: torch.Tensor, k: int) -> torch.Tensor:
    """``cv::medianBlur`` (k x k, replicated border) of ``(N, C, H, W)``."""
    r = k // 2
    n, c, h, w = u.shape
    p = F.pad(u, (r, r, r, r), mode='replicate')
    win = p.unfold(2, k, 1).unfold(3, k, 1)  # (N, C, H, W, k, k)
    return win.reshape(n, c, h, w, k * k).median(dim=-1).values


def _cubic_weights(t: torch.Tensor) -> List[torch.Tensor]:
    """OpenCV's ``interpolateCubic`` (A = -0.75) weights of the taps at
    ``floor - 1 .. floor + 2`` for the fractional part ``t``."""
    a = -0.75
    t1 = t + 1
    s = 1 - t
    w0 = ((a * t1 - 5 * a) * t1 + 8 * a) * t1 - 4 * a
    w1 = ((a + 2) * t - (a + 3)) * t * t + 1
    w2 = ((a + 2) * s - (a + 3)) * s * s + 1
    return [w0, w1, w2, 1 - w0 - w1 - w2]


def _warp_cubic(stack: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``remap(img, x + u1, y + u2, INTER_CUBIC, BORDER_CONSTANT=0)`` of
    every channel of ``stack`` ``(N, C, H, W)`` with flow ``u``
    ``(N, 2, H, W)``.

    The sample position is ``x + u`` in float32 as in OpenCV (so zero flow is
    exactly the identity: ``grid_sample``'s normalised coordinates are not,
    and the resulting 1e-6 px offsets move TV-L1 in flat regions); taps
    outside the image count as 0.
    """
    n, c, h, w = stack.shape
    ys = torch.arange(h, device=u.device, dtype=u.dtype).view(1, h, 1)
    xs = torch.arange(w, device=u.device, dtype=u.dtype).view(1, 1, w)
    sx = xs + u[:, 0]
    sy = ys + u[:, 1]
    fx = torch.floor(sx)
    fy = torch.floor(sy)
    wx = _cubic_weights(sx - fx)
    wy = _cubic_weights(sy - fy)
    # Far outside the image every tap is 0; clamp first so that the integer
    # conversion cannot overflow.
    fx = fx.clamp(-4, w + 4).long()
    fy = fy.clamp(-4, h + 4).long()
    flat = stack.reshape(n, c, h * w)
    cols = []
    for i in range(4):
        xi = fx + (i - 1)
        valid = (xi >= 0) & (xi < w)
        cols.append((xi.clamp(0, w - 1), wx[i] * valid))
    out = None
    for j in range(4):
        yj = fy + (j - 1)
        wyj = wy[j] * ((yj >= 0) & (yj < h))
        base = yj.clamp(0, h - 1) * w
        row = None
        for xi, wxi in cols:
            idx = (base + xi).view(n, 1, h * w).expand(n, c, h * w)
            val = flat.gather(2, idx).view(n, c, h, w) * wxi.unsqueeze(1)
            row = val if row is None else row + val
        term = row * wyj.unsqueeze(1)
        out = term if out is None else out + term
    return out


def pyramid_sizes(h: int, w: int, params: TVL1Params) -> List[Tuple[int, int]]:
    """The ``(h, w)`` of each pyramid level, finest first, as OpenCV builds
    them (``saturate_cast<int>`` rounds half to even, as Python does)."""
    sizes = [(h, w)]
    for _ in range(1, params.nscales):
        ph, pw = sizes[-1]
        nh = int(round(ph * params.scale_step))
        nw = int(round(pw * params.scale_step))
        if nh < 16 or nw < 16:
            break
        sizes.append((nh, nw))
    return sizes


# --------------------------------------------------------------- the solver


def _solve_scale(i0: torch.Tensor, i1: torch.Tensor, u: torch.Tensor,
                 p: TVL1Params) -> torch.Tensor:
    """OpenCV's ``procOneScale`` for a batch: refine ``u`` ``(B, 2, H, W)``.
    """
    h, w = i0.shape[-2:]
    scaled_eps = float(np.float32(p.epsilon * p.epsilon * h * w))
    l_t = float(np.float32(p.lambda_ * p.theta))
    taut = float(np.float32(p.tau / p.theta))
    theta = float(np.float32(p.theta))
    i1x, i1y = _centered_gradient(i1)
    img_stack = torch.stack((i1, i1x, i1y), dim=1)
    px = torch.zeros_like(u)  # (p11, p21): x-parts of the duals of u1, u2
    py = torch.zeros_like(u)  # (p12, p22)
    for _ in range(p.warps):
        warped = _warp_cubic(img_stack, u)
        gi = warped[:, 1:]                              # (B, 2, H, W)
        grad = (gi * gi).sum(1)                          # |grad I1w|^2
        rho_c = warped[:, 0] - (gi * u).sum(1) - i0
        # Division by grad as OpenCV (-rho / grad), 0/0 guarded; clamping to
        # [-l_t, l_t] is exactly its three-way thresholding branch.
        grad_safe = torch.where(grad > _FLT_EPS, grad, torch.ones_like(grad))
        zero_grad = grad <= _FLT_EPS
        # Working set: the pairs that have not met the stopping test in this
        # warp. Converged pairs are written back and dropped.
        idx = None  # None = all pairs, in order
        a_u, a_px, a_py = u, px, py
        a_gi, a_gs, a_rc, a_zg = gi, grad_safe, rho_c, zero_grad
        a_grad = grad
        any_zg = bool(zero_grad.any())
        alive = True
        for _outer in range(p.outer_iterations):
            if p.median_filtering > 1:
                a_u = _median_blur(a_u, p.median_filtering)
            for _inner in range(p.inner_iterations):
                rho = a_rc + (a_gi * a_u).sum(1)
                c = (-rho / a_gs).clamp_(-l_t, l_t)
                if any_zg:
                    # |grad I|^2 <= FLT_EPS: OpenCV moves by +-l_t * grad I
                    # only outside the dead zone, else not at all.
                    cz = torch.where(rho < -l_t * a_grad,
                                     torch.full_like(rho, l_t),
                                     torch.where(rho > l_t * a_grad,
                                                 torch.full_like(rho, -l_t),
                                                 torch.zeros_like(rho)))
                    c = torch.where(a_zg, cz, c)
                v = a_u + c.unsqueeze(1) * a_gi
                u_new = v + theta * _divergence(a_px, a_py)
                diff = u_new - a_u
                err = (diff * diff).sum(dim=(1, 2, 3))
                a_u = u_new
                ux, uy = _forward_gradient(a_u)
                ng = 1.0 + taut * torch.hypot(ux, uy)
                a_px = (a_px + taut * ux) / ng
                a_py = (a_py + taut * uy) / ng
                done = err <= scaled_eps
                if bool(done.any()):
                    sel = (done.nonzero().squeeze(1) if idx is None
                           else idx[done])
                    u[sel] = a_u[done]
                    px[sel] = a_px[done]
                    py[sel] = a_py[done]
                    keep = ~done
                    if not bool(keep.any()):
                        alive = False
                        break
                    idx = (keep.nonzero().squeeze(1) if idx is None
                           else idx[keep])
                    a_u, a_px, a_py = a_u[keep], a_px[keep], a_py[keep]
                    a_gi, a_gs, a_rc = a_gi[keep], a_gs[keep], a_rc[keep]
                    a_zg, a_grad = a_zg[keep], a_grad[keep]
                    any_zg = any_zg and bool(a_zg.any())
            if not alive:
                break
        if alive:
            if idx is None:
                u, px, py = a_u, a_px, a_py
            else:
                u[idx], px[idx], py[idx] = a_u, a_px, a_py
    return u


def _as_float255(x: torch.Tensor) -> torch.Tensor:
    if x.dtype == torch.uint8:
        return x.to(torch.float32)
    return x.to(torch.float32) * 255.0  # OpenCV: CV_32F input is in [0, 1]


@torch.no_grad()
def tvl1_batch(ref: Union[torch.Tensor, np.ndarray],
               tgt: Union[torch.Tensor, np.ndarray],
               params: Optional[TVL1Params] = None,
               device: Union[str, torch.device, None] = None,
               **overrides) -> torch.Tensor:
    """Dual TV-L1 flow from ``ref[b]`` to ``tgt[b]`` for a whole batch.

    Args:
        ref: ``(B, H, W)`` (or ``(H, W)``) reference images: uint8 in
            [0, 255] or float in [0, 1] (OpenCV's convention for ``CV_32F``
            input, which it multiplies by 255).
        tgt: Target images, same shape and dtype.
        params: Solver parameters (OpenCV's defaults when None).
        device: Where to compute; None = the inputs' device for tensors
            (CPU for numpy input).
        **overrides: Fields of :class:`TVL1Params` to change, e.g.
            ``warps=1``.

    Returns:
        ``(B, H, W, 2)`` float32 ``[u, v]`` in pixels on ``device``, the
        same convention as ``DualTVL1OpticalFlow.calc(ref, tgt)``: a point
        ``(x, y)`` of ``ref`` is at ``(x + u, y + v)`` in ``tgt``.
    """
    params = params or TVL1Params()
    if overrides:
        params = replace(params, **overrides)
    ref = torch.as_tensor(ref)
    tgt = torch.as_tensor(tgt)
    if ref.shape != tgt.shape:
        raise ValueError(f'ref and tgt differ in shape: {tuple(ref.shape)} vs '
                         f'{tuple(tgt.shape)}')
    if ref.dtype != tgt.dtype:
        raise ValueError(f'ref and tgt differ in dtype: {ref.dtype} vs '
                         f'{tgt.dtype}')
    single = ref.dim() == 2
    if single:
        ref, tgt = ref[None], tgt[None]
    if ref.dim() != 3:
        raise ValueError(f'ref must be (B, H, W) or (H, W), got '
                         f'{tuple(ref.shape)}')
    b, h, w = ref.shape
    if min(h, w) < 3:
        raise ValueError(f'images must be at least 3x3, got {h}x{w}')
    dev = torch.device(device) if device is not None else ref.device
    i0 = _as_float255(ref.to(dev))
    i1 = _as_float255(tgt.to(dev))
    if b == 0:
        out = i0.new_zeros((0, h, w, 2))
        return out[0] if single else out
    sizes = pyramid_sizes(h, w, params)
    inv = 1.0 / params.scale_step
    i0s, i1s = [i0], [i1]
    for (sh, sw) in sizes[1:]:
        i0s.append(_resize_linear(i0s[-1], (sh, sw), (inv, inv)))
        i1s.append(_resize_linear(i1s[-1], (sh, sw), (inv, inv)))
    ch, cw = sizes[-1]
    u = i0.new_zeros((b, 2, ch, cw))
    for s in range(len(sizes) - 1, -1, -1):
        u = _solve_scale(i0s[s], i1s[s], u, params)
        if s == 0:
            break
        u = _resize_linear(u, sizes[s - 1]) * float(np.float32(inv))
    out = u.permute(0, 2, 3, 1).contiguous()
    return out[0] if single else out


def default_device(device: Union[str, torch.device, None] = None
                   ) -> torch.device:
    """``device`` if given, else CUDA when available, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
