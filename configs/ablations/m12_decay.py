# M12 (Fig. 3 f): instances from the decay phase only (apex..offset).
_base_ = ['../raicl_cde.py']
# Train and score on the same instances: the setting goes to the three loaders.
__data = dict(sampling=dict(strategy='decay'))
train_dataloader = dict(dataset=__data)
val_dataloader = dict(dataset=__data)
test_dataloader = dict(dataset=__data)
