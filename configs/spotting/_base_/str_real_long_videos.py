# Spot-then-recognize on a real long-video set (CAS(ME)^3 part A, SAMM-LV):
# the settings both share. A child sets `data`, the recogniser's config and
# checkpoint, and its work_dir.
# Windows in seconds (the same at 30 and 200 fps): a micro-expression lasts
# up to 0.5 s (SAMM: 100 frames at 200 fps).
flow = dict(method='farneback', size=(64, 64), half_window_s=dict(micro=0.17, macro=0.8),
            rois='landmark_crop', map_size=16)
# The face crop is taken once per stable head pose (raicl_mm.spotting.face_track).
face = dict(face_crop='landmarks', crop_margin=0.1, no_face='whole_frame', max_shift=0.04)
spotters = [
    dict(type='FlowPeakSpotter', name='baseline', tune_p=True),
    dict(type='LearnedFlowSpotter', name='learned', epochs=60, tune_p=True),
]
seeds = dict(baseline=[0], learned=[0, 1, 2])
recognizer = dict(device='cpu', face_crop='landmarks', modes=['middle', 'ensemble'])
analysis_classes = ['negative', 'positive', 'surprise']
track = 'micro'
cache_dir = 'cache/spotting'
