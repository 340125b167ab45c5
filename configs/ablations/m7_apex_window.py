# M7 (Table 3): MIR -> Apex: 16 frames in a window centred on the apex.
_base_ = ['../raicl_cde.py']
sampling = dict(strategy='apex_window')
