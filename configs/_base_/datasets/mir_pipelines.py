# MIR pipelines: a random instance pair for training, the middle instance for
# testing (paper A.1.3). The branch transforms run on the device in the model.
# Per-instance normalisation (a config choice; the paper does not say); to
# change it, override the pipelines' FlowNormalize in the dataset dicts. Peers
# save each flow map as an image scaled to 0-255, i.e. per-instance scaling;
# 'standardize' also removes the instance's mean flow (global head motion).
__normalize = 'standardize'
__meta_keys = ('sample_id', 'dataset', 'subject', 'fold', 'single_instance')
train_pipeline = [
    dict(type='SampleInstancePair'),
    dict(type='FlowNormalize', mode=__normalize),
    dict(type='FormatInstances'),
    dict(type='PackActionInputs', meta_keys=__meta_keys)
]
# ClipInstances passes the dataset's instances through; given a video or a
# frame folder (mmaction2's inference_recognizer and inferencers) it computes
# them with these settings, which must be the test dataset's flow_cfg and
# sampling (here cde.py's defaults; a config that changes them overrides both).
test_pipeline = [
    dict(type='ClipInstances', flow_cfg=None, sampling=None),
    dict(type='SampleInstancePair', test_mode=True),
    dict(type='FlowNormalize', mode=__normalize),
    dict(type='FormatInstances'),
    dict(type='PackActionInputs', meta_keys=__meta_keys)
]
