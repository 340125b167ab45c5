#!/usr/bin/env python
"""Attention pictures of a trained Ra-ICL model (paper Fig. 5 / Fig. 14).

For each chosen sample, every instance of its set goes through the online
branch and ``OUT/<sample_id with / -> _>.png`` shows, column by column (in
frame order), the instance's flow colour map and its CAM, Grad-CAM and Guided
Grad-CAM overlays, under a title with the ground truth and the prediction
(the middle instance's, as at test time). ``OUT/<...>_flow.png`` is the flow
colour map (Algorithm 1) of the middle instance alone.

On the synthetic set, whose generator writes the ground-truth motion region of
each clip (``<synthetic.out>/masks/subXX/<clip>.png``), the tool also scores how
much of the CAM / Grad-CAM mass lies inside that region, next to the region's
area fraction (what a uniform map would score). The summary is printed as
JSON and written to ``OUT/summary.json``.

Example::

    python tools/visualize.py configs/raicl_synthetic.py \\
        work_dirs/raicl_synthetic/fold_casme2_01/epoch_30.pth --fold 0
"""
import argparse
import json
import os
import os.path as osp
import sys
import tempfile

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='CAM / Grad-CAM pictures of a Ra-ICL checkpoint')
    p.add_argument('config', help='config file path')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('--fold', help='LOSO fold whose test subject is drawn: an '
                   'index, a fold key (casme2_01) or a subject id; default: '
                   'all subjects')
    p.add_argument('--samples', nargs='+', metavar='ID',
                   help='sample ids (dataset/subject/clip) to draw; default: '
                   'the first --max-samples of the split')
    p.add_argument('--max-samples', type=int, default=4,
                   help='how many samples to draw without --samples')
    p.add_argument('--out', help='output folder (default: work_dirs/vis/'
                   '<config name>[/fold_<key>])')
    p.add_argument('--gradcam-layer', default=None,
                   help='module of the online branch for Grad-CAM (e.g. '
                   'backbone.layer3); default: the last feature map')
    p.add_argument('--no-guided', action='store_true',
                   help='leave out the Guided Grad-CAM row')
    p.add_argument('--tile', type=int, default=96,
                   help='tile size of the strip in pixels')
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='allow a full (unsafe) unpickling of the checkpoint; '
                   'only for files you trust')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override settings, e.g. data_roots.casme2=/data/c2')
    return p.parse_args(argv)


# --------------------------------------------------------------------------
def _atomic_write(path, data: bytes):
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


def _write_png(path, img):
    import cv2
    ok, buf = cv2.imencode('.png', img)
    if not ok:
        raise RuntimeError(f'PNG encoding failed for {path}')
    _atomic_write(path, buf.tobytes())


def _synthetic_roots(cfg):
    """Folders that may hold the synthetic set's masks (first = preferred)."""
    roots = []
    spec = cfg.get('synthetic')
    if spec and spec.get('out'):
        roots.append(spec['out'])
    data_root = (cfg.get('data_roots') or {}).get('casme2')
    if data_root:
        roots.append(osp.dirname(osp.normpath(data_root)))
    return [r for r in roots
            if osp.isfile(osp.join(r, 'manifest.json'))
            or osp.isdir(osp.join(r, 'masks'))]


def _mask_index(roots):
    """(subject, clip) -> mask path, from the manifests of ``roots``."""
    index = {}
    for root in reversed(roots):  # the preferred root wins
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


def find_mask(record, roots, index):
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


def _model_inputs(cfg, model, instances):
    """(N, H, W, 3) instances -> (N, 3, H, W) model inputs, as the test
    pipeline and the data preprocessor would make them."""
    import numpy as np
    import torch
    from mmaction.registry import TRANSFORMS
    pipeline = cfg.test_dataloader.dataset.get('pipeline') or []
    results = dict(imgs=np.asarray(instances, dtype=np.float32))
    for step in pipeline:
        if step.get('type') in ('FlowNormalize', 'raicl_mm.FlowNormalize'):
            results = TRANSFORMS.build(dict(step)).transform(results)
    x = np.ascontiguousarray(results['imgs'].transpose(0, 3, 1, 2),
                             dtype=np.float32)
    data = model.data_preprocessor(dict(inputs=[torch.from_numpy(x)]),
                                   training=False)
    return data['inputs'][0]


def _mean(values):
    import math
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return float(sum(vals) / len(vals)) if vals else None


def _clean(v):
    import math
    return None if v is None or (isinstance(v, float) and math.isnan(v)) \
        else float(v)


