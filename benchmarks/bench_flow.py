#!/usr/bin/env python
"""Flow extraction: the project's extractor (``extract_all`` on all cores)
against OpenCV TV-L1 in one process, on the same frames.

    python benchmarks/bench_flow.py                    # 8 clips, 112 px, TV-L1
    python benchmarks/bench_flow.py --clips 16 --size 112 --repeats 3
    python benchmarks/bench_flow.py --data data/synthetic --clips 8
    python benchmarks/bench_flow.py --quick            # CI size, a few seconds

What is timed (pairs = onset->frame flow instances actually computed):

* baseline: ``cv2.optflow.DualTVL1OpticalFlow`` (OpenCV defaults, the
  project's solver) called in a loop in this one process with one OpenCV
  thread, on frames already read, cropped and resized -- the solver alone.
* figures: ``raicl_mm.flow.cache_fill.extract_all(records, cache,
  workers=all cores)`` into an empty cache: reading the JPEGs, resizing,
  flow, strain, float16 ``.npz`` writes, on a process pool. Its first call in
  a process is *cold* (the forkserver starts and imports ``raicl_mm``, as in
  ``tools/loso.py``); later calls reuse the forkserver (*warm*, the
  steady-state rate that scales to a whole data set). The ratio uses warm.
* reference: Farneback in one process on the same pairs, and TV-L1 with
  OpenCV's default thread count on the first clips; CPU seconds per pair of
  the solver alone and of extract_all in one process on those clips
  (``ratio_if_cores_idle`` = workers x their quotient: the ratio the
  extractor reaches when its cores are not shared).

Goal: extractor >= 0.8 x cores x the one-process TV-L1 rate.
"""
import argparse
import os.path as osp
import shutil
import sys
import tempfile
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from benchmarks import common  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--quick', action='store_true',
                   help='CI size: 2 clips of 9 frames at 32 px, 1 repeat')
    p.add_argument('--data', help='an existing CASME II-layout set (e.g. '
                   'data/synthetic); default: generate synthetic clips into '
                   'a temporary folder')
    p.add_argument('--protocol', default='casme2_3cls',
                   help='protocol used to read --data (default casme2_3cls)')
    p.add_argument('--clips', type=int, default=8, help='clips to extract')
    p.add_argument('--frames', type=int, nargs=2, default=(17, 40),
                   metavar=('MIN', 'MAX'),
                   help='clip length range of generated clips (17+ frames '
                   'give 16 instances each)')
    p.add_argument('--gen-size', type=int, default=128,
                   help='frame size of generated clips (px)')
    p.add_argument('--size', type=int, default=112,
                   help='flow size (the configs: 112 CDE, 64 synthetic)')
    p.add_argument('--instances', type=int, default=16,
                   help='instances per clip (N)')
    p.add_argument('--method', choices=('tvl1', 'farneback', 'tvl1_torch'),
                   default='tvl1',
                   help='flow_cfg.method of the extractor; the baseline is '
                   'OpenCV TV-L1 (Farneback for farneback)')
    p.add_argument('--workers', type=int, default=None,
                   help='extractor processes (default: all cores)')
    p.add_argument('--repeats', type=int, default=2)
    p.add_argument('--threads-check-clips', type=int, default=2,
                   help='clips used for the default-thread TV-L1 reference '
                   'and the CPU-per-pair check '
                   '(0 = skip)')
    args = p.parse_args(argv)
    if args.quick:
        args.clips, args.frames, args.gen_size = 2, (9, 9), 32
        args.size, args.repeats = 32, 1
        args.threads_check_clips = 1
    return args


