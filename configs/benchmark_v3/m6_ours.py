# Benchmark v3, M6 (Table 3): the full method (MIR + IRC + MRD) on the
# synthetic benchmark's design v3 (raicl_mm.synthetic.presets.BENCHMARK_V3:
# two informative regions per class of different strength, a shared
# uninformative one; declared in docs/benchmark.md before any v3 result).
# Everything else is v2's M6 (configs/benchmark/m6_ours.py) except the CPU
# schedule below. The grid: python tools/ablation.py --grid v3 --seeds 0 1 2 3 4
_base_ = ['../benchmark/m6_ours.py']
# = raicl_mm.synthetic.presets.BENCHMARK_V3 (a test keeps the two equal).
__set = dict(
    num_subjects=26, clips_per_subject=12, clips_range=(8, 16),
    size=64, supersample=3, min_len=12, max_len=30,
    classes=('surprise', 'happiness', 'disgust'),
    class_weights=(0.19, 0.25, 0.56), design='strong_weak',
    amplitude=(0.5, 1.0), amplitude_dist='uniform',
    subject_amplitude_std=0.25, secondary_ratio=(0.2, 0.3),
    secondary_lag=(-0.25, 0.25), weak_ratio=(0.3, 0.5), weak_lag=(-0.3, 0.3),
    apex_range=(0.25, 0.75), apex_error_std=0.12,
    distractor_prob=0.2, distractor_ratio=(0.2, 0.5), blink_prob=0.2,
    blink_frames=(4, 8), head_shift_px=0.2, head_rotation_deg=0.2,
    illumination_std=0.01, noise_std=0.5, texture_contrast=12.0,
    jpeg_quality_range=(85, 95), seed=0)
__root = 'data/synthetic_benchmark_v3'
__data = dict(
    synthetic=dict(_delete_=True, out=__root, **__set),
    data_roots=dict(_delete_=True, casme2=__root + '/Cropped'),
    ann_files=dict(_delete_=True,
                   casme2=__root + '/CASME2-coding-synthetic.xlsx'),
    flow_cache='cache/flows_benchmark_v3')
train_dataloader = dict(dataset=__data)
val_dataloader = dict(dataset=__data)
test_dataloader = dict(dataset=__data)
# The CPU schedule in which the teacher learns (docs/benchmark.md, "v3"):
# 16 epochs of ~10 steps with tau = 0.9, a target horizon 1 / (1 - tau) of 10
# steps = 6 % of the run (the paper: 100 of ~1,400 steps = 7 %); the decay
# per epoch keeps v2's final learning rate (0.92^16 = 0.26 = 0.85^8). The
# paper's tau = 0.99 stays for its 100-epoch schedule (benchmarks/gpu).
model = dict(tau=0.9)
param_scheduler = [dict(type='ExponentialLR', gamma=0.92, by_epoch=True)]
train_cfg = dict(max_epochs=16, val_begin=16, val_interval=16)
default_hooks = dict(checkpoint=dict(interval=16))