# --------------------------------------------------------------------------
def run(args):
    import cv2
    import numpy as np
    from mmaction.registry import DATASETS, MODELS
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    from raicl_mm import compat
    from raicl_mm.runner_setup import (ToolError, apply_fold, load_config,
                                       prepare_embedded_data, use_all_subjects)
    from raicl_mm.visualization.cam import (cam_maps, grad_cam,
                                            guided_grad_cam, instance_strip,
                                            mask_mass, predict_logits)
    from raicl_mm.visualization.flow_colour import flow_to_colour

    if not osp.isfile(args.checkpoint):
        raise ToolError(f'checkpoint {args.checkpoint} does not exist')
    if args.max_samples < 1:
        raise ToolError(f'--max-samples must be at least 1, got '
                        f'{args.max_samples}')
    cfg = load_config(args.config, args.cfg_options)
    prepare_embedded_data(cfg)
    fold_key = None
    if args.fold is not None:
        fold_key = apply_fold(cfg, args.fold)
    else:
        use_all_subjects(cfg)
    out = args.out or osp.join(
        'work_dirs', 'vis', osp.splitext(osp.basename(args.config))[0]) + (
            f'/fold_{fold_key}' if fold_key else '')

    init_default_scope('mmaction')
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    infos = {}
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        infos[info['sample_id']] = i
    if args.samples:
        unknown = [s for s in args.samples if s not in infos]
        if unknown:
            some = ', '.join(list(infos)[:5])
            where = f'fold {fold_key}' if fold_key else 'the data set'
            raise ToolError(f'unknown sample id {unknown[0]!r} in {where}; '
                            f'valid ids include: {some}')
        chosen = list(dict.fromkeys(args.samples))
    else:
        chosen = list(infos)[:args.max_samples]
    records = {r.sample_id: r for r in dataset.parse_report.records}
    classes = list(dataset.metainfo['classes'])

    model = MODELS.build(cfg.model)
    if args.trust_checkpoint or cfg.get('trust_checkpoint'):
        compat.trust_checkpoint(args.checkpoint)
    load_checkpoint(model, args.checkpoint, map_location='cpu', logger='silent')
    model.eval()

    roots = _synthetic_roots(cfg)
    index = _mask_index(roots)
    samples = []
    for sid in chosen:
        info = dataset.get_data_info(infos[sid])
        inst = np.asarray(info['instances'], dtype=np.float32)
        frames = list(info.get('frame_numbers') or range(len(inst)))
        order = np.argsort(np.asarray(frames), kind='stable')
        inst = inst[order]
        frames = [int(frames[k]) for k in order]
        x = _model_inputs(cfg, model, inst)
        logits = predict_logits(model, x)
        mid = len(inst) // 2  # the test pipeline's middle instance
        pred = int(logits[mid].argmax())
        gt = int(info['label'])
        heats = {'CAM': cam_maps(model, x, pred),
                 'Grad-CAM': grad_cam(model, x, pred, args.gradcam_layer)}
        if not args.no_guided:
            heats['Guided Grad-CAM'] = guided_grad_cam(
                model, x, pred, args.gradcam_layer)
        titles = [f'#{f} {classes[int(p)][:3]}'
                  for f, p in zip(frames, logits.argmax(1))]
        header = f'{sid}  gt: {classes[gt]}  pred: {classes[pred]}'
        strip = instance_strip(inst, heats, titles, frame_numbers=frames,
                               header=header, tile=args.tile)
        stem = sid.replace('/', '_')
        strip_path = osp.join(out, f'{stem}.png')
        flow_path = osp.join(out, f'{stem}_flow.png')
        _write_png(strip_path, strip)
        flow_img = flow_to_colour(inst[mid, ..., :2])
        scale = max(1, args.tile // max(flow_img.shape[:2]))
        flow_img = cv2.resize(flow_img, None, fx=scale, fy=scale,
                              interpolation=cv2.INTER_NEAREST)
        _write_png(flow_path, flow_img)
        entry = dict(sample_id=sid, gt=classes[gt], pred=classes[pred],
                     pred_per_instance=[classes[int(p)]
                                        for p in logits.argmax(1)],
                     frame_numbers=frames,
                     pictures=[strip_path, flow_path])
        rec = records.get(sid)
        mask_path = find_mask(rec, roots, index) if rec is not None else None
        if mask_path is not None:
            mask = cv2.imread(mask_path, cv2.IMREAD_GRAYSCALE)
            if mask is None:
                raise ToolError(f'{sid}: cannot read mask {mask_path}')
            h, w = inst.shape[1:3]
            small = cv2.resize((mask > 127).astype(np.uint8), (w, h),
                               interpolation=cv2.INTER_NEAREST)
            entry['mask'] = mask_path
            entry['cam_in_mask'] = _clean(_mean(
                [mask_mass(m, small) for m in heats['CAM']]))
            entry['gradcam_in_mask'] = _clean(_mean(
                [mask_mass(m, small) for m in heats['Grad-CAM']]))
            entry['mask_area'] = float(small.mean())
        samples.append(entry)

    scored = [s for s in samples if 'mask_area' in s]
    summary = dict(
        config=args.config, checkpoint=args.checkpoint, fold=fold_key,
        out=out, samples=samples,
        mean_cam_in_mask=_clean(_mean([s['cam_in_mask'] for s in scored])),
        mean_gradcam_in_mask=_clean(_mean([s['gradcam_in_mask']
                                           for s in scored])),
        mean_mask_area=_clean(_mean([s['mask_area'] for s in scored])))
    text = json.dumps(summary, indent=1)
    _atomic_write(osp.join(out, 'summary.json'), (text + '\n').encode())
    print(text)
    return 0


def main(argv=None):
    args = parse_args(argv)
    import raicl_mm  # noqa: F401  (applies the stack fixes first)
    from raicl_mm.runner_setup import ToolError
    try:
        return run(args)
    except ToolError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
