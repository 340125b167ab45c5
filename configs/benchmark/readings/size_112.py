# Reading on the benchmark: the flow and the network input
# at 112 px (the CDE configs' size) instead of the frames' own 64 px: the
# frames are resized before the flow, and the feature map is 7x7 instead of
# 4x4 for the 8 facial queries.
_base_ = ['../m6_ours.py']
__data = dict(flow_cfg=dict(size=(112, 112)))
train_dataloader = dict(dataset=__data)
val_dataloader = dict(dataset=__data)
test_dataloader = dict(dataset=__data)
