"""GPU suite, section ``protocol``: a CDE-sized synthetic LOSO protocol on one
GPU -- flow time, fold time, folds sharing the GPU.

    python -m benchmarks.gpu.protocol --out OUT/protocol.json [--tiny] [--device D]

1. ``generate``: a synthetic set of CDE's size (68 subjects, 442 clips, at
   least 17 frames each so that every clip has 16 instances; 128 px frames)
   in the CASME II layout, on all cores.
2. ``flow``: every clip's 16 onset->frame pairs at 112 px with the batched
   torch TV-L1 on the device (``raicl_mm.flow.batched.extract_all_torch``:
   reading the JPEGs, solving, strain, float16 cache writes) into the cache
   that the folds read. Clips go in chunks; when the budget would be overrun
   the rest is not solved, the figure is then the measured rate projected to
   7,072 pairs and says so (``flow.complete``).
3. ``folds_k`` for k in 8, 1, 4, 2 (8 first: the concurrency a 68-fold
   protocol would use; then as the budget allows, each skip recorded with
   its reason): k processes of
   :mod:`benchmarks.gpu.fold_worker` at once, each one LOSO fold (folds 0..k-1)
   of ``configs/raicl_cde.py``'s model and schedule (full-width ResNet18,
   112 px, batch 32, Adam, EMA target, every hook) on this data, for
   ``EPOCHS`` epochs, scored on its test subject at the end; threads per
   process = cores / k; GPU memory (``torch.cuda.max_memory_allocated``,
   per process) and utilisation (nvidia-smi every 0.5 s) while they run.

Projection (``projection.k<k>``) of each round to the paper's 100 epochs on
CDE (the 68 folds' exact steps per epoch from the shipped list): a fold =
its measured fixed time (process start, imports, data, Runner, scoring: wall
- steps x period - epoch boundaries) + 100 x steps/epoch x period + 99 x
epoch-boundary extra + checkpoints (every 5 epochs) x the measured save time;
68 such folds k at a time (greedy) plus the flow. Measured and projected
figures are named as such; nothing here is measured on CPU for the GPU.
Goal: the whole protocol in at most 15 minutes.
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

CDE_SUBJECTS, CDE_CLIPS, CDE_INSTANCES, CDE_SIZE = 68, 442, 16, 112
PAPER_EPOCHS = 100
GOAL_S = 15 * 60
EPOCHS = 2

CONFIG = """\
_base_ = [{base!r}]
__data = dict(
    protocol='casme2_3cls',
    synthetic=dict(out={out!r}, num_subjects={subjects},
                   clips_per_subject={cps}, clips_range={crange!r},
                   size={gen_size}, min_len={min_len}, max_len={max_len},
                   seed={seed}),
    data_roots=dict(_delete_=True, casme2={out!r} + '/Cropped'),
    ann_files=dict(_delete_=True,
                   casme2={out!r} + '/CASME2-coding-synthetic.xlsx'),
    flow_cfg=dict(method='tvl1_torch', size=({size}, {size})),
    sampling=dict(num_instances={instances}),
    flow_cache={cache!r}, flow_workers=1)
train_dataloader = dict(dataset=__data{loader})
val_dataloader = dict(dataset=__data{loader})
test_dataloader = dict(dataset=__data{loader})
default_hooks = dict(logger=dict(interval=5))
{extra}"""

TINY_EXTRA = """\
model = dict(
    backbone=dict(stem_channels=8, base_channels=8),
    mrd_head=dict(embed_dim=16, proj_hidden=16, pred_hidden=16))
