_base_ = ['./_base_/str_real_long_videos.py']
# Spot-then-recognize on SAMM Long Videos (200 fps), leave-one-subject-out.
# Layout (raicl_mm.datasets.long_videos.read_samm_lv, after genbing99/MEAN_Spot-then-recognize
# load_excel.py / load_images.py):
#   data/samm_lv/SAMM_longvideos/006_1/006_1_0001.jpg ...
#   data/samm_lv/SAMM_LongVideos_V3_Release.xlsx   (10 title/header rows, then the intervals)
#   data/samm_lv/SAMM_Micro_FACS_Codes_v2.xlsx     (the micro sheet, for the emotions)
data = dict(type='samm_lv', root='data/samm_lv',
            ann_file='data/samm_lv/SAMM_LongVideos_V3_Release.xlsx',
            emotion_file='data/samm_lv/SAMM_Micro_FACS_Codes_v2.xlsx')
recognizer = dict(config='configs/raicl_cde.py',
                  checkpoint='work_dirs/raicl_cde/fold_all/epoch_100.pth')
work_dir = 'work_dirs/str_samm_lv'
