# M11 (Fig. 3 e): instances from the activation phase only (onset..apex).
_base_ = ['../raicl_cde.py']
# Train and score on the same instances: the setting goes to the three loaders.
__data = dict(sampling=dict(strategy='activation'))
train_dataloader = dict(dataset=__data)
val_dataloader = dict(dataset=__data)
test_dataloader = dict(dataset=__data)
