# M4 (Table 3): MIR + MRD, no IRC.
_base_ = ['../raicl_cde.py']
model = dict(cam_head=None)
