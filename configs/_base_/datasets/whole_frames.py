# cde.py for datasets that ship whole frames (CAS(ME)^3 part A): the face is
# aligned with the landmark crop (docs/data.md), and the test pipeline's
# ClipInstances step (mmaction2's inference API on a raw clip) computes a
# clip's instances with the same crop as the dataset.
_base_ = ['./cde.py']
__data = dict(flow_cfg=dict(face_crop='landmarks'))
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
