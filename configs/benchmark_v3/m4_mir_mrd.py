# Benchmark v3, M4 (Table 3): MIR + MRD, no IRC.
_base_ = ['./m6_ours.py']
model = dict(cam_head=None)
