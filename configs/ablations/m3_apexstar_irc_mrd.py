# M3 (Table 3): MIR -> Apex*, with IRC and MRD.
_base_ = ['../raicl_cde.py']
# Train and score on the same instances: the setting goes to the three loaders.
__data = dict(sampling=dict(strategy='apex_single'))
train_dataloader = dict(dataset=__data)
val_dataloader = dict(dataset=__data)
test_dataloader = dict(dataset=__data)
