# MEGC2019 composite database evaluation (CASME II + SAMM + SMIC-HS, 3 classes,
# 442 samples, 68 LOSO folds). Point data_roots / ann_files at your copies,
# here or with --cfg-options data_roots.casme2=... (see docs/data.md).
_base_ = ['./mir_pipelines.py']
protocol = 'cde'
data_roots = dict(casme2='data/CASME2/Cropped', samm='data/SAMM',
                  smic='data/SMIC/SMIC_all_cropped/HS', casme3='data/CASME3')
ann_files = dict(casme2='data/CASME2/CASME2-coding-20190701.xlsx',
                 samm='data/SAMM/SAMM_Micro_FACS_Codes_v2.xlsx',
                 casme3='data/CASME3/cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx',
                 cde=None)  # None = the official list shipped with raicl_mm
exclude_file = None
flow_cfg = dict(method='tvl1', size=(112, 112), face_crop=None)
sampling = dict(strategy='middle', num_instances=16, apex_jitter_std=0.0,
                seed=0)
flow_cache = 'cache/flows'
flow_workers = None  # all cores
batch_size = 32

dataset_common = dict(type='MicroExpressionFlowDataset', protocol=protocol,
                      data_roots=data_roots, ann_files=ann_files,
                      exclude_file=exclude_file, flow_cfg=flow_cfg,
                      sampling=sampling, flow_cache=flow_cache,
                      flow_workers=flow_workers)
train_dataloader = dict(
    batch_size=batch_size, num_workers=0, drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(split='train', pipeline={{_base_.train_pipeline}},
                 **dataset_common))
val_dataloader = dict(
    batch_size=batch_size, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(split='test', test_mode=True,
                 pipeline={{_base_.test_pipeline}}, **dataset_common))
test_dataloader = val_dataloader
val_evaluator = dict(type='UF1UARMetric')
test_evaluator = val_evaluator
