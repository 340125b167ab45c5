# Ra-ICL under the MEGC2019 composite database evaluation (paper Table 1):
# CASME II + SAMM + SMIC-HS, 3 classes, 442 samples, 68 LOSO folds.
#   python tools/loso.py configs/raicl_cde.py \
#       --cfg-options data_roots.casme2=/data/CASME2/Cropped ...
_base_ = [
    './_base_/default_runtime.py', './_base_/schedules/adam_100e.py',
    './_base_/models/raicl_r18.py', './_base_/datasets/cde.py'
]
