# M9 (Table 3): MIR -> Random: 16 random frames.
_base_ = ['../raicl_cde.py']
sampling = dict(strategy='random')
