# MEGC2019 composite database evaluation (CASME II + SAMM + SMIC-HS, 3 classes,
# 442 samples, 68 LOSO folds).
#
# Every data setting lives in the dataset dicts of the three loaders, where a
# child config and --cfg-options reach it (mmaction2's style):
#   protocol, data_roots, ann_files, exclude_file, flow_cfg, sampling,
#   flow_cache, flow_workers, fold (the LOSO test subject: an index, a fold key
#   such as 'casme2_01', or a list of fold keys for a subject-group fold),
#   synthetic (generate the embedded set first).
# Train and score must agree, so an override names the three loaders, e.g.
#   --cfg-options train_dataloader.dataset.fold=3 \
#       val_dataloader.dataset.fold=3 test_dataloader.dataset.fold=3
# (tools/train.py --fold 3 does exactly that); the Runner refuses loaders that
# disagree and top-level keys that reach nothing (docs/data.md).
_base_ = ['./mir_pipelines.py']

# Names with two leading underscores are dropped by mmengine after parsing:
# they are shorthand inside this file, not settings.
__dataset = dict(
    type='MicroExpressionFlowDataset',
    protocol='cde',
    data_roots=dict(casme2='data/CASME2/Cropped', samm='data/SAMM',
                    smic='data/SMIC/SMIC_all_cropped/HS',
                    casme3='data/CASME3'),
    ann_files=dict(
        casme2='data/CASME2/CASME2-coding-20190701.xlsx',
        samm='data/SAMM/SAMM_Micro_FACS_Codes_v2.xlsx',
        casme3='data/CASME3/cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx',
        cde=None),  # None = the official list shipped with raicl_mm
    exclude_file=None,
    flow_cfg=dict(method='tvl1', size=(112, 112), face_crop=None),
    sampling=dict(strategy='middle', num_instances=16, apex_jitter_std=0.0,
                  seed=0),
    flow_cache='cache/flows',
    flow_workers=None,  # all cores
    fold=0)  # the default LOSO fold: the first subject of the protocol

train_dataloader = dict(
    batch_size=32, num_workers=0, drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(split='train', pipeline={{_base_.train_pipeline}},
                 **__dataset))
val_dataloader = dict(
    batch_size=32, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(split='test', test_mode=True,
                 pipeline={{_base_.test_pipeline}}, **__dataset))
test_dataloader = val_dataloader
val_evaluator = dict(type='UF1UARMetric')
test_evaluator = val_evaluator
