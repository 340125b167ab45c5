# M1 (Table 3): MIR -> Apex* (single onset/apex instance), no IRC, no MRD.
_base_ = ['../raicl_cde.py']
# Train and score on the same instances: the setting goes to the three loaders.
__data = dict(sampling=dict(strategy='apex_single'))
train_dataloader = dict(dataset=__data)
val_dataloader = dict(dataset=__data)
test_dataloader = dict(dataset=__data)
model = dict(cam_head=None, mrd_head=None)
