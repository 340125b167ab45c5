"""Batched PyTorch TV-L1 (raicl_mm.flow.tvl1_torch) vs OpenCV's TV-L1.

Prints ONE JSON object ``{what, input, device, figures, baseline}``:

* ``figures``: for each size, ``tvl1_batch`` throughput (pairs/s) on a batch
  of ``--batch`` real-textured pairs (synthetic face frames with a smooth
  non-rigid warp, and smoothed noise with sub-pixel/pixel shifts), and the
  agreement with OpenCV on the same pairs (mean end-point error in px and as
  % of OpenCV's mean flow magnitude; a 4 px border is reported apart
  because both solvers extrapolate there).
* ``baseline``: OpenCV ``DualTVL1OpticalFlow`` (default parameters), one
  process, pairs/s on the same pairs, measured in the same run (its own
  thread pool as configured, and also with ``cv2.setNumThreads(1)``).

Usage::

    .venv/bin/python benchmarks/flow_tvl1_torch.py            # full
    .venv/bin/python benchmarks/flow_tvl1_torch.py --quick    # seconds
    .venv/bin/python benchmarks/flow_tvl1_torch.py --device cuda

``--quick``: 8 pairs at 64x64 only (a smoke run, figures are rough).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import cv2
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from raicl_mm.flow.tvl1_torch import TVL1Params, tvl1_batch  # noqa: E402


def _texture(h, w, rng, sigma=2.0):
    img = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0),
                           sigma)
    return (img - img.min()) / (img.max() - img.min()) * 255.0


def _face(size, rng):
    from raicl_mm.synthetic.generator import make_subject, render_face
    face = make_subject(rng)
    img = render_face(face, size)[0]
    return cv2.cvtColor(img.astype(np.float32), cv2.COLOR_BGR2GRAY)


def make_pairs(n, size, seed=0):
    """``n`` uint8 (ref, tgt) pairs of ``size`` px: faces and noise, moved by
    a global shift (sub-pixel to 2 px) plus a smooth non-rigid field."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    refs, tgts = [], []
    for k in range(n):
        base = _face(size, rng) if k % 2 == 0 else _texture(size, size, rng)
        dx, dy = rng.uniform(-2, 2, 2)
        cx, cy = rng.uniform(0.3, 0.7, 2) * size
        amp = rng.uniform(0.5, 1.5)
        g = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (size / 5) ** 2))
        fx = dx + amp * g
        fy = dy - amp * g
        # tgt(x + f(x)) ~ ref(x): sample ref at x - f(x).
        tgt = cv2.remap(base, xx - fx.astype(np.float32),
                        yy - fy.astype(np.float32), cv2.INTER_CUBIC,
                        borderMode=cv2.BORDER_REFLECT)
        refs.append(np.uint8(np.clip(base + 0.5, 0, 255)))
        tgts.append(np.uint8(np.clip(tgt + 0.5, 0, 255)))
    return np.stack(refs), np.stack(tgts)


def opencv_rate(refs, tgts, threads=None):
    old = cv2.getNumThreads()
    if threads is not None:
        cv2.setNumThreads(threads)
    try:
        algo = cv2.optflow.DualTVL1OpticalFlow_create()
        start = time.perf_counter()
        flows = [algo.calc(a, b, None) for a, b in zip(refs, tgts)]
        sec = time.perf_counter() - start
    finally:
        cv2.setNumThreads(old)
    return np.stack(flows), len(refs) / sec, sec


def agreement(ours, ref, border=4):
    epe = np.hypot(ours[..., 0] - ref[..., 0], ours[..., 1] - ref[..., 1])
    mag = np.hypot(ref[..., 0], ref[..., 1])
    inner = (slice(None), slice(border, -border), slice(border, -border))
    return dict(
        epe_px=round(float(epe.mean()), 4),
        epe_pct_of_mean_mag=round(100 * float(epe.mean() / mag.mean()), 2),
        epe_px_interior=round(float(epe[inner].mean()), 4),
        epe_pct_interior=round(100 * float(epe[inner].mean() /
                                           mag[inner].mean()), 2),
        worst_pair_pct=round(100 * float((epe.mean((1, 2)) /
                                          mag.mean((1, 2))).max()), 2),
        mean_mag_px=round(float(mag.mean()), 3))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--device', default=None,
                    help='cpu / cuda (default: cuda when available)')
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--sizes', default='64,112')
    ap.add_argument('--threads', type=int, default=None,
                    help='torch CPU threads (default: torch default)')
    args = ap.parse_args(argv)
    device = torch.device(args.device or
                          ('cuda' if torch.cuda.is_available() else 'cpu'))
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [64] if args.quick else [int(s) for s in args.sizes.split(',')]
    batch = 8 if args.quick else args.batch
    figures, baseline = {}, {}
    for size in sizes:
        refs, tgts = make_pairs(batch, size)
        cv_flow, cv_rate, cv_sec = opencv_rate(refs, tgts)
        _, cv_rate1, _ = opencv_rate(refs, tgts, threads=1)
        a = torch.from_numpy(refs).to(device)
        b = torch.from_numpy(tgts).to(device)
        if device.type == 'cuda':  # warm-up (kernels, allocator)
            tvl1_batch(a[:2], b[:2])
            torch.cuda.synchronize()
        start = time.perf_counter()
        ours = tvl1_batch(a, b)
        if device.type == 'cuda':
            torch.cuda.synchronize()
        sec = time.perf_counter() - start
        ours = ours.cpu().numpy()
        key = f'{size}x{size}'
        figures[key] = dict(pairs=batch, seconds=round(sec, 3),
                            pairs_per_s=round(batch / sec, 2),
                            speedup_vs_opencv=round(cv_rate and
                                                    (batch / sec) / cv_rate,
                                                    3),
                            agreement_vs_opencv=agreement(ours, cv_flow))
        baseline[key] = dict(
            opencv_pairs_per_s=round(cv_rate, 2),
            opencv_threads=cv2.getNumThreads(),
            opencv_1thread_pairs_per_s=round(cv_rate1, 2))
    out = dict(
        what='batched PyTorch Dual TV-L1 (OpenCV default parameters) vs '
             'cv2.optflow.DualTVL1OpticalFlow, one process',
        input=dict(pairs=batch, sizes=sizes, kind='uint8 grey; synthetic '
                   'faces and smoothed noise, global shift up to 2 px + '
                   'Gaussian non-rigid bump 0.5-1.5 px', quick=args.quick,
                   params=TVL1Params().key()),
        device=dict(torch_device=str(device), torch=torch.__version__,
                    torch_threads=torch.get_num_threads(),
                    opencv=cv2.__version__, cpu_count=os.cpu_count(),
                    load_avg=(os.getloadavg() if hasattr(os, 'getloadavg')
                              else None),
                    machine=platform.processor() or platform.machine(),
                    gpu=(torch.cuda.get_device_name(0)
                         if torch.cuda.is_available() else None)),
        figures=figures,
        baseline=baseline)
    print(json.dumps(out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
