# Spot-then-recognize on SAMM Long Videos (200 fps), leave-one-subject-out.
# Layout (raicl_mm.datasets.long_videos.read_samm_lv, after genbing99/MEAN_Spot-then-recognize
# load_excel.py / load_images.py):
#   data/samm_lv/SAMM_longvideos/006_1/006_1_0001.jpg ...
#   data/samm_lv/SAMM_LongVideos_V3_Release.xlsx   (10 title/header rows, then the intervals)
#   data/samm_lv/SAMM_Micro_FACS_Codes_v2.xlsx     (the micro sheet, for the emotions)
data = dict(type='samm_lv', root='data/samm_lv',
            ann_file='data/samm_lv/SAMM_LongVideos_V3_Release.xlsx',
            emotion_file='data/samm_lv/SAMM_Micro_FACS_Codes_v2.xlsx')
# SAMM's micro-expressions last up to 100 frames at 200 fps: same windows in seconds.
flow = dict(method='farneback', size=(64, 64), half_window_s=dict(micro=0.17, macro=0.8),
            rois='landmark_crop', map_size=16)
# The face crop is taken once per stable head pose (raicl_mm.spotting.face_track).
face = dict(face_crop='landmarks', crop_margin=0.1, no_face='whole_frame', max_shift=0.04)
spotters = [
    dict(type='FlowPeakSpotter', name='baseline', tune_p=True),
    dict(type='LearnedFlowSpotter', name='learned', epochs=60, tune_p=True),
]
seeds = dict(baseline=[0], learned=[0, 1, 2])
recognizer = dict(config='configs/raicl_cde.py',
                  checkpoint='work_dirs/raicl_cde/fold_all/epoch_100.pth',
                  device='cpu', face_crop='landmarks', modes=['middle', 'ensemble'])
analysis_classes = ['negative', 'positive', 'surprise']
track = 'micro'
work_dir = 'work_dirs/str_samm_lv'
cache_dir = 'cache/spotting'
