# Reading on the benchmark: the ResNet's last stage at
# stride 2 (torchvision's) instead of 1: a 2x2 feature map at 64 px instead
# of 4x4, for the CAMs (Eq. 6) and the 8 facial queries (Eq. 7-8).
_base_ = ['../m6_ours.py']
model = dict(backbone=dict(strides=(1, 2, 2, 2)))
