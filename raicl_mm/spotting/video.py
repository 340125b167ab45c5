"""Spot, then recognise, in a user's long recording (what tools/spot.py runs).

Frames are streamed (decoded one at a time; only the window flows' frames and
the small aligned face crops are kept); the face crop is taken once per stable
head pose (:mod:`.face_track`); the spotter is the training-free baseline or
the learned one trained on a benchmark config's videos; every spotted interval
is recognised with a Ra-ICL checkpoint unless ``recognition=False``. The speed
is measured beside a baseline of the same run: decoding the same input alone.
"""
from __future__ import annotations

import csv
import glob
import json
import os
import os.path as osp
import re
import time
from typing import Any, Dict, Optional, Sequence


class SpotError(ValueError):
    """Bad input to :func:`spot_video` (the message names the file or option)."""


IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff')


def _natural(p):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r'(\d+)', osp.basename(p))]


def stream_frames(source: str):
    """Yield grey uint8 frames of a video file or a folder of images, in order."""
    import cv2
    if osp.isdir(source):
        paths = sorted((p for p in glob.glob(osp.join(source, '*'))
                        if p.lower().endswith(IMAGE_EXTS)), key=_natural)
        if not paths:
            raise SpotError(f'{source}: no images ({", ".join(IMAGE_EXTS)})')
        for p in paths:
            img = cv2.imread(p, cv2.IMREAD_GRAYSCALE)
            if img is None:
                raise SpotError(f'{p}: could not be decoded')
            yield img
        return
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        raise SpotError(f'{source}: OpenCV could not open it')
    try:
        while True:
            ok, img = cap.read()
            if not ok:
                break
            yield cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    finally:
        cap.release()


def video_fps(source: str, given):
    import cv2
    if given:
        return float(given)
    if osp.isfile(source):
        cap = cv2.VideoCapture(source)
        rate = cap.get(cv2.CAP_PROP_FPS)
        cap.release()
        if rate and rate > 0:
            return float(rate)
    return 30.0


class _Keep:
    """Wraps the face crop and keeps every prepared (small) frame for recognition."""

    def __init__(self, crop, size):
        self.crop, self.size, self.frames = crop, tuple(size), []

    def __call__(self, grey, index):
        import cv2
        out = self.crop(grey, index) if self.crop is not None else grey
        h, w = self.size
        if out.shape[:2] != (h, w):
            out = cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA)
        self.frames.append(out)
        return out


