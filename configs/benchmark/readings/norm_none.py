# Reading on the benchmark: per-instance flow normalisation
# 'none' instead of the default 'standardize' (the paper does not say).
# The full method otherwise; docs/benchmark.md gives the measurement.
_base_ = ['../m6_ours.py']
__meta_keys = ('sample_id', 'dataset', 'subject', 'fold', 'single_instance')
train_pipeline = [
    dict(type='SampleInstancePair'),
    dict(type='FlowNormalize', mode='none'),
    dict(type='FormatInstances'),
    dict(type='PackActionInputs', meta_keys=__meta_keys)
]
test_pipeline = [
    dict(type='SampleInstancePair', test_mode=True),
    dict(type='FlowNormalize', mode='none'),
    dict(type='FormatInstances'),
    dict(type='PackActionInputs', meta_keys=__meta_keys)
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
