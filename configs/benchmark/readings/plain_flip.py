# Reading on the benchmark: the target's horizontal flip
# as a plain image flip, instead of the flow-aware flip (mirror and negate
# u: a mirrored motion moves the other way).
_base_ = ['../m6_ours.py']
model = dict(augment_target=dict(flow_aware_flip=False))
