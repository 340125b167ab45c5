"""GPU suite, section ``tvl1``: the batched torch TV-L1 on the device.

    python -m benchmarks.gpu.tvl1 --out OUT/tvl1.json [--tiny] [--device D]

For each size (112 and 224 px; 32 px with ``--tiny``) and batch size (1, 16,
64, 256; 1 and 4 with ``--tiny``): pairs/s of ``tvl1_batch`` (OpenCV's
default parameters) on the device over the pairs of
:mod:`benchmarks.gpu.frames`, after a warm-up call at that size; calls under
2 s are repeated (median of up to 3). A batch is not started when the
previous one's rate says it would overrun the section's budget (recorded as
skipped, with the estimate).

Agreement: the first pairs are also solved by the same solver on the
machine's CPU (torch), and the mean / max end-point error CPU vs device is
reported (the flow cache key leaves the device out on the assumption that
they agree); also the same pair alone vs inside the largest batch on the
device (the per-pair stopping makes a pair's flow independent of its batch).

Baseline: one OpenCV process (``cv2.optflow``), which the GPU machine does
not have. It was measured on the CPU machine on the same pairs by
``benchmarks/gpu/opencv_baseline.py`` and is read from
``benchmarks/results/gpu/opencv_tvl1_cpu_baseline.json``; every speed-up
says so (``baseline.measured_on``, machine, date) and the frames' SHA-256 of
both sides is compared (``baseline.frames_match``). The same run also times
the torch solver on this machine's CPU (``figures.<size>.cpu_torch``): a
baseline measured in the same run.
"""
from __future__ import annotations

import json
import os.path as osp
import statistics
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

from benchmarks.gpu import _common as gc  # noqa: E402

BASELINE = osp.join(gc.REPO, 'benchmarks', 'results', 'gpu',
                    'opencv_tvl1_cpu_baseline.json')
GOAL = 100.0  # x one OpenCV process at 112 px (the goal)


def load_baseline(path=BASELINE):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        return dict(error=gc.one_line(exc))


def baseline_rates(base, size):
    """One OpenCV process at ``size``: wall pairs/s (one thread, default
    threads) and pairs per CPU-second of one thread (what it reaches with
    a core to itself; the CPU machine is shared)."""
    e = (base.get('sizes') or {}).get(str(size))
    if not e:
        return None
    one = e['one_thread']
    return dict(
        one_thread_pairs_per_s=one['pairs_per_s'],
        one_thread_pairs_per_cpu_s=round(1.0 / one['cpu_s_per_pair'], 4),
        default_threads_pairs_per_s=e['default_threads']['pairs_per_s'],
        default_threads=e['default_threads']['threads'],
        load_avg=one['load_avg'], pairs=e['pairs'],
        frames_sha256=e['frames_sha256'])


def speedups(rate, base):
    """Device pairs/s over each baseline rate."""
    if not base or not rate:
        return None
    return dict(
        vs_one_opencv_process_one_thread=round(
            rate / base['one_thread_pairs_per_s'], 2),
        vs_one_opencv_process_one_thread_cpu_time=round(
            rate / base['one_thread_pairs_per_cpu_s'], 2),
        vs_one_opencv_process_default_threads=round(
            rate / base['default_threads_pairs_per_s'], 2))


def epe(a, b):
    import numpy as np
    d = np.hypot(a[..., 0] - b[..., 0], a[..., 1] - b[..., 1])
    return dict(mean_epe_px=float(d.mean()), max_epe_px=float(d.max()),
                mean_flow_px=float(np.hypot(b[..., 0], b[..., 1]).mean()))


