# Ra-ICL on CAS(ME)^3 part A, 3-class LOSO (paper Table 2).
# Counts from the official v2 sheet: see docs/data.md (pass an exclusion list
# with dataset.exclude_file=... to drop samples you consider mislabelled).
_base_ = [
    './_base_/default_runtime.py', './_base_/schedules/adam_100e.py',
    './_base_/models/raicl_r18.py', './_base_/datasets/whole_frames.py'
]
# CAS(ME)^3 part A ships whole 1280x720 frames: whole_frames.py aligns the
# face with the landmark crop (docs/data.md); face_crop=None is refused.
__data = dict(protocol='casme3_3cls')
train_dataloader = dict(dataset=__data)
val_dataloader = dict(dataset=__data)
test_dataloader = dict(dataset=__data)
model = dict(num_classes=3)
