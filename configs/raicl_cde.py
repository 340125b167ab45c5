# Ra-ICL under the MEGC2019 composite database evaluation (paper Table 1):
# CASME II + SAMM + SMIC-HS, 3 classes, 442 samples, 68 LOSO folds.
#   python tools/loso.py configs/raicl_cde.py --workers 4
#   python tools/train.py configs/raicl_cde.py --fold casme2_01
# Point the data at your copies in a child config or on the command line
# (each loader's dataset holds the settings; docs/data.md):
#   --cfg-options train_dataloader.dataset.data_roots.casme2=/data/CASME2/Cropped \
#       val_dataloader.dataset.data_roots.casme2=/data/CASME2/Cropped \
#       test_dataloader.dataset.data_roots.casme2=/data/CASME2/Cropped
_base_ = [
    './_base_/default_runtime.py', './_base_/schedules/adam_100e.py',
    './_base_/models/raicl_r18.py', './_base_/datasets/cde.py'
]
