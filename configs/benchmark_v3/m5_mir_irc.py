# Benchmark v3, M5 (Table 3): MIR + IRC, no MRD.
_base_ = ['./m6_ours.py']
model = dict(mrd_head=None)
