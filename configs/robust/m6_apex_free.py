# The robust-MER table of "Rethinking key-frame-based micro-expression recognition" (CausalNet), the apex-free reference: M6 (the full method,
# middle sampling) reads no apex, so apex noise and spotting leave it unchanged.
_base_ = ['../ablations/m6_ours.py']
