# M10 (Table 3): MIR -> Uniform: 16 frames spread evenly.
_base_ = ['../raicl_cde.py']
sampling = dict(strategy='uniform')
