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


#: Which instance(s) of a clip's set the rule reads.
CHOICES = ('all_instances', 'true_apex_instance', 'annotated_apex_instance',
           'secondary_apex_instance')
#: The decision rules (see :func:`_predict`).
RULES = ('raw', 'standardized', 'centroid')


def oracle_probe(config: str, cfg_options: Sequence[str] = (),
                 fold_seed: int = 0) -> Dict[str, Any]:
    """UF1 / UAR / accuracy (percent) of the oracle region rules on a config's set.

    Returns:
        ``{'clips': n, RULE: {CHOICE: scores}}`` for every rule of
        :data:`RULES` and instance choice of :data:`CHOICES`, plus the v1
        keys ``all_instances`` / ``true_apex_instance`` (the raw rule).
    """
    from mmaction.registry import DATASETS
    from mmengine.registry import init_default_scope

    import raicl_mm  # noqa: F401
    from raicl_mm.synthetic.generator import (SECONDARY_REGIONS, motion_mask,
                                             plan)
    from raicl_mm.synthetic.presets import build_config

    from .ablation_stats import scores
    from .configs import load_cfg
    cfg = load_cfg(config, cfg_options)
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
    gt: list = []
    subjects: list = []
    feats: Dict[str, list] = {c: [] for c in CHOICES}
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
        subjects.append(subject)
        feats['all_instances'].append(feat.max(0))
        feats['true_apex_instance'].append(feat[nearest(clip['true_apex'])])
        feats['annotated_apex_instance'].append(feat[nearest(clip['apex'])])
        feats['secondary_apex_instance'].append(
            feat[nearest(clip['secondary_apex'])])
    # Column j of a feature matrix is emotion j's region; its class index:
    col_class = np.array([classes.index(to_class[e]) for e in emotions])
    gt_arr = np.asarray(gt)
    folds = _subject_halves(subjects, fold_seed)
    out: Dict[str, Any] = {'clips': len(gt)}
    for rule in RULES:
        out[rule] = {}
        for choice in CHOICES:
            f = np.asarray(feats[choice], np.float64)
            pred = _predict(rule, f, gt_arr, folds, col_class, len(classes))
            out[rule][choice] = {k: round(v, 2) for k, v in
                                 scores(gt, pred.tolist(), len(classes)).items()}
    # The v1 keys (the raw rule), as docs/benchmark.md's v1 table reads them.
    out['all_instances'] = out['raw']['all_instances']
    out['true_apex_instance'] = out['raw']['true_apex_instance']
    return out


def _subject_halves(subjects: Sequence[str], seed: int) -> np.ndarray:
    """Fold index (0/1) of every clip: the ablation's k = 2 split by subject."""
    from .ablation import subject_folds
    groups = subject_folds(sorted(set(subjects)), 2, seed)
    where = {s: g for g, grp in enumerate(groups) for s in grp}
    return np.array([where[s] for s in subjects])


def _predict(rule: str, f: np.ndarray, gt: np.ndarray, folds: np.ndarray,
             col_class: np.ndarray, num_classes: int) -> np.ndarray:
    """Class index per clip from the region features ``f`` (clips x regions).

    ``raw``: the region that moves most. ``standardized``: the same after
    z-scoring each region over the whole set (no labels): a region that
    always moves a little (e.g. next to the shared primary) no longer wins
    every clip. ``centroid``: nearest class mean of the z-scored features,
    the means taken on the other half of the subjects (the ablation's k = 2
    split): a three-number probe that knows where to look, trained on the
    same folds as the grid.
    """
    if rule == 'raw':
        return col_class[np.argmax(f, 1)]
    z = (f - f.mean(0)) / (f.std(0) + 1e-12)
    if rule == 'standardized':
        return col_class[np.argmax(z, 1)]
    pred = np.zeros(len(z), int)
    for k in (0, 1):
        test, train = folds == k, folds != k
        means = np.stack([z[train & (gt == c)].mean(0) if np.any(train & (gt == c))
                          else np.full(z.shape[1], np.inf)
                          for c in range(num_classes)])
        d = ((z[test, None, :] - means[None]) ** 2).sum(-1)
        pred[test] = np.argmin(d, 1)
    return pred