def body(sec: gc.Section, device: str) -> None:
    import torch
    from benchmarks.gpu.frames import pairs_and_hash
    from raicl_mm.flow.tvl1_torch import tvl1_batch
    tiny = sec.data['tiny']
    sizes = (32,) if tiny else (112, 224)
    batches = (1, 4) if tiny else (1, 16, 64, 256)
    if OPTS.get('sizes'):
        sizes = tuple(int(x) for x in OPTS['sizes'].split(','))
    if OPTS.get('batches'):
        batches = tuple(int(x) for x in OPTS['batches'].split(','))
    sec.data['input'] = dict(sizes=list(sizes), batches=list(batches))
    n_cpu = {32: 2, 112: 8, 224: 2}
    n_cpu = {sz: n_cpu.get(sz, 2) for sz in sizes}
    base = load_baseline()
    figs = sec.data['figures']
    sec.data['baseline'] = dict(
        what='one OpenCV TV-L1 process (cv2.optflow.DualTVL1OpticalFlow, '
             'defaults) on the same pairs',
        measured_on=('the CPU machine, not the device: ' +
                     str((base.get('machine') or {}).get('cpu_model'))
                     + f", {(base.get('machine') or {}).get('usable_cores')}"
                     ' usable cores'),
        date=base.get('date'), opencv=base.get('opencv'),
        file=osp.relpath(BASELINE, gc.REPO), error=base.get('error'),
        sizes={})
    prev_big_s = prev_size = None
    for size in sizes:
        key = str(size)
        if sec.remaining() < 5:
            sec.skip(f'size_{size}', f'budget: {sec.remaining():.0f} s left')
            continue
        b = baseline_rates(base, size)
        t = time.perf_counter()
        refs, tgts, _ = pairs_and_hash(
            max(max(batches), b['pairs'] if b else 0), size)
        gen_s = time.perf_counter() - t
        if b is not None:
            from benchmarks.gpu.frames import sha256
            b['frames_match'] = (sha256(refs[:b['pairs']], tgts[:b['pairs']])
                                 == b['frames_sha256'])
            if not b['frames_match']:
                sec.note(f'{size} px: the frames differ from the '
                         'baseline\'s (SHA-256): the speed-ups compare '
                         'different pairs of the same generator')
        sec.data['baseline']['sizes'][key] = b
        entry = figs.setdefault(key, dict(frames_generation_s=round(gen_s,
                                                                    2)))
        a_all = torch.from_numpy(refs)
        g_all = torch.from_numpy(tgts)

        def warm():
            tvl1_batch(a_all[:2], g_all[:2], device=device)
            gc.sync(device)
            return dict(ok=True)
        sec.check(f'warmup_{size}', warm)
        flows = {}
        # Largest batch first: on a GPU a smaller batch does not take longer
        # than a larger one, so the last call's time bounds the next one's;
        # a skipped batch's estimate scales with the pairs.
        est = (prev_big_s * (size / prev_size) ** 2 if prev_big_s else None)
        for bs in sorted(batches, reverse=True):
            name = f'{size}px_batch{bs}'
            if est is not None and est > sec.remaining() - 3:
                sec.skip(name, f'budget: ~{est:.1f} s a call estimated, '
                         f'{sec.remaining():.0f} s left')
                est = est * (min(batches) if bs == min(batches) else
                             max(b for b in batches if b < bs)) / bs
                continue
            if sec.remaining() < 5:
                sec.skip(name, f'budget: {sec.remaining():.0f} s left')
                continue

            def run(bs=bs):
                times = []
                peak = None
                while True:
                    if device == 'cuda':
                        torch.cuda.reset_peak_memory_stats()
                    gc.sync(device)
                    t0 = time.perf_counter()
                    out = tvl1_batch(a_all[:bs], g_all[:bs], device=device)
                    gc.sync(device)
                    times.append(time.perf_counter() - t0)
                    if device == 'cuda':
                        peak = torch.cuda.max_memory_allocated() / 2 ** 20
                    if (sum(times) > 2.0 or len(times) >= 3
                            or sec.remaining() < 10):
                        break
                flows[bs] = out.cpu().numpy()
                s = statistics.median(times)
                return dict(pairs=bs, seconds=[round(x, 4) for x in times],
                            pairs_per_s=round(bs / s, 3),
                            max_memory_allocated_mib=(round(peak, 1)
                                                      if peak else None))
            r = sec.check(name, run)
            if r:
                call_s = min(r['seconds'])
                if bs == max(batches):
                    prev_big_s, prev_size = call_s, size
                est = call_s
                row = dict(r)
                row['speedup'] = speedups(r['pairs_per_s'], b)
                entry[f'batch_{bs}'] = row
                sec.write()
        rates = [entry[k]['pairs_per_s'] for k in entry
                 if k.startswith('batch_')]
        if rates:
            best = max(rates)
            entry['best_pairs_per_s'] = best
            entry['best_speedup'] = speedups(best, b)
        # CPU (torch, this machine) vs device, same pairs.
        k = min(n_cpu[size], max(flows) if flows else 0)
        if flows and k:
            src = min(bs for bs in flows if bs >= k)

            def agree(k=k, src=src):
                t0 = time.perf_counter()
                cpu = tvl1_batch(a_all[:k], g_all[:k], device='cpu').numpy()
                cpu_s = time.perf_counter() - t0
                e = epe(flows[src][:k], cpu)
                e.update(pairs=k, device_batch=src, cpu_seconds=round(cpu_s,
                                                                      3),
                         cpu_pairs_per_s=round(k / cpu_s, 3),
                         cpu_threads=torch.get_num_threads(),
                         ok=e['mean_epe_px'] < 0.02)
                return e
            if sec.remaining() < 8:
                sec.skip(f'cpu_vs_device_{size}', 'budget')
            else:
                r = sec.check(f'cpu_vs_device_{size}', agree)
                if r:
                    entry['cpu_vs_device'] = r
                    entry['cpu_torch'] = dict(
                        pairs_per_s=r['cpu_pairs_per_s'],
                        threads=r['cpu_threads'],
                        speedup_device_vs_cpu_torch=(
                            round(entry['best_pairs_per_s']
                                  / r['cpu_pairs_per_s'], 2)
                            if entry.get('best_pairs_per_s') else None))
        if len(flows) >= 2:
            lo, hi = min(flows), max(flows)
            e = epe(flows[hi][:lo], flows[lo])
            entry['batch_invariance'] = dict(
                small_batch=lo, large_batch=hi, **e)
        sec.write()
    b112 = figs.get('112', {}).get('best_speedup')
    if b112:
        v = b112['vs_one_opencv_process_one_thread_cpu_time']
        sec.data['goal'] = dict(
            what=f'>= {GOAL:.0f}x one OpenCV process at 112 px',
            speedup_vs_cpu_time_rate=v,
            speedup_vs_wall_rate=b112['vs_one_opencv_process_one_thread'],
            met=bool(v >= GOAL),
            note='the baseline rate is one thread\'s pairs per CPU-second '
                 'on the CPU machine (its wall rate there is lower when '
                 'that machine is shared); both are given')


OPTS = {}


def main(argv=None):
    def extra(p):
        p.add_argument('--sizes', help='comma-separated sizes (px) instead '
                       'of 112,224 (32 with --tiny)')
        p.add_argument('--batches', help='comma-separated batch sizes '
                       'instead of 1,16,64,256 (1,4 with --tiny)')
    args = gc.parse_args(__doc__.split('\n')[0], argv, extra)
    OPTS.update(sizes=args.sizes, batches=args.batches)
    return gc.run_section('tvl1', args, body)


if __name__ == '__main__':
    sys.exit(main())
