# M3 (Table 3): MIR -> Apex*, with IRC and MRD.
_base_ = ['../raicl_cde.py']
sampling = dict(strategy='apex_single')
