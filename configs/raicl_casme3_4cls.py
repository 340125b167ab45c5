# Ra-ICL on CAS(ME)^3 part A, 4-class LOSO (paper Table 2).
# Counts from the official v2 sheet: see docs/data.md (pass an exclusion list
# with dataset.exclude_file=... to drop samples you consider mislabelled).
_base_ = [
    './_base_/default_runtime.py', './_base_/schedules/adam_100e.py',
    './_base_/models/raicl_r18.py', './_base_/datasets/cde.py'
]
# CAS(ME)^3 part A ships whole 1280x720 frames: the face is aligned with the
# landmark crop (docs/data.md); face_crop=None is refused for them.
__data = dict(protocol='casme3_4cls', flow_cfg=dict(face_crop='landmarks'))
# The test pipeline's ClipInstances (mmaction2's inference API from a raw
# clip) with the dataset's landmark crop.
test_pipeline = [
    dict(type='ClipInstances', flow_cfg=dict(face_crop='landmarks')),
    dict(type='SampleInstancePair', test_mode=True),
    dict(type='FlowNormalize', mode='standardize'),
    dict(type='FormatInstances'),
    dict(type='PackActionInputs',
         meta_keys=('sample_id', 'dataset', 'subject', 'fold',
                    'single_instance'))
]
train_dataloader = dict(dataset=__data)
val_dataloader = dict(dataset=dict(__data, pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(__data, pipeline=test_pipeline))
model = dict(num_classes=4)