"""


def seed_for_total(subjects: int, lo: int, hi: int, total: int,
                   tries: int = 5000) -> int:
    """The first generator seed whose per-subject clip counts (``clips_range``
    drawn per subject) add up to ``total``."""
    from raicl_mm.synthetic.generator import (SyntheticConfig,
                                              _clips_per_subject)
    for seed in range(tries):
        cfg = SyntheticConfig(num_subjects=subjects, clips_range=(lo, hi),
                              seed=seed)
        if int(_clips_per_subject(cfg).sum()) == total:
            return seed
    raise ValueError(f'no seed < {tries} gives {total} clips')


def plan(tiny: bool, tmp: str) -> dict:
    if tiny:
        return dict(subjects=3, cps=2, crange=None, clips=6, gen_size=32,
                    min_len=9, max_len=9, seed=0, size=32, instances=2,
                    loader=', batch_size=2', extra=TINY_EXTRA, epochs=2,
                    rounds=(2,), batch_pairs=64)
    seed = seed_for_total(CDE_SUBJECTS, 4, 9, CDE_CLIPS)
    return dict(subjects=CDE_SUBJECTS, cps=7, crange=(4, 9), clips=CDE_CLIPS,
                gen_size=128, min_len=17, max_len=24, seed=seed,
                size=CDE_SIZE, instances=CDE_INSTANCES, loader='', extra='',
                epochs=EPOCHS, rounds=(8, 1, 4, 2), batch_pairs=512)


def write_config(p: dict, tmp: str) -> str:
    path = osp.join(tmp, 'cde_sized_synthetic.py')
    with open(path, 'w') as f:
        f.write(CONFIG.format(
            base=osp.join(gc.REPO, 'configs', 'raicl_cde.py'),
            out=osp.join(tmp, 'synthetic'), cache=osp.join(tmp, 'cache'),
            **{k: p[k] for k in ('subjects', 'cps', 'crange', 'gen_size',
                                 'min_len', 'max_len', 'seed', 'size',
                                 'instances', 'loader', 'extra')}))
    return path


def fold_projection(results, steps_per_epoch, epochs=PAPER_EPOCHS,
                    ckpt_interval=5):
    """Per-fold figures of one round -> the projected wall time of each CDE
    fold at ``epochs`` (list, seconds) and the parts used."""
    n = len(results)
    mean = lambda k: sum(r[k] or 0.0 for r in results) / n  # noqa: E731
    period = mean('period_s')
    extra = mean('epoch_boundary_extra_s')
    ckpt = mean('checkpoint_s')
    fixed = []
    for r in results:
        e = r['epochs']
        fixed.append(max(0.0, r['wall_s'] - r['steps'] * r['period_s']
                         - (e - 1) * (r['epoch_boundary_extra_s'] or 0.0)))
    fixed_s = sum(fixed) / n
    n_ckpt = epochs // ckpt_interval
    folds = [gc.project_fold_s(fixed_s, period, s * epochs)
             + (epochs - 1) * extra + n_ckpt * ckpt
             for s in steps_per_epoch]
    return folds, dict(fixed_s=round(fixed_s, 3), period_s=round(period, 5),
                       epoch_boundary_extra_s=round(extra, 4),
                       checkpoint_s=round(ckpt, 4),
                       checkpoints_per_fold=n_ckpt,
                       fold_s_mean=round(sum(folds) / len(folds), 2))


def run_round(sec, k, cfg_path, p, tmp, log_dir, device, limit_s):
    """k fold processes at once; their JSONs, the wall, GPU utilisation."""
    cores = gc.common.usable_cores()
    threads = max(1, cores // k)
    procs = []
    t0 = time.time()
    with gc.UtilSampler() as util:
        for i in range(k):
            out = osp.join(tmp, f'k{k}_fold{i}.json')
            env = dict(os.environ, OMP_NUM_THREADS=str(threads),
                       MKL_NUM_THREADS=str(threads), GPU_FOLD_T0=repr(
                           time.time()))
            if device == 'cpu':
                env['CUDA_VISIBLE_DEVICES'] = ''
            log = open(osp.join(log_dir, f'k{k}_fold{i}.log'), 'w')
            cmd = [*gc.python_cmd(), '-m', 'benchmarks.gpu.fold_worker',
                   cfg_path, '--fold', str(i), '--epochs', str(p['epochs']),
                   '--work-dir', osp.join(tmp, f'work_k{k}_{i}'),
                   '--out', out]
            procs.append((subprocess.Popen(cmd, cwd=gc.REPO, env=env,
                                           stdout=log, stderr=log), out,
                          log))
        killed = []
        for proc, out, log in procs:
            left = limit_s - (time.time() - t0)
            try:
                proc.wait(timeout=max(1.0, left))
            except subprocess.TimeoutExpired:
                proc.kill()  # only the processes started here, by pid
                proc.wait()
                killed.append(proc.pid)
            log.close()
    wall = time.time() - t0
    results, errors = [], []
    for i, (proc, out, log) in enumerate(procs):
        if proc.returncode == 0 and osp.isfile(out):
            with open(out) as f:
                results.append(json.load(f))
        else:
            with open(log.name) as f:
                tail = f.read()[-1200:]
            errors.append(dict(fold=i, rc=proc.returncode,
                               killed=proc.pid in killed, log_tail=tail))
    return dict(concurrent=k, threads_per_process=threads,
                wall_s=round(wall, 2), folds=results, errors=errors,
                gpu_util=util.summary(), limit_s=round(limit_s, 1))


def body(sec: gc.Section, device: str) -> None:
    os.chdir(gc.REPO)
    import raicl_mm  # noqa: F401
    tiny = sec.data['tiny']
    tmp = tempfile.mkdtemp(prefix='gpu_protocol_')
    log_dir = osp.join(osp.dirname(osp.abspath(sec.path)), 'protocol_logs')
    os.makedirs(log_dir, exist_ok=True)
    p = plan(tiny, tmp)
    cfg_path = write_config(p, tmp)
    sec.data['input'] = dict(
        subjects=p['subjects'], clips=p['clips'], instances=p['instances'],
        flow_size=p['size'], frame_size=p['gen_size'],
        clip_frames=[p['min_len'], p['max_len']], generator_seed=p['seed'],
        epochs_per_fold=p['epochs'], rounds=list(p['rounds']),
        model='configs/raicl_cde.py (full-width ResNet18, batch 32)'
        + (' with a width-8 model (tiny)' if tiny else ''),
        config=open(cfg_path).read().replace(tmp, '$TMP'))
    figs = sec.data['figures']
    from raicl_mm.engine.cli import read_config
    from raicl_mm.engine.config import data_settings
    cfg = read_config(cfg_path)
    ds = data_settings(cfg)

    def generate():
        from raicl_mm.datasets.dataset import prepare_synthetic
        spec = ds['synthetic']
        spec = spec.to_dict() if hasattr(spec, 'to_dict') else dict(spec)
        t = time.perf_counter()
        man = prepare_synthetic(spec)
        return dict(seconds_generate=round(time.perf_counter() - t, 2),
                    clips=len(man['clips']),
                    ok=len(man['clips']) == p['clips'])
    r = sec.check('generate', generate)
    if r:
        figs['generate_s'] = r['seconds_generate']

    state = {}

    def flow():
        from raicl_mm.datasets.instance_sets import sampled_cache
        from raicl_mm.datasets.sampling import SamplingConfig
        from raicl_mm.datasets.sources import build_records
        from raicl_mm.flow import FlowConfig
        from raicl_mm.flow.batched import extract_all_torch
        plain = lambda v: v.to_dict() if hasattr(v, 'to_dict') else dict(  # noqa: E731,E501
            v)
        flow_cfg = FlowConfig(**plain(ds['flow_cfg']))
        sampling = SamplingConfig(**plain(ds['sampling']))
        report = build_records(ds['protocol'], plain(ds['data_roots']),
                               plain(ds['ann_files']))
        records = list(report.records)
        cache = sampled_cache(ds['flow_cache'], flow_cfg, sampling)
        # Leave the folds at least this much of the budget.
        keep = 15.0 if tiny else 45.0
        chunk = max(8, len(records) // 8)
        done, pairs, secs, failed = 0, 0, 0.0, 0
        for start in range(0, len(records), chunk):
            part = records[start:start + chunk]
            if done and secs / done * len(part) > sec.remaining() - keep:
                break
            s = extract_all_torch(part, cache, device=device,
                                  batch_pairs=p['batch_pairs'],
                                  progress=False)
            gc.sync(device)
            done += len(part)
            pairs += s['pairs_computed']
            secs += s['seconds']
            failed += len(s['failed'])
        total_pairs = len(records) * p['instances']
        rate = pairs / secs if secs else None
        state['complete'] = done == len(records) and not failed
        return dict(clips=len(records), clips_done=done,
                    pairs_solved=pairs, seconds=round(secs, 2),
                    pairs_per_s=round(rate, 2) if rate else None,
                    failed=failed, complete=state['complete'],
                    cde_pairs=total_pairs,
                    cde_flow_s=(round(secs, 2) if state['complete'] else
                                round(total_pairs / rate, 2) if rate
                                else None),
                    cde_flow_s_is=('measured' if state['complete'] else
                                   'projected from the measured device rate '
                                   f'on {pairs} of {total_pairs} pairs'),
                    batch_pairs=p['batch_pairs'],
                    ok=failed == 0)
    r = sec.check('flow', flow)
    if r:
        figs['flow'] = {k: v for k, v in r.items() if k != 'ok'}
    if not state.get('complete'):
        for k in p['rounds']:
            sec.skip(f'folds_k{k}', 'the flow cache is not complete (see '
                     'flow): the folds would compute the rest themselves')
        return
    steps = gc.cde_steps_per_epoch(int(cfg.train_dataloader.batch_size),
                                   bool(cfg.train_dataloader.get(
                                       'drop_last', False)))
    ckpt_interval = int(cfg.default_hooks.checkpoint.get('interval', 5))
    rounds = {}
    first = None  # (k, wall) of the first round
    for k in p['rounds']:
        left = sec.remaining()
        # A round of fewer folds takes less than the first one, not less
        # than its fixed part: 0.6 + 0.4 k / k_first of its wall.
        need = (first[1] * (0.6 + 0.4 * min(1.0, k / first[0]))
                if first else 0.0)
        if first and need > left - 2:
            sec.skip(f'folds_k{k}', f'budget: ~{need:.0f} s expected (the '
                     f'{first[0]}-fold round took {first[1]:.0f} s), '
                     f'{left:.0f} s left')
            continue
        if not first and left < 10:
            sec.skip(f'folds_k{k}', f'budget: {left:.0f} s left')
            continue

        def one(k=k, left=left):
            rr = run_round(sec, k, cfg_path, p, tmp, log_dir, device,
                           left - 2)
            ok = not rr['errors'] and len(rr['folds']) == k
            return dict(rr, ok=ok)
        rr = sec.check(f'folds_k{k}', one)
        rec = sec.data['checks'][f'folds_k{k}']
        if first is None and rec.get('wall_s'):
            first = (k, rec['wall_s'])
        if rr is None:
            continue
        folds_s, parts = fold_projection(rr['folds'], steps,
                                         ckpt_interval=ckpt_interval)
        flow_s = figs['flow']['cde_flow_s']
        total = gc.project_protocol_s(folds_s, k, flow_s)
        mem = [f['max_memory_allocated_mib'] for f in rr['folds']
               if f.get('max_memory_allocated_mib') is not None]
        rounds[f'k{k}'] = dict(
            concurrent=k, measured_round_wall_s=rr['wall_s'],
            measured_fold_wall_s=[f['wall_s'] for f in rr['folds']],
            measured_period_s=[f['period_s'] for f in rr['folds']],
            # where a fold's time goes: the step alone (train_step + hooks),
            # the rest of the period (data: pipeline, collate, transfer),
            # process start + imports, building (dataset from the cache,
            # Runner), scoring the test subject
            measured_step_s=[f['step_s'] for f in rr['folds']],
            measured_data_s=[round(f['period_s'] - f['step_s'], 5)
                             if f['period_s'] and f['step_s'] else None
                             for f in rr['folds']],
            measured_start_and_imports_s=[
                round(f['process_start_to_main_s'] + f['imports_s'], 2)
                for f in rr['folds']],
            measured_build_s=[f['build_s'] for f in rr['folds']],
            measured_val_s=[f['val_s'] for f in rr['folds']],
            gpu_util=rr['gpu_util'],
            max_memory_allocated_mib_per_process=max(mem) if mem else None,
            projected_fold_s_100_epochs=parts['fold_s_mean'],
            projection_parts=parts,
            projected_protocol_s=round(total, 1),
            projected_protocol_min=round(total / 60, 2),
            goal_met=bool(total <= GOAL_S))
        figs['rounds'] = rounds
        sec.write()
    if rounds:
        best = min(rounds.values(), key=lambda r: r['projected_protocol_s'])
        sec.data['goal'] = dict(
            what=f'CDE protocol (442 x 16 flows + 68 folds x {PAPER_EPOCHS} '
                 f'epochs) in at most {GOAL_S // 60} minutes on this GPU',
            best_concurrency=best['concurrent'],
            projected_min=best['projected_protocol_min'],
            met=best['goal_met'],
            flow_s=figs['flow']['cde_flow_s'],
            flow_s_is=figs['flow']['cde_flow_s_is'],
            note=('folds measured at %d epochs and projected to %d (see '
                  'projection_parts); the flow is measured on the whole '
                  'set when flow.complete' % (p['epochs'], PAPER_EPOCHS)))


def main(argv=None):
    args = gc.parse_args(__doc__.split('\n')[0], argv)
    return gc.run_section('protocol', args, body)


if __name__ == '__main__':
    sys.exit(main())
