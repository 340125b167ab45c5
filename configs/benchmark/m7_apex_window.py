# Benchmark M7 (Table 3): MIR -> Apex, the instances in a window centred on
# the annotated apex, with IRC and MRD.
_base_ = ['./m6_ours.py']
__data = dict(sampling=dict(strategy='apex_window'))
train_dataloader = dict(dataset=__data)
val_dataloader = dict(dataset=__data)
test_dataloader = dict(dataset=__data)
