# M5 (Table 3): MIR + IRC, no MRD.
_base_ = ['../raicl_cde.py']
model = dict(mrd_head=None)
