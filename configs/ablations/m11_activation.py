# M11 (Fig. 3 e): instances from the activation phase only (onset..apex).
_base_ = ['../raicl_cde.py']
sampling = dict(strategy='activation')
