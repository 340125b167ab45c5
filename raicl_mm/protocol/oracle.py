"""An oracle probe of a synthetic set: is the class in the flow at all?

No model and no training: for every clip, the flow magnitude of its instance
set (as the dataset computes it, from the flow cache) is averaged inside each
class's true secondary region (placed on the clip's own subject with the
generator's landmarks) minus the face's median; the clip is given the class
whose region moves most. Its UF1 tells a benchmark that no method can learn
(the signal is below the flow's noise) from models that are under-trained
(the signal is there and they miss it). ``instances='apex'`` uses only the
instance nearest the true apex, ``'all'`` the largest value over instances,
``annotated_apex_instance`` the instance nearest the sheet's (erroneous) apex
(what an apex-based method sees), ``secondary_apex_instance`` the instance
nearest the secondary region's own peak (the best single instance there is).
"""
from __future__ import annotations

import json
import os.path as osp
from typing import Any, Dict, Sequence

import numpy as np


def oracle_probe(config: str, cfg_options: Sequence[str] = ()) -> Dict[str, Any]:
    """UF1 / UAR / accuracy (percent) of the oracle region rule on a config's set."""
    from mmaction.registry import DATASETS
    from mmengine.registry import init_default_scope

    import raicl_mm  # noqa: F401
    from raicl_mm.synthetic.generator import (SECONDARY_REGIONS, motion_mask,
                                             plan)
    from raicl_mm.synthetic.presets import build_config

    from .ablation import _load_cfg, scores
    cfg = _load_cfg(config, cfg_options)
    ds_cfg = dict(cfg['train_dataloader']['dataset'])
    spec = dict(ds_cfg['synthetic'])
    root = spec['out']
    syn = build_config(spec)
    faces, _ = plan(syn)
    with open(osp.join(root, 'manifest.json'), encoding='utf-8') as fh:
        truth = {(c['subject'], c['filename']): c
                 for c in json.load(fh)['clips']}
    init_default_scope('mmaction')
    ds_cfg.update(fold=None, split='all', pipeline=[])
    dataset = DATASETS.build(ds_cfg)
    classes = list(dataset.metainfo['classes'])
    # CDE rule on CASME II emotions: disgust -> negative, happiness ->
    # positive, surprise -> surprise.
    to_class = {'disgust': 'negative', 'happiness': 'positive',
                'surprise': 'surprise'}
    emotions = sorted(SECONDARY_REGIONS)
    masks_cache: Dict[str, Dict[str, np.ndarray]] = {}
    gt, pred_all, pred_apex, pred_ann, pred_sec = [], [], [], [], []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        _, subject, clip_id = info['sample_id'].split('/')
        clip = truth[(subject, clip_id)]
        inst = np.asarray(info['instances'], np.float32)
        size = inst.shape[1]
        if subject not in masks_cache:
            face = faces[int(subject) - 1]
            masks_cache[subject] = {
                e: motion_mask(face, SECONDARY_REGIONS[e], size,
                               syn.mask_threshold, syn.supersample) > 0
                for e in emotions}
        masks = masks_cache[subject]
        mag = np.sqrt(inst[..., 0] ** 2 + inst[..., 1] ** 2)     # (V, H, W)
        base = np.median(mag.reshape(len(mag), -1), axis=1)
        feat = np.stack([mag[:, masks[e]].mean(1) - base for e in emotions], 1)
        frames = np.asarray(info['frame_numbers'])

        def nearest(frame: float) -> int:
            return int(np.argmin(np.abs(frames - frame)))
        gt.append(int(info['label']))
        for preds, f in ((pred_all, feat.max(0)),
                         (pred_apex, feat[nearest(clip['true_apex'])]),
                         (pred_ann, feat[nearest(clip['apex'])]),
                         (pred_sec, feat[nearest(clip['secondary_apex'])])):
            preds.append(classes.index(to_class[emotions[int(np.argmax(f))]]))
    out = {'clips': len(gt)}
    for key, pred in (('all_instances', pred_all),
                      ('true_apex_instance', pred_apex),
                      ('annotated_apex_instance', pred_ann),
                      ('secondary_apex_instance', pred_sec)):
        out[key] = {k: round(v, 2)
                    for k, v in scores(gt, pred, len(classes)).items()}
    return out
