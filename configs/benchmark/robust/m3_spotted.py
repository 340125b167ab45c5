# The robust-MER table of "Rethinking key-frame-based micro-expression recognition" (CausalNet) on the synthetic benchmark, "Spotting" column:
# M3 with the apex from the automatic spotter (the frame where the
# onset->frame motion peaks, raicl_mm.datasets.sampling; docs/results.md
# gives its error against the benchmark's true apex) instead of the sheet.
_base_ = ['../m3_apexstar_irc_mrd.py']
__data = dict(sampling=dict(apex_source='spotted'))
train_dataloader = dict(dataset=__data)
val_dataloader = dict(dataset=__data)
test_dataloader = dict(dataset=__data)
