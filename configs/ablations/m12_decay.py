# M12 (Fig. 3 f): instances from the decay phase only (apex..offset).
_base_ = ['../raicl_cde.py']
sampling = dict(strategy='decay')
