# Benchmark M1 (Table 3): MIR -> Apex* (the onset/annotated-apex instance),
# no IRC, no MRD. The benchmark's apex annotations carry an error, as real
# ones do (docs/benchmark.md).
_base_ = ['./m6_ours.py']
__data = dict(sampling=dict(strategy='apex_single'))
train_dataloader = dict(dataset=__data)
val_dataloader = dict(dataset=__data)
test_dataloader = dict(dataset=__data)
model = dict(cam_head=None, mrd_head=None)
