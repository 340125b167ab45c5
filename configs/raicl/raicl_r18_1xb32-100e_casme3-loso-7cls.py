# Ra-ICL, ResNet18, 1 GPU x batch 32, 100 epochs, CAS(ME)^3 part A,
# 7 classes, LOSO:
# the name in OpenMMLab's scheme
# ({algorithm}_{backbone}_{NxB}_{schedule}_{dataset}).
# The settings live in configs/raicl_casme3_7cls.py (its current name, kept for
# one release).
_base_ = ['../raicl_casme3_7cls.py']
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
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
