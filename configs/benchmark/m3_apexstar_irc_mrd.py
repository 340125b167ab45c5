# Benchmark M3 (Table 3): MIR -> Apex* (the onset/annotated-apex instance),
# with IRC and MRD. Apex-based: it pays for the annotation error.
_base_ = ['./m6_ours.py']
__data = dict(sampling=dict(strategy='apex_single'))
train_dataloader = dict(dataset=__data)
val_dataloader = dict(dataset=__data)
test_dataloader = dict(dataset=__data)
