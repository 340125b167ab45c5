"""GPU suite, section ``train``: ``benchmarks/bench_train.py`` on the device.

    python -m benchmarks.gpu.train --out OUT/train.json [--tiny] [--device D]

Variants, each one ``bench_train.py`` process (its whole JSON is kept under
``runs.<variant>``): ``fp32`` (the config as it is: data pipeline in the
training loop, ``num_workers=0``), ``bf16`` (mmengine ``AmpOptimWrapper``,
bfloat16; the bare loop under ``torch.autocast``), ``bf16_workers2`` and
``fp32_workers2`` (the data pipeline beside the step: 2 DataLoader worker
processes, persistent). Every variant reports the Runner's pairs/s and the
bare PyTorch loop's (its baseline, measured in the same process). The
synthetic set and its flows (``tvl1_torch`` on the device: the GPU machine
has no ``cv2.optflow``) are made once under a shared folder.

A variant that would start with less than its expected time left is
recorded as skipped with the reason; AMP variants on CPU are skipped
(mmengine's AmpOptimWrapper asserts CUDA; the CPU bf16 path is checked in
``smoke.amp_bf16``).
"""
from __future__ import annotations

import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

from benchmarks.gpu import _common as gc  # noqa: E402

VARIANTS = (
    ('fp32', 'none', 0),
    ('bf16', 'bf16', 0),
    ('bf16_workers2', 'bf16', 2),
    ('fp32_workers2', 'none', 2),
)


def body(sec: gc.Section, device: str) -> None:
    tiny = sec.data['tiny']
    data_dir = tempfile.mkdtemp(prefix='gpu_train_data_')
    script = osp.join(gc.REPO, 'benchmarks', 'bench_train.py')
    figs = sec.data['figures']
    sec.data['runs'] = {}
    expected = None
    for name, amp, workers in VARIANTS:
        if tiny and name != 'fp32_workers2':
            if amp == 'none':
                sec.skip(name, '--tiny runs one variant (fp32_workers2: '
                         'bench_train.py and the worker path)')
                continue
        if amp != 'none' and device != 'cuda':
            sec.skip(name, "AmpOptimWrapper needs CUDA (mmengine asserts "
                     "it); CPU bf16 autocast is checked in smoke.amp_bf16")
            continue
        left = sec.remaining()
        if left < 8:
            sec.skip(name, f'budget: {left:.0f} s left')
            continue
        if expected is not None and expected > left - 3:
            sec.skip(name, f'budget: the first variant took {expected:.0f} '
                     f's, {left:.0f} s left')
            continue
        cmd = [*gc.python_cmd(), script, '--device', device, '--amp', amp,
               '--num-workers', str(workers)]
        if tiny:
            cmd += ['--quick']
        else:
            cmd += ['--iters', '20', '--warmup', '5', '--repeats', '1',
                    '--data-dir', data_dir, '--flow-method', 'tvl1_torch']

        def run(cmd=cmd, left=left):
            t = time.perf_counter()
            res = subprocess.run(cmd, cwd=gc.REPO, capture_output=True,
                                 text=True, timeout=left - 2)
            wall = time.perf_counter() - t
            if res.returncode != 0:
                raise RuntimeError(f'bench_train.py exited {res.returncode}:'
                                   f' {res.stderr.strip()[-1500:]}')
            obj = json.loads(res.stdout.strip().splitlines()[-1])
            return dict(wall_s=round(wall, 2), result=obj,
                        command=' '.join(['python'] + [
                            osp.relpath(c, gc.REPO) if c.startswith(
                                gc.REPO) else c for c in cmd[1:]]))
        r = sec.check(name, run)
        if r is None:
            continue
        if expected is None:
            expected = r['wall_s']
        obj = r.pop('result')
        sec.data['runs'][name] = obj
        f, b = obj['figures'], obj['baseline']
        figs[name] = dict(
            runner_pairs_per_s=f['runner_pairs_per_s'],
            bare_loop_pairs_per_s=b['bare_loop_pairs_per_s'],
            ratio_runner_vs_bare=obj['ratio'],
            runner_step_share_of_iter=f.get('runner_step_share_of_iter'),
            dataloader_and_preprocessor_alone_s=f.get(
                'dataloader_and_preprocessor_alone_s'),
            runner_data_and_before_hooks_s=f.get(
                'runner_data_and_before_hooks_s'),
            amp=amp, num_workers=workers, wall_s=r['wall_s'])
        sec.write()
    base = figs.get('fp32')
    if base:
        for name, row in figs.items():
            row['runner_speedup_vs_fp32_runner'] = round(
                row['runner_pairs_per_s'] / base['runner_pairs_per_s'], 3)
    sec.write()


def main(argv=None):
    args = gc.parse_args(__doc__.split('\n')[0], argv)
    return gc.run_section('train', args, body)


if __name__ == '__main__':
    sys.exit(main())
