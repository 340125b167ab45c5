# Reading on the benchmark: one direction only (I_p
# online, I_q target) for every term, instead of both instances through both
# branches (Eq. 10 and 14 are written symmetric).
_base_ = ['../m6_ours.py']
model = dict(symmetric=False)
