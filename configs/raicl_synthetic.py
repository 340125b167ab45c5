# The embedded default: Ra-ICL on the synthetic micro-expression set that the
# project generates itself (tools/make_synthetic.py; generated on first use),
# written in the CASME II layout and read by the real CASME II parser.
# Small and fast enough for the 2-core LOSO demo: 8 subjects = 8 folds.
_base_ = [
    './_base_/default_runtime.py', './_base_/schedules/adam_100e.py',
    './_base_/models/raicl_r18.py', './_base_/datasets/cde.py'
]
synthetic = dict(out='data/synthetic', num_subjects=8, clips_per_subject=12,
                 size=128, seed=0)
protocol = 'casme2_3cls'  # CASME II sheet, CDE rule: negative/positive/surprise
data_roots = dict(casme2='data/synthetic/Cropped')
ann_files = dict(casme2='data/synthetic/CASME2-coding-synthetic.xlsx')
flow_cfg = dict(method='tvl1', size=(64, 64))
flow_cache = 'cache/flows_synthetic'

# A half-width ResNet18 whose last stage keeps stride 1 (a 4x4 map at 64 px
# for CAM / MRD) so that 8 folds train in minutes on 2 CPU cores.
model = dict(
    backbone=dict(stem_channels=32, base_channels=32, strides=(1, 2, 2, 1)),
    mrd_head=dict(embed_dim=64, proj_hidden=128, pred_hidden=128))

# 84 training clips per fold: batch 16 gives 5 steps an epoch; a slower decay
# than the paper's 0.9 keeps the lr useful over the 150 steps of the demo.
train_dataloader = dict(batch_size=16)
val_dataloader = dict(batch_size=16)
test_dataloader = dict(batch_size=16)
param_scheduler = [dict(type='ExponentialLR', gamma=0.95, by_epoch=True)]
max_epochs = 30
train_cfg = dict(max_epochs=max_epochs, val_begin=max_epochs,
                 val_interval=max_epochs)
default_hooks = dict(checkpoint=dict(interval=10), logger=dict(interval=2))
