# M1 (Table 3): MIR -> Apex* (single onset/apex instance), no IRC, no MRD.
_base_ = ['../raicl_cde.py']
sampling = dict(strategy='apex_single')
model = dict(cam_head=None, mrd_head=None)
