# Runtime shared by every Ra-ICL config (mmengine Runner).
default_scope = 'mmaction'
# Checks the config before anything is built (keys that reach nothing, loaders
# that disagree) and loads checkpoints by the project's policy; mmaction2's own
# tools/train.py and tools/test.py build it through RUNNERS.
runner_type = 'RaICLRunner'
custom_imports = dict(imports=['raicl_mm'], allow_failed_imports=False)

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, ignore_last=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # The scored model is the LAST epoch (no checkpoint is ever chosen by
    # looking at the test subject); checkpoints exist to resume.
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=1,
                    save_last=True, save_best=None),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    sync_buffers=dict(type='SyncBuffersHook'))

# Eq. 3: the target branch follows the online branch after each step.
custom_hooks = [
    dict(type='TargetEMAHook', interval=1),
    # Resumed runs continue exactly as uninterrupted ones.
    dict(type='EpochSeedHook'),
    # At each validation / test: the confusion matrix and a CAM strip of the
    # first validation clips into the visualizer (TensorBoard below).
    dict(type='RaICLVisualizationHook', num_clips=3, tile=64),
    # checkpoint meta['raicl_train_data'] = 'synthetic' / 'real'; inference
    # warns when a synthetic-only checkpoint meets real frames.
    dict(type='TrainDataProvenanceHook')
]

env_cfg = dict(cudnn_benchmark=False,
               mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))

log_processor = dict(type='LogProcessor', window_size=10, by_epoch=True)
# Scalars, confusion matrices and CAM strips: PNG / JSON under
# <work_dir>/<timestamp>/vis_data and a TensorBoard event file beside them
# (tensorboard --logdir work_dirs).
visualizer = dict(type='ActionVisualizer',
                  vis_backends=[dict(type='LocalVisBackend'),
                                dict(type='TensorboardVisBackend')])
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
# Set True (or pass --trust-checkpoint) only for a checkpoint you trust that
# holds objects outside mmengine's own checkpoint types.
trust_checkpoint = False
# A checkpoint must fit the model key by key (another class count or a missing
# MRD head is refused). To load only a part on purpose, list the key prefixes
# left at initialisation, e.g. ['online.fc.', 'target.module.fc.'].
partial_checkpoint = None
