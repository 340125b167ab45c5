# Alias kept for one release: the embedded synthetic default under its name in
# OpenMMLab's scheme ({algorithm}_{backbone}_{NxB}_{schedule}_{dataset}).
_base_ = ['./raicl_r18-w32_1xb16-30e_synthetic-loso-3cls.py']
