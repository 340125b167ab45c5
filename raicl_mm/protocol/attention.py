"""The paper's attention claims as measurements on the synthetic ground truth.

For a trained fold (its last checkpoint) and the fold's test clips, with the
benchmark's masks (the class's shared primary region and its class-specific
secondary region, ``raicl_mm.synthetic``):

* ``cam_true_ratio`` / ``cam_primary_ratio`` / ``cam_secondary_ratio`` --
  the CAM (Eq. 5, of the true class, on the test instance, the middle one)
  mass inside the region divided by the region's area fraction: 1 = chance
  (a uniform map), above 1 = the model looks there.
* ``cam_weak_ratio`` -- the same for the weak class-specific region of
  benchmark v3 (``strong_weak``): does the model look at the weaker of the
  two informative regions, or neglect it (near 1, chance)?
* ``cam_spatial_std`` -- the raw (unnormalised) true-class CAM's std over
  space on the test instance: IRC's raw-map loss can be lowered by
  flattening the map, which this shows.
* ``cam_instance_corr`` -- IRC's claim: the mean pairwise Pearson correlation
  of the true-class CAMs of all instances of one clip (1 = the same map on
  every instance).
* ``mrd_secondary_best`` -- MRD's claim (models with MRD only): over the N
  heat maps P_n (Eq. 8) of the test instance, the largest mass in the
  secondary region divided by its area (does some query cover the weaker
  region?); ``mrd_secondary_cover`` the fraction of secondary-region pixels
  whose most likely query puts at least half of its own mass inside the
  class's true regions.

Each value is the mean over the test clips (pooled over folds by
:func:`pool_folds`). Clips whose region is empty at the frame size are left
out of that region's mean.
"""
from __future__ import annotations

import glob
import json
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

KEYS = ('cam_true_ratio', 'cam_primary_ratio', 'cam_secondary_ratio',
        'cam_weak_ratio', 'cam_spatial_std', 'cam_instance_corr',
        'mrd_secondary_best', 'mrd_secondary_cover', 'mrd_weak_best')


def last_checkpoint(work_dir: str) -> str:
    """The newest ``epoch_*.pth`` of a work dir (FileNotFoundError if none)."""
    found = glob.glob(osp.join(work_dir, 'epoch_*.pth'))
    if not found:
        raise FileNotFoundError(f'{work_dir}: no epoch_*.pth checkpoint to '
                                'measure attention with')
    return max(found, key=lambda p: int(osp.basename(p)[6:-4]))


