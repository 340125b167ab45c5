# Ra-ICL on DFME under the CCAC 2024 protocol as used by
# "Modeling the evolution dynamics to enhance micro-expression recognition":
# 7 classes, a fixed
# hold-out split (train_data 1,856 / test_A 474 / test_B 299 clips of 259
# subjects, subjects disjoint), a 4:1 subject split of train_data for
# validation, the best-on-validation checkpoint, the test split scored once,
# every clip resampled to 100 fps (uniform frame sampling) before MIR.
#
# DFME's sheet format is not public here, so it is read as a sheet protocol
# (bring your own sheet, docs/data.md): rename the `columns` values to your
# sheet's headers and `frames` to your folder layout, e.g.
#   --cfg-options train_dataloader.dataset.protocol.columns.label=Emotion ...
# (the same key for the three loaders). The counts above are that paper's.
# Name in OpenMMLab's scheme: ResNet18, 1 GPU x batch 32, 100 epochs, DFME
# hold-out split, 7 classes; configs/raicl_dfme.py is its alias.
_base_ = [
    '../_base_/default_runtime.py', '../_base_/schedules/adam_100e.py',
    '../_base_/models/raicl_r18.py', '../_base_/datasets/cde.py'
]
__protocol = dict(
    _delete_=True,  # replaces the base's protocol name
    source='sheet', name='dfme_7cls', dataset='dfme',
    classes=['happiness', 'anger', 'contempt', 'disgust', 'fear', 'sadness',
             'surprise'],
    class_map=None,  # the sheet's labels are the class names (any case)
    columns=dict(subject='Subject', clip='Filename', onset='Onset',
                 apex='Apex', offset='Offset', label='Emotion',
                 fps='FPS',        # 200-500 fps, per clip
                 split='Split'),   # train_data / test_A / test_B
    fps=None,
    frames='{subject}/{clip}',
    sheet=None, header_row=1)
__sampling = dict(target_fps=100.0)
__data = dict(
    protocol=__protocol,
    data_roots=dict(dfme='data/DFME/frames'),
    ann_files=dict(dfme='data/DFME/DFME_labels.xlsx'),
    sampling=__sampling,
    fold=None,  # no LOSO: the hold-out split below
    holdout=dict(by='column', train=['train_data'], test=['test_A'], val=None,
                 val_fraction=0.2, seed=0))
# ClipInstances (mmaction2's inference API from a raw clip) with the
# dataset's sampling: every clip resampled to 100 fps (a frame folder needs
# its rate: ClipInstances' fps, or RaICLInferencer's fps=).
test_pipeline = [
    dict(type='ClipInstances', flow_cfg=None, sampling=__sampling),
    dict(type='SampleInstancePair', test_mode=True),
    dict(type='FlowNormalize', mode='standardize'),
    dict(type='FormatInstances'),
    dict(type='PackActionInputs',
         meta_keys=('sample_id', 'dataset', 'subject', 'fold',
                    'single_instance'))
]
train_dataloader = dict(dataset=dict(split='train', **__data))
val_dataloader = dict(dataset=dict(split='val', pipeline=test_pipeline,
                                   **__data))
test_dataloader = dict(dataset=dict(split='test', test_mode=True,
                                    pipeline=test_pipeline, **__data))
model = dict(num_classes=7)
# Best-on-validation: validate every epoch on the held-out training subjects,
# keep the best UF1 checkpoint; the test split is scored once with it.
train_cfg = dict(val_begin=1, val_interval=1)
default_hooks = dict(checkpoint=dict(save_best='UF1', rule='greater'))