def spot_video(source: str, config: str = 'configs/spotting/str_synthetic.py',
               spotter_name: str = 'baseline', train_config: Optional[str] = None,
               p: Sequence[float] = (0.3, 0.5), fps_given: Optional[float] = None,
               face_crop: str = 'none', rois: Optional[str] = None,
               recognizer_config: Optional[str] = None,
               checkpoint: Optional[str] = None, mode: str = 'ensemble',
               recognition: bool = True, device: str = 'cpu',
               out_dir: str = 'work_dirs/spot') -> Dict[str, Any]:
    """Spot (and recognise) the intervals of one recording; write
    ``<name>_intervals.json`` / ``.csv`` and ``<name>_timeline.png``.

    Returns:
        The JSON's content plus ``base`` (the outputs' path stem).
    """
    import torch
    from mmengine.config import Config

    from raicl_mm.datasets.long_videos import LongVideoRecord
    from raicl_mm.spotting.baseline import FlowPeakSpotter
    from raicl_mm.spotting.face_track import crop_for
    from raicl_mm.spotting.features import WindowFlowConfig, WindowFlowExtractor
    from raicl_mm.spotting.str_protocol import timeline_png

    cfg = Config.fromfile(config).to_dict()
    flow_kw = dict(cfg.get('flow', {}))
    if rois:
        flow_kw['rois'] = rois
    elif face_crop == 'landmarks':
        flow_kw['rois'] = 'landmark_crop'
    flow = WindowFlowConfig(**flow_kw)
    fps = video_fps(source, fps_given)
    name = osp.splitext(osp.basename(osp.normpath(source)))[0]
    os.makedirs(out_dir, exist_ok=True)

    # -- the baseline of the speed figure: decoding alone, same input, same run
    t0 = time.perf_counter()
    for _ in stream_frames(source):
        pass
    t_decode_only = time.perf_counter() - t0

    # -- the pipeline: decode -> stable-pose crop -> window flows (streamed)
    t0 = time.perf_counter()
    crop = crop_for(None if face_crop == 'none' else dict(
        face_crop=face_crop, no_face='whole_frame'), flow.size, name)
    keep = _Keep(crop, flow.size)
    ext = WindowFlowExtractor(flow, fps, keep)
    for frame in stream_frames(source):
        ext.push(frame)
    feats = ext.result()
    t_features = time.perf_counter() - t0

    # -- spotting
    t0 = time.perf_counter()
    if spotter_name == 'learned':
        from raicl_mm.spotting.learned import LearnedFlowSpotter
        from raicl_mm.spotting.str_protocol import load_records, video_features
        if not train_config:
            raise SpotError('--spotter learned needs --train-config (a benchmark to train on)')
        tcfg = Config.fromfile(train_config).to_dict()
        tflow = WindowFlowConfig(**tcfg.get('flow', {}))
        if tflow.k(fps) != flow.k(fps):
            raise SpotError('the training config\'s windows differ from this run\'s')
        recs = load_records(tcfg['data'])
        train = [(video_features(r, tflow, tcfg.get('cache_dir'), tcfg.get('face')),
                  r.gt_indices()) for r in recs]
        sp_cfg = next(s for s in tcfg['spotters'] if s['type'] == 'LearnedFlowSpotter')
        spotter = LearnedFlowSpotter(**{k: v for k, v in sp_cfg.items()
                                        if k not in ('type', 'name')}).fit(train, seed=0)
    else:
        spotter = FlowPeakSpotter(p=dict(micro=p[0], macro=p[1]), tune_p=False)
    intervals = spotter.spot(feats)
    curves = spotter.curves(feats)
    t_spot = time.perf_counter() - t0

    # -- recognition of every spotted interval
    t0 = time.perf_counter()
    if not not recognition and intervals:
        from raicl_mm.apis import RaICLInferencer
        rec = cfg.get('recognizer') or {}
        rcfg = recognizer_config or rec.get('config')
        ckpt = checkpoint or rec.get('checkpoint')
        if not rcfg or not ckpt or not osp.isfile(ckpt):
            raise SpotError(f'recogniser checkpoint {ckpt!r} missing: pass --checkpoint '
                             'or --no-recognition')
        inf = RaICLInferencer(rcfg, ckpt, device=device, face_crop=None,
                              mode=mode)
        for iv in intervals:
            lo, hi = iv['onset'], max(iv['offset'], iv['onset'] + 1)
            clip = keep.frames[lo:hi + 1]
            res = inf.predict_clip(clip, mode=mode, fps=fps)
            iv['label'], iv['scores'] = res.label, res.scores
    t_recog = time.perf_counter() - t0

    # -- outputs
    for iv in intervals:
        iv['onset_s'] = round(iv['onset'] / fps, 3)
        iv['offset_s'] = round(iv['offset'] / fps, 3)
    base = osp.join(out_dir, name)
    total = t_features + t_spot + t_recog
    per_min = 1800.0 / max(1, feats.num_frames)   # one minute of 30 fps video
    speed = dict(frames=feats.num_frames, fps=fps,
                 s_per_min_30fps=round(total * per_min, 2),
                 baseline_decode_only_s_per_min_30fps=round(t_decode_only * per_min, 2),
                 stages_s=dict(decode_crop_flow=round(t_features, 3),
                               crop=round(crop.seconds if crop else 0.0, 3),
                               flow=round(ext.flow_seconds, 3), spot=round(t_spot, 3),
                               recognise=round(t_recog, 3)),
                 threads=torch.get_num_threads())
    out = dict(input=source, fps=fps, frames=feats.num_frames, spotter=spotter_name,
               p=spotter.p, k=feats.k, intervals=intervals,
               face_segments=crop.segments if crop else [], speed=speed)
    with open(base + '_intervals.json', 'w') as fh:
        json.dump(out, fh, indent=1, default=float)
    with open(base + '_intervals.csv', 'w', newline='') as fh:
        w = csv.writer(fh)
        w.writerow(['onset', 'apex', 'offset', 'onset_s', 'offset_s', 'type', 'score',
                    'label', 'scores'])
        for iv in intervals:
            w.writerow([iv['onset'], iv['apex'], iv['offset'], iv['onset_s'], iv['offset_s'],
                        iv['type'], round(iv['score'], 4), iv.get('label', ''),
                        json.dumps({k: round(v, 4) for k, v in iv.get('scores', {}).items()})])
    rec = LongVideoRecord('user', 'user', name, list(range(feats.num_frames)),
                          [''] * feats.num_frames, fps, [])
    curve = curves['micro'] if spotter_name == 'learned' else None
    timeline_png(base + '_timeline.png', rec, fps, feats.signal['micro'],
                 {spotter_name: dict(pred=intervals, curve=curve)},
                 f'{name}: spotted intervals ({spotter_name})')
    out['base'] = base
    return out
