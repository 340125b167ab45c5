# Alias kept for one release of the embedded synthetic default,
# configs/raicl/raicl_r18-w32_1xb16-30e_synthetic-loso-3cls.py, its name in
# OpenMMLab's scheme ({algorithm}_{backbone}_{NxB}_{schedule}_{dataset}).
_base_ = ['./raicl/raicl_r18-w32_1xb16-30e_synthetic-loso-3cls.py']
