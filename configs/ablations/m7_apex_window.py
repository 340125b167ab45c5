# M7 (Table 3): MIR -> Apex: 16 frames in a window centred on the apex.
_base_ = ['../raicl_cde.py']
# Train and score on the same instances: the setting goes to the three loaders.
__data = dict(sampling=dict(strategy='apex_window'))
train_dataloader = dict(dataset=__data)
val_dataloader = dict(dataset=__data)
test_dataloader = dict(dataset=__data)
