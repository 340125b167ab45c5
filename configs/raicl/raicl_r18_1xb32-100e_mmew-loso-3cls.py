# Ra-ICL on MMEW, 3 classes, with the class map of the robust-MER protocol of
# "Rethinking key-frame-based micro-expression recognition":
# negative {disgust, fear, sadness, anger}, positive {happiness}, surprise;
# others dropped. LOSO by subject. That paper counts 234 samples of 30
# subjects (negative 109 / positive 36 / surprise 89): its figures, not
# verified here against the real sheet (docs/data.md; check yours with
# tools/dataset_info.py).
# Name in OpenMMLab's scheme: ResNet18, 1 GPU x batch 32, 100 epochs, MMEW LOSO,
# 3 classes; configs/raicl_mmew_3cls.py is its alias.
#   python tools/dataset_info.py configs/raicl_mmew_3cls.py --cfg-options \
#       train_dataloader.dataset.data_roots.mmew=/data/MMEW/Micro_Expression ...
# (the same key for val_dataloader and test_dataloader).
_base_ = [
    '../_base_/default_runtime.py', '../_base_/schedules/adam_100e.py',
    '../_base_/models/raicl_r18.py', '../_base_/datasets/cde.py'
]
__data = dict(
    protocol='mmew_3cls',
    # frames: <data_roots.mmew>/<emotion>/<Filename>/*.jpg (the Micro_Expression
    # folder, or the folder holding it); sheet: MMEW_Micro_Exp.xlsx
    data_roots=dict(mmew='data/MMEW/Micro_Expression'),
    ann_files=dict(mmew='data/MMEW/MMEW_Micro_Exp.xlsx'))
train_dataloader = dict(dataset=__data)
val_dataloader = dict(dataset=__data)
test_dataloader = dict(dataset=__data)
model = dict(num_classes=3)