def _read_mask(root: str, rel: Optional[str], size) -> Optional[np.ndarray]:
    if not rel:
        return None
    img = cv2.imread(osp.join(root, rel), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise FileNotFoundError(f'{osp.join(root, rel)}: mask not readable')
    if img.shape != tuple(size):
        img = cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
    return img > 0


def _ratio(heat: np.ndarray, mask: Optional[np.ndarray]) -> Optional[float]:
    """Mass of ``heat`` in ``mask`` / area fraction of ``mask``."""
    if mask is None or not mask.any():
        return None
    total = float(heat.sum())
    if total <= 0:
        return None
    return float(heat[mask].sum() / total / mask.mean())


def _mean_pairwise_corr(maps: np.ndarray) -> Optional[float]:
    flat = maps.reshape(len(maps), -1).astype(np.float64)
    flat = flat[flat.std(1) > 0]
    if len(flat) < 2:
        return None
    c = np.corrcoef(flat)
    iu = np.triu_indices(len(flat), 1)
    return float(c[iu].mean())


def clip_measures(model, instances: np.ndarray, label: int,
                  masks: Dict[str, Optional[np.ndarray]]) -> Dict[str, Any]:
    """The measures of one clip.

    Args:
        model: A ``RaICLRecognizer`` in eval mode.
        instances: ``(V, 3, H, W)`` normalised instances, sorted in time.
        label: The true class index.
        masks: ``primary``, ``secondary``, ``weak`` and ``true`` (their
            union) boolean masks at the instances' size (None when unknown).
    """
    from raicl_mm.visualization.cam import cam_maps
    x = torch.as_tensor(np.ascontiguousarray(instances), dtype=torch.float32)
    cams = cam_maps(model, x, class_idx=int(label))        # (V, H, W) in [0, 1]
    mid = cams[len(cams) // 2]
    out: Dict[str, Any] = {
        'cam_true_ratio': _ratio(mid, masks.get('true')),
        'cam_primary_ratio': _ratio(mid, masks.get('primary')),
        'cam_secondary_ratio': _ratio(mid, masks.get('secondary')),
        'cam_weak_ratio': _ratio(mid, masks.get('weak')),
        'cam_instance_corr': _mean_pairwise_corr(cams),
    }
    with torch.no_grad():
        raw = model.cam(x[len(x) // 2:len(x) // 2 + 1])[0, int(label)]
    out['cam_spatial_std'] = float(raw.std(unbiased=False))
    region = getattr(model.online, 'region', None)
    sec, true = masks.get('secondary'), masks.get('true')
    if region is not None and sec is not None and sec.any():
        with torch.no_grad():
            feats = model.online.forward_features(x[len(x) // 2:len(x) // 2 + 1])
            probs = region(feats)['probs']
            probs = F.interpolate(probs, size=x.shape[-2:], mode='bilinear',
                                  align_corners=False)[0].numpy()   # (N, H, W)
        ratios = [_ratio(p, sec) for p in probs]
        out['mrd_secondary_best'] = max(r for r in ratios if r is not None) \
            if any(r is not None for r in ratios) else None
        inside = np.array([p[true].sum() / max(p.sum(), 1e-12) for p in probs])
        owner = probs.argmax(0)[sec]
        out['mrd_secondary_cover'] = float(np.mean(inside[owner] >= 0.5))
        weak = masks.get('weak')
        if weak is not None and weak.any():
            w = [r for r in (_ratio(p, weak) for p in probs) if r is not None]
            out['mrd_weak_best'] = max(w) if w else None
    return out


def measure_fold(config: str, cfg_options: Sequence[str], fold: Sequence[str],
                 work_dir: str) -> Dict[str, List[float]]:
    """Per-clip measures of a fold's test clips with its last checkpoint.

    Returns ``{key: [value per clip]}``; empty when the config's data has no
    synthetic ground truth.
    """
    from mmaction.registry import DATASETS, MODELS, TRANSFORMS
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    import raicl_mm  # noqa: F401  (registers the modules)
    from .configs import load_cfg
    cfg = load_cfg(config, cfg_options)
    ds_cfg = dict(cfg['test_dataloader']['dataset'])
    spec = ds_cfg.get('synthetic')
    if not spec:
        return {}
    root = spec['out']
    with open(osp.join(root, 'manifest.json'), encoding='utf-8') as fh:
        manifest = json.load(fh)
    truth = {(c['subject'], c['filename']): c for c in manifest['clips']}
    init_default_scope('mmaction')
    norm = [t for t in ds_cfg.get('pipeline', []) if t.get('type') == 'FlowNormalize']
    normalize = TRANSFORMS.build(norm[0]) if norm else None
    ds_cfg.update(fold=list(fold), split='test', test_mode=True, pipeline=[])
    dataset = DATASETS.build(ds_cfg)
    model = MODELS.build(cfg['model'])
    load_checkpoint(model, last_checkpoint(work_dir), map_location='cpu',
                    logger='silent')
    model.eval()
    per: Dict[str, List[float]] = {k: [] for k in KEYS}
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        _, subject, clip_id = info['sample_id'].split('/')
        clip = truth.get((subject, clip_id))
        if clip is None:
            continue
        inst = np.asarray(info['instances'], np.float32)
        if normalize is not None:
            inst = normalize.transform({'imgs': inst})['imgs']
        size = inst.shape[1:3]
        masks = {'true': _read_mask(root, clip.get('mask'), size),
                 'primary': _read_mask(root, clip.get('mask_primary'), size),
                 'secondary': _read_mask(root, clip.get('mask_secondary'), size),
                 'weak': _read_mask(root, clip.get('mask_weak'), size)}
        label = int(info['label'])
        m = clip_measures(model, inst.transpose(0, 3, 1, 2), label, masks)
        for k, v in m.items():
            if v is not None and np.isfinite(v):
                per[k].append(float(v))
    return {k: v for k, v in per.items() if v}


def pool_folds(per_fold: Sequence[Dict[str, List[float]]]) -> Dict[str, float]:
    """Mean over every clip of every fold, per measure (rounded)."""
    out = {}
    for k in KEYS:
        vals = [v for d in per_fold for v in d.get(k, [])]
        if vals:
            out[k] = round(float(np.mean(vals)), 4)
    return out
