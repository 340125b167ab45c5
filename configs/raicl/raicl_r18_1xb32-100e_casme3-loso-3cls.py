# Ra-ICL, ResNet18, 1 GPU x batch 32, 100 epochs, CAS(ME)^3 part A,
# 3 classes, LOSO:
# the name in OpenMMLab's scheme
# ({algorithm}_{backbone}_{NxB}_{schedule}_{dataset}).
# The settings live in configs/raicl_casme3_3cls.py (its current name, kept for
# one release).
_base_ = ['../raicl_casme3_3cls.py']
