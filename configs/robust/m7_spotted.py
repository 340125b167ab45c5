# The robust-MER table of "Rethinking key-frame-based micro-expression recognition" (CausalNet), "Spotting" column: M7 (Table 3) with the apex
# taken from the automatic spotter (the onset->frame motion peak,
# raicl_mm.datasets.sampling.spot_apex) instead of the sheet.
_base_ = ['../ablations/m7_apex_window.py']
__data = dict(sampling=dict(apex_source='spotted'))
train_dataloader = dict(dataset=__data)
val_dataloader = dict(dataset=__data)
test_dataloader = dict(dataset=__data)
