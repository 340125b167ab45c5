#!/usr/bin/env python
"""The OpenCV TV-L1 baseline of the GPU suite, measured on the CPU machine.

    python -m benchmarks.gpu.opencv_baseline          # writes the JSON below
    python -m benchmarks.gpu.opencv_baseline --quick  # 32 px only, stdout

The GPU machine has no ``cv2.optflow`` (opencv-python-headless without
contrib), so one OpenCV process cannot be timed there. This script times
``cv2.optflow.DualTVL1OpticalFlow`` (OpenCV's defaults, the project's
solver) on the CPU machine, in one process, with one OpenCV thread (the
reference of the goal "100x one OpenCV process") and with OpenCV's default
thread count, on the pairs of :mod:`benchmarks.gpu.frames` -- the same pairs
the suite's ``tvl1`` section solves on the GPU (their SHA-256 is recorded
here and compared there). It also records how far the torch TV-L1 on this
CPU is from OpenCV on the same pairs (end-point error), which with the
suite's CPU-vs-CUDA figure closes the chain OpenCV -> torch CPU -> torch CUDA.

Output: ``benchmarks/results/gpu/opencv_tvl1_cpu_baseline.json`` (committed;
the ``tvl1`` section reads it and says that its speed-ups divide by a rate
measured on another machine, named with its date).
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

from benchmarks import common  # noqa: E402
from benchmarks.gpu.frames import pairs_and_hash  # noqa: E402

OUT = osp.join(common.REPO, 'benchmarks', 'results', 'gpu',
               'opencv_tvl1_cpu_baseline.json')
#: size (px) -> pairs timed. 32 px is the suite's --tiny size.
PAIRS = {32: 8, 112: 32, 224: 12}
AGREEMENT = {32: 4, 112: 8}  # pairs also solved by the torch TV-L1 on CPU


def opencv_time(refs, tgts, threads):
    import cv2
    from raicl_mm.compat import require_optflow
    old = cv2.getNumThreads()
    if threads is not None:
        cv2.setNumThreads(threads)
    try:
        algo = require_optflow().DualTVL1OpticalFlow_create()
        used = cv2.getNumThreads()
        cpu = time.process_time()
        with common.Timer() as t:
            flows = [algo.calc(a, b, None) for a, b in zip(refs, tgts)]
        cpu = time.process_time() - cpu
    finally:
        cv2.setNumThreads(old)
    return flows, dict(threads=used, pairs=len(refs),
                       seconds=round(t.seconds, 4),
                       pairs_per_s=round(len(refs) / t.seconds, 4),
                       cpu_s_per_pair=round(cpu / len(refs), 5),
                       load_avg=t.load)


def epe(a, b):
    import numpy as np
    d = np.hypot(a[..., 0] - b[..., 0], a[..., 1] - b[..., 1])
    mag = np.hypot(b[..., 0], b[..., 1])
    return dict(mean_epe_px=round(float(d.mean()), 5),
                max_epe_px=round(float(d.max()), 5),
                mean_flow_px=round(float(mag.mean()), 5))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true',
                    help='32 px only; print, do not write the JSON')
    ap.add_argument('--out', default=OUT)
    args = ap.parse_args(argv)
    import cv2
    import numpy as np
    import torch
    sizes = {32: 8} if args.quick else PAIRS
    per_size = {}
    for size, n in sizes.items():
        refs, tgts, digest = pairs_and_hash(n, size)
        print(f'{size} px: {n} pairs, OpenCV 1 thread...', file=sys.stderr)
        flows, one = opencv_time(refs, tgts, 1)
        print(f'  {one["pairs_per_s"]} pairs/s; default threads...',
              file=sys.stderr)
        _, dflt = opencv_time(refs, tgts, None)
        entry = dict(pairs=n, frames_sha256=digest, one_thread=one,
                     default_threads=dflt)
        k = AGREEMENT.get(size, 0)
        if k:
            from raicl_mm.flow.tvl1_torch import tvl1_batch
            with common.Timer() as t:
                ours = tvl1_batch(torch.from_numpy(refs[:k]),
                                  torch.from_numpy(tgts[:k]),
                                  device='cpu').numpy()
            entry['torch_cpu_vs_opencv'] = dict(
                pairs=k, torch_threads=torch.get_num_threads(),
                torch_cpu_seconds=round(t.seconds, 3),
                **epe(ours, np.stack(flows[:k])))
        per_size[str(size)] = entry
    res = dict(
        what='OpenCV TV-L1 (cv2.optflow.DualTVL1OpticalFlow, defaults), one '
             'process, on benchmarks.gpu.frames pairs: the baseline of the '
             'GPU suite\'s tvl1 section',
        measured_on='the CPU machine (the GPU machine has no cv2.optflow)',
        machine=common.machine(None), opencv=cv2.__version__,
        torch=torch.__version__, date=common.now_iso(),
        frames=dict(generator='benchmarks/gpu/frames.py make_pairs(n, size, '
                    'seed=0)', seed=0),
        sizes=per_size,
        notes=('pairs_per_s of one_thread is the reference of the goal '
               '(>= 100x one OpenCV process at 112 px); load_avg is the '
               '1/5/15-min load when each timing ended (a shared machine '
               'slows it: read it with the load).'))
    text = json.dumps(res, indent=1)
    if args.quick:
        print(text)
        return 0
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        f.write(text + '\n')
    print(f'wrote {osp.relpath(args.out, common.REPO)}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
