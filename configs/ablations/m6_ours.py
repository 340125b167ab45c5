# M6 (Table 3): the full method (MIR + IRC + MRD) = configs/raicl_cde.py.
_base_ = ['../raicl_cde.py']
