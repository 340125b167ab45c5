_base_ = ['./_base_/str_real_long_videos.py']
# Spot-then-recognize on CAS(ME)^3 part A long videos (30 fps), leave-one-subject-out.
# Layout (raicl_mm.datasets.long_videos.read_casme3_part_a, after
# qin123xyz/MEGC2023_macro-and-micro-expression-spotting val_cas3.py):
#   data/casme3/part_A/data/part_A/spNO.1/a/color/0.jpg ...
#   data/casme3/part_A/annotation/CAS(ME)3_part_A_v1.xls   (or the same sheet as .xlsx)
# Faces are cropped once per video from dlib landmarks (flow regions: 'landmark_crop').
# The recogniser: a Ra-ICL checkpoint trained on CAS(ME)^3 (configs/raicl_casme3_3cls.py),
# ideally per fold; one checkpoint for all folds lets the test subject's clips leak in.
data = dict(type='casme3', data_root='data/casme3/part_A/data/part_A',
            ann_file='data/casme3/part_A/annotation/CAS(ME)3_part_A_v1.xls')
recognizer = dict(config='configs/raicl_casme3_3cls.py',
                  checkpoint='work_dirs/raicl_casme3_3cls/fold_all/epoch_100.pth')
work_dir = 'work_dirs/str_casme3_lv'
