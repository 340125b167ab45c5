# Ra-ICL, ResNet18, 1 GPU x batch 32, 100 epochs, the MEGC2019 composite database
# evaluation (CASME II + SAMM + SMIC-HS), 3 classes, LOSO:
# the name in OpenMMLab's scheme
# ({algorithm}_{backbone}_{NxB}_{schedule}_{dataset}).
# The settings live in configs/raicl_cde.py (its current name, kept for
# one release).
_base_ = ['../raicl_cde.py']
