# Alias kept for one release of configs/raicl/
# raicl_r18_1xb32-100e_dfme-holdout-7cls.py,
# its name in OpenMMLab's scheme
# ({algorithm}_{backbone}_{NxB}_{schedule}_{dataset}).
_base_ = ['./raicl/raicl_r18_1xb32-100e_dfme-holdout-7cls.py']
