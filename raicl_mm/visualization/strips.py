"""Attention strips of a trained model over a data set (paper Fig. 5 / 14).

What ``tools/visualize.py`` draws, as one function of the package
(:func:`draw_attention`): for each chosen sample, every instance of its set
through the online branch; a strip with, column by column in frame order,
the aligned face frame, the instance's flow colour map, and the CAM,
Grad-CAM and Guided Grad-CAM of the predicted class over the aligned face,
with the outline of the ground-truth motion region where the data has one
(the synthetic set). On that set it also scores how much of the CAM /
Grad-CAM mass lies inside the region, next to the region's area fraction
(what a uniform map would score). Each strip also goes to the run's mmengine
visualizer (:mod:`.publish`).
"""
from __future__ import annotations

import json
import math
import os
import os.path as osp
import tempfile
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch

from .cam import (cam_maps, grad_cam, guided_grad_cam, instance_strip,
                  mask_mass, predict_logits)
from .flow_colour import flow_picture
from .publish import add_image

#: What the tool's rows say when Grad-CAM is taken on the last feature map.
GRADCAM_EQUALS_CAM = ('Grad-CAM on the last feature map = CAM x a positive '
                      'constant for a GAP + FC head (Selvaraju et al. 2017); '
                      'pass a gradcam_layer (e.g. backbone.layer3) for a '
                      'finer map')


def resolve_gradcam_layer(model, layer: Optional[str]) -> Optional[str]:
    """``'auto'``: ``backbone.layer3`` when the online branch has it (a
    finer map that adds information to the CAM row), else the last feature
    map (None); any other value is returned as it is."""
    if layer != 'auto':
        return layer
    branch = getattr(model, 'online', model)
    names = dict(branch.named_modules())
    return 'backbone.layer3' if 'backbone.layer3' in names else None


def atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file (mode 0644)."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + osp.basename(path),
                               suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def write_png(path: str, img: np.ndarray) -> None:
    ok, buf = cv2.imencode('.png', img)
    if not ok:
        raise RuntimeError(f'PNG encoding failed for {path}')
    atomic_write(path, buf.tobytes())


def _setting(cfg, key: str):
    """A data setting: in the test dataset dict, else at the top level
    (configs written before the settings moved into the dataset dicts)."""
    ds = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    return ds[key] if key in ds else cfg.get(key)


def synthetic_roots(cfg) -> List[str]:
    """Folders that may hold the synthetic set's masks (first = preferred)."""
    roots = []
    spec = _setting(cfg, 'synthetic')
    if spec and spec.get('out'):
        roots.append(spec['out'])
    data_root = (_setting(cfg, 'data_roots') or {}).get('casme2')
    if data_root:
        roots.append(osp.dirname(osp.normpath(data_root)))
    return [r for r in roots
            if osp.isfile(osp.join(r, 'manifest.json'))
            or osp.isdir(osp.join(r, 'masks'))]


def mask_index(roots: Sequence[str]) -> Dict[tuple, str]:
    """(subject, clip) -> mask path, from the manifests of ``roots``."""
    index = {}
    for root in reversed(list(roots)):  # the preferred root wins
        try:
            with open(osp.join(root, 'manifest.json'), encoding='utf-8') as fh:
                manifest = json.load(fh)
            clips = manifest.get('clips', [])
        except (OSError, ValueError, AttributeError):
            clips = []
        for clip in clips:
            try:
                index[(str(clip['subject']), str(clip['filename']))] = \
                    osp.join(root, clip['mask'])
            except (KeyError, TypeError):
                continue
    return index


def find_mask(record, roots, index) -> Optional[str]:
    """Ground-truth motion mask of a record, or None (not synthetic)."""
    meta_mask = (record.meta or {}).get('mask')
    if meta_mask and osp.isfile(meta_mask):
        return meta_mask
    if record.dataset != 'casme2':
        return None
    path = index.get((record.subject, record.clip_id))
    if path and osp.isfile(path):
        return path
    for root in roots:
        path = osp.join(root, 'masks', f'sub{record.subject}',
                        f'{record.clip_id}.png')
        if osp.isfile(path):
            return path
    return None


def model_inputs(cfg, model, instances: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) instances -> (N, 3, H, W) model inputs, as the test
    pipeline's normalisation and the data preprocessor make them."""
    from mmaction.registry import TRANSFORMS
    pipeline = (cfg.test_dataloader.dataset.get('pipeline') or [])
    results = dict(imgs=np.asarray(instances, dtype=np.float32))
    for step in pipeline:
        if str(step.get('type', '')).split('.')[-1] == 'FlowNormalize':
            results = TRANSFORMS.build(dict(step)).transform(results)
    x = np.ascontiguousarray(results['imgs'].transpose(0, 3, 1, 2),
                             dtype=np.float32)
    data = model.data_preprocessor(dict(inputs=[torch.from_numpy(x)]),
                                   training=False)
    return data['inputs'][0]


def _mean(values):
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return float(sum(vals) / len(vals)) if vals else None


def _clean(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) \
        else float(v)


def _aligned_frames(record, frames: Sequence[int], flow_cfg):
    """The cropped / aligned grey frames of the instances (None if the
    frames cannot be read: the strip then draws over the flow's grey)."""
    from raicl_mm.flow import load_clip_frames
    try:
        numbers = list(record.frame_numbers)
        positions = [numbers.index(f) for f in frames]
        return np.stack(load_clip_frames(record, positions, flow_cfg)[1])
    except (ValueError, OSError, RuntimeError, AttributeError):
        return None


