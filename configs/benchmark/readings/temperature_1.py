# Reading on the benchmark: the online assignment P_theta
# at temperature 1 (Eq. 8 as printed) instead of 0.1; the target keeps the
# 'sharpen' reading (teacher temperature 0.04, centering).
_base_ = ['../m6_ours.py']
model = dict(mrd_head=dict(temperature=1.0))
