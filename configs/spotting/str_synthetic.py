# Spot-then-recognize on the synthetic long-video benchmark (raicl_mm.synthetic.long_video,
# preset 'casme3': 30 fps, 40 s, 64 px, 8 subjects = 8 leave-one-subject-out folds).
#   python tools/str_benchmark.py configs/spotting/str_synthetic.py
# The recogniser is the Ra-ICL checkpoint of the embedded short-clip set (subjects disjoint
# from the long-video subjects); tools/str_benchmark.py trains it first when it is missing.
data = dict(type='synthetic_long', root='data/long_synthetic', preset='casme3',
            num_subjects=8, seed=0)
flow = dict(method='farneback', size=(64, 64), half_window_s=dict(micro=0.17, macro=0.8),
            rois='synthetic', map_size=16)
spotters = [
    dict(type='FlowPeakSpotter', name='baseline', tune_p=True),
    dict(type='LearnedFlowSpotter', name='learned', epochs=60, tune_p=True),
]
# The baseline is deterministic (one run); the learned spotter is trained with 3 seeds.
seeds = dict(baseline=[0], learned=[0, 1, 2])
recognizer = dict(config='configs/raicl_synthetic.py',
                  checkpoint='work_dirs/str_recognizer/epoch_30.pth', device='cpu',
                  modes=['middle', 'ensemble'],
                  train_cmd=['tools/train.py', 'configs/raicl_synthetic.py', '--fold', 'all',
                             '--work-dir', 'work_dirs/str_recognizer'])
analysis_classes = ['negative', 'positive', 'surprise']
track = 'micro'  # MEGC 2023 STR: micro-expressions are spotted then recognised
work_dir = 'work_dirs/str_synthetic'
cache_dir = 'cache/spotting'
