# Benchmark v3, M2 (Table 3): MIR (middle sampling), no IRC, no MRD.
_base_ = ['./m6_ours.py']
model = dict(cam_head=None, mrd_head=None)
