# M8 (Table 3): MIR -> Full: every frame of the clip.
_base_ = ['../raicl_cde.py']
sampling = dict(strategy='full')