def draw_attention(cfg, dataset, model, chosen: Sequence[str], out: str,
                   gradcam_layer: Optional[str] = 'auto', guided: bool = True,
                   tile: int = 96, visualizer=None) -> dict:
    """Draw and score the attention strips of ``chosen`` samples.

    Args:
        cfg: The config (test pipeline, synthetic roots).
        dataset: The built test dataset (``MicroExpressionFlowDataset``).
        model: The loaded model in eval mode.
        chosen: Sample ids of ``dataset``.
        out: Output folder: ``<id>.png`` strips, ``<id>_flow.png`` middle
            flows, ``summary.json``.
        gradcam_layer: Module for Grad-CAM; ``'auto'`` =
            :func:`resolve_gradcam_layer` (``backbone.layer3``); None = the
            last feature map, where Grad-CAM repeats the CAM up to scale (the
            strip says so).
        guided: Add the Guided Grad-CAM row.
        tile: Tile size in pixels.
        visualizer: mmengine visualizer to send the strips to (None = the
            current one, if any).

    Returns:
        The summary (also written to ``out/summary.json``).
    """
    infos = {dataset.get_data_info(i)['sample_id']: i
             for i in range(len(dataset))}
    records = {r.sample_id: r for r in dataset.parse_report.records}
    classes = list(dataset.metainfo['classes'])
    roots = synthetic_roots(cfg)
    index = mask_index(roots)
    samples = []
    layer = resolve_gradcam_layer(model, gradcam_layer)
    grad_name = ('Grad-CAM (= CAM)' if layer is None else
                 f'Grad-CAM {layer.split(".")[-1]}')
    notes = ['CAM (Eq. 5) and Grad-CAM of the predicted class; '
             + (GRADCAM_EQUALS_CAM if layer is None else
                f'Grad-CAM on {layer} (finer than the CAM)')]
    for step, sid in enumerate(chosen):
        info = dataset.get_data_info(infos[sid])
        inst = np.asarray(info['instances'], dtype=np.float32)
        frames = list(info.get('frame_numbers') or range(len(inst)))
        order = np.argsort(np.asarray(frames), kind='stable')
        inst = inst[order]
        frames = [int(frames[k]) for k in order]
        x = model_inputs(cfg, model, inst)
        logits = predict_logits(model, x)
        mid = len(inst) // 2  # the test pipeline's middle instance
        pred = int(logits[mid].argmax())
        gt = int(info['label'])
        heats = {'CAM': cam_maps(model, x, pred),
                 grad_name: grad_cam(model, x, pred, layer)}
        if guided:
            heats['Guided Grad-CAM'] = guided_grad_cam(model, x, pred,
                                                       layer)
        rec = records.get(sid)
        mask_path = find_mask(rec, roots, index) if rec is not None else None
        mask = None
        if mask_path is not None:
            mask = cv2.imread(mask_path, cv2.IMREAD_GRAYSCALE)
            if mask is None:
                raise ValueError(f'{sid}: cannot read mask {mask_path}')
        aligned = _aligned_frames(rec, frames, dataset.flow_cfg) \
            if rec is not None else None
        titles = [f'#{f} {classes[int(p)][:3]}'
                  for f, p in zip(frames, logits.argmax(1))]
        header = f'{sid}  gt: {classes[gt]}  pred: {classes[pred]}'
        h, w = inst.shape[1:3]
        small = None if mask is None else cv2.resize(
            (mask > 127).astype(np.uint8), (w, h),
            interpolation=cv2.INTER_NEAREST)
        strip = instance_strip(inst, heats, titles, frame_numbers=frames,
                               header=header, tile=tile, frames=aligned,
                               outline=small, mark=mid, notes=notes)
        stem = sid.replace('/', '_')
        strip_path = osp.join(out, f'{stem}.png')
        flow_path = osp.join(out, f'{stem}_flow.png')
        write_png(strip_path, strip)
        add_image(f'cam_{stem}', strip, step=step, visualizer=visualizer)
        flow_img = flow_picture(
            inst[mid, ..., :2], size=max(256, tile),
            title=f'{sid} middle instance (frame {frames[mid]})',
            unit=f'px at {w}x{h}')
        write_png(flow_path, flow_img)
        add_image(f'flow_{stem}', flow_img, step=step, visualizer=visualizer)
        entry = dict(sample_id=sid, gt=classes[gt], pred=classes[pred],
                     pred_per_instance=[classes[int(p)]
                                        for p in logits.argmax(1)],
                     frame_numbers=frames,
                     pictures=[strip_path, flow_path])
        if small is not None:
            entry['mask'] = mask_path
            entry['cam_in_mask'] = _clean(_mean(
                [mask_mass(m, small) for m in heats['CAM']]))
            entry['gradcam_in_mask'] = _clean(_mean(
                [mask_mass(m, small) for m in heats[grad_name]]))
            entry['mask_area'] = float(small.mean())
        samples.append(entry)
    scored = [s for s in samples if 'mask_area' in s]
    summary = dict(
        out=out, samples=samples, gradcam_layer=layer or 'last feature map',
        mean_cam_in_mask=_clean(_mean([s['cam_in_mask'] for s in scored])),
        mean_gradcam_in_mask=_clean(_mean([s['gradcam_in_mask']
                                           for s in scored])),
        mean_mask_area=_clean(_mean([s['mask_area'] for s in scored])))
    return summary
