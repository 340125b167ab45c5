# Benchmark v3, M1 (Table 3): one instance at the annotated apex (Apex*,
# with the benchmark's apex annotation error), classification only.
_base_ = ['./m6_ours.py']
__data = dict(sampling=dict(strategy='apex_single'))
train_dataloader = dict(dataset=__data)
val_dataloader = dict(dataset=__data)
test_dataloader = dict(dataset=__data)
model = dict(cam_head=None, mrd_head=None)
