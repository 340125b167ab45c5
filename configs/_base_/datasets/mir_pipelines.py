# MIR pipelines: a random instance pair for training, the middle instance for
# testing (paper A.1.3). The branch transforms run on the device in the model.
# Per-instance normalisation (a config choice; the paper does not say). Peers
# save each flow map as an image scaled to 0-255, i.e. per-instance scaling;
# 'standardize' also removes the instance's mean flow (global head motion).
normalize = 'standardize'
meta_keys = ('sample_id', 'dataset', 'subject', 'fold', 'single_instance')
train_pipeline = [
    dict(type='SampleInstancePair'),
    dict(type='FlowNormalize', mode=normalize),
    dict(type='FormatInstances'),
    dict(type='PackActionInputs', meta_keys=meta_keys)
]
test_pipeline = [
    dict(type='SampleInstancePair', test_mode=True),
    dict(type='FlowNormalize', mode=normalize),
    dict(type='FormatInstances'),
    dict(type='PackActionInputs', meta_keys=meta_keys)
]