def make_records(args, tmp):
    from raicl_mm.datasets.sources import build_records
    from raicl_mm.synthetic.generator import (FRAMES_DIR, SHEET_NAME,
                                             SyntheticConfig, generate)
    if args.data:
        root = args.data
        generated = False
    else:
        root = osp.join(tmp, 'synthetic')
        subjects = max(1, min(99, -(-args.clips // 4)))
        per = -(-args.clips // subjects)
        generate(root, SyntheticConfig(
            num_subjects=subjects, clips_per_subject=per, size=args.gen_size,
            min_len=args.frames[0], max_len=args.frames[1], seed=0),
            workers=common.usable_cores())
        generated = True
    report = build_records(args.protocol,
                           dict(casme2=osp.join(root, FRAMES_DIR)),
                           dict(casme2=osp.join(root, SHEET_NAME)))
    records = sorted(report.records, key=lambda r: r.sample_id)[:args.clips]
    if not records:
        raise SystemExit(f'no clips found under {root}')
    return root, generated, records


def one_process_rate(frames, method, threads):
    """Pairs/s of the solver alone over ``frames`` [(onset, [frame...])]."""
    import cv2
    from raicl_mm.compat import require_optflow
    from raicl_mm.flow import FARNEBACK_PARAMS
    old = cv2.getNumThreads()
    if threads is not None:
        cv2.setNumThreads(threads)
    try:
        if method == 'tvl1':
            solver = require_optflow().DualTVL1OpticalFlow_create()
            calc = lambda a, b: solver.calc(a, b, None)  # noqa: E731
        else:
            p = FARNEBACK_PARAMS
            calc = lambda a, b: cv2.calcOpticalFlowFarneback(  # noqa: E731
                a, b, None, p['pyr_scale'], p['levels'], p['winsize'],
                p['iterations'], p['poly_n'], p['poly_sigma'], p['flags'])
        n, flows = 0, []
        cpu = time.process_time()
        with common.Timer() as t:
            for onset, fr in frames:
                flows.append([calc(onset, f) for f in fr])
                n += len(fr)
        t.cpu = time.process_time() - cpu
        return n, t, flows, cv2.getNumThreads()
    finally:
        cv2.setNumThreads(old)


def main(argv=None):
    out = common.json_stdout()
    args = parse_args(argv)
    cores = common.usable_cores()
    workers = args.workers or cores
    import numpy as np
    from raicl_mm.flow import FlowConfig, load_clip_frames
    from raicl_mm.datasets.instance_sets import sampled_cache
    from raicl_mm.datasets.sampling import SamplingConfig, clip_positions
    from raicl_mm.flow.cache_fill import extract_all
    tmp = tempfile.mkdtemp(prefix='bench_flow_')
    try:
        t_gen = time.perf_counter()
        root, generated, records = make_records(args, tmp)
        t_gen = time.perf_counter() - t_gen
        flow_cfg = FlowConfig(method=args.method, size=(args.size, args.size))
        base_method = 'farneback' if args.method == 'farneback' else 'tvl1'
        sampling = SamplingConfig(num_instances=args.instances)
        frames = []
        for rec in records:
            pos = clip_positions(rec, sampling)
            frames.append(load_clip_frames(rec, pos, flow_cfg))
        pairs = sum(len(fr) for _, fr in frames)

        runs, base_rates, ext_rates, fb_rates = [], [], [], []
        cold = None
        base_flows = None
        # The extractor's first call in this process is cold (forkserver
        # start + preload); the others are warm. Baseline and extractor
        # alternate so that a change of machine load hits both.
        for r in range(args.repeats + 1):
            kind = 'cold' if r == 0 else 'warm'
            cache = sampled_cache(osp.join(tmp, f'cache{r}'), flow_cfg,
                                  sampling)
            summ = extract_all(records, cache, workers=workers,
                               progress=False)
            if summ['failed']:
                raise SystemExit(f'extraction failed: {summ["failed"]}')
            rate = pairs / summ['seconds']
            runs.append(dict(what=f'extract_all workers={workers} ({kind})',
                             pairs=pairs, seconds=summ['seconds'],
                             pairs_per_s=round(rate, 3),
                             load_avg=common.loadavg()))
            if r == 0:
                cold = dict(seconds=summ['seconds'], rate=rate)
                first_cache = cache
                continue
            ext_rates.append(rate)
            n, t, flows, th = one_process_rate(frames, base_method, 1)
            base_flows = base_flows or flows
            base_rates.append(n / t.seconds)
            runs.append(dict(what=f'{base_method} one process, 1 thread',
                             pairs=n, seconds=round(t.seconds, 3),
                             pairs_per_s=round(n / t.seconds, 3),
                             load_avg=t.load))
            n, t, _, _ = one_process_rate(frames, 'farneback', 1)
            fb_rates.append(n / t.seconds)
            runs.append(dict(what='farneback one process, 1 thread', pairs=n,
                             seconds=round(t.seconds, 3),
                             pairs_per_s=round(n / t.seconds, 3),
                             load_avg=t.load))

        figures = dict(
            extract_all_pairs_per_s=common.median(ext_rates),
            extract_all_cold_pairs_per_s=cold['rate'],
            extract_all_cold_seconds=cold['seconds'],
            extract_all_warm_seconds=pairs / common.median(ext_rates),
            farneback_1proc_pairs_per_s=common.median(fb_rates),
            seconds_per_pair_per_core=workers / common.median(ext_rates))
        if args.threads_check_clips and base_method == 'tvl1':
            sub = frames[:args.threads_check_clips]
            n, t, _, th = one_process_rate(sub, 'tvl1', None)
            figures['tvl1_1proc_default_threads_pairs_per_s'] = n / t.seconds
            runs.append(dict(what=f'tvl1 one process, OpenCV default threads '
                             f'({th}), first {len(sub)} clips', pairs=n,
                             seconds=round(t.seconds, 3),
                             pairs_per_s=round(n / t.seconds, 3),
                             load_avg=t.load))
        if args.threads_check_clips:
            # CPU per pair: the extractor's whole pipeline (read, resize,
            # flow, strain, write) in this process vs the solver alone, on
            # the same clips. Equal costs mean the extractor can scale to
            # the cores it is given; wall-clock scaling needs idle cores.
            sub_recs = records[:args.threads_check_clips]
            sub = frames[:args.threads_check_clips]
            n, t, _, _ = one_process_rate(sub, base_method, 1)
            import cv2 as _cv2
            old = _cv2.getNumThreads()
            _cv2.setNumThreads(1)
            cpu = time.process_time()
            summ = extract_all(sub_recs, sampled_cache(
                osp.join(tmp, 'cache_1proc'), flow_cfg, sampling),
                workers=1, progress=False)
            cpu = time.process_time() - cpu
            _cv2.setNumThreads(old)
            figures['solver_cpu_s_per_pair'] = t.cpu / n
            figures['extract_all_1proc_cpu_s_per_pair'] = cpu / n
            figures['extract_all_1proc_pairs_per_s'] = n / summ['seconds']
            figures['ratio_if_cores_idle'] = workers * t.cpu / cpu
            runs.append(dict(what=f'{base_method} solver alone vs extract_all'
                             f' workers=1, first {len(sub)} clips', pairs=n,
                             solver_cpu_s=round(t.cpu, 3),
                             extract_all_cpu_s=round(cpu, 3),
                             extract_all_seconds=summ['seconds'],
                             load_avg=common.loadavg()))
        base = common.median(base_rates)
        ratio = figures['extract_all_pairs_per_s'] / base
        figures['ratio_cold'] = cold['rate'] / base

        # Same frames, same solver: the cached flows equal the baseline's
        # (up to float16 storage).
        got = first_cache.load(records[0])
        ref = np.stack(base_flows[0])
        diff = float(np.abs(got['flows'][..., :2] - ref).max())

        goal_ratio = 0.8 * workers
        res = common.result(
            what=f'optical-flow extraction pairs/s: extract_all '
                 f'({args.method}, '
                 + ('batched torch, one process' if args.method == 'tvl1_torch'
                    else f'{workers} processes')
                 + f') vs OpenCV {base_method} in one process',
            inputs=dict(
                clips=len(records), pairs=pairs, method=args.method,
                flow_size=args.size, instances=args.instances,
                frames=[r.num_frames for r in records],
                data=root if not generated else
                f'generated: raicl_mm.synthetic.generator, {args.gen_size} px,'
                f' {args.frames[0]}-{args.frames[1]} frames '
                f'({t_gen:.1f} s)',
                workers=workers, repeats=args.repeats,
                quick=args.quick, max_abs_diff_cache_vs_baseline=round(diff, 5)),
            device=common.machine(),
            figures=figures,
            baseline=dict(tvl1_1proc_pairs_per_s=base)
            if base_method == 'tvl1' else
            dict(farneback_1proc_pairs_per_s=base),
            ratio=ratio,
            goal=f'ratio >= 0.8 x cores = {goal_ratio:.2f} '
                 f'({workers} processes)',
            goal_met=bool(ratio >= goal_ratio),
            runs=runs,
            notes=('ratio = warm extract_all (forkserver already started) / '
                   'one-process solver with 1 OpenCV thread; ratio_cold '
                   'includes starting the forkserver and importing raicl_mm '
                   'in it, as a tools/loso.py run pays once.'))
        common.emit(res, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
