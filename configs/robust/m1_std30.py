# The robust-MER table of "Rethinking key-frame-based micro-expression recognition" (CausalNet): M1 (Table 3) with Gaussian noise of STD 30
# frames on the annotated apex (rounded, clipped into the clip).
_base_ = ['../ablations/m1_apexstar_cls.py']
__data = dict(sampling=dict(apex_jitter_std=30.0))
train_dataloader = dict(dataset=__data)
val_dataloader = dict(dataset=__data)
test_dataloader = dict(dataset=__data)
