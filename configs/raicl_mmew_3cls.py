# Alias kept for one release: configs/raicl_r18_1xb32-100e_mmew-loso-3cls.py under its name in
# OpenMMLab's scheme ({algorithm}_{backbone}_{NxB}_{schedule}_{dataset}).
_base_ = ['./raicl_r18_1xb32-100e_mmew-loso-3cls.py']
