"""A long recording -> spotted micro/macro intervals, their classes, a timeline.

    python tools/spot.py my_interview.mp4 --out-dir work_dirs/spot
    python tools/spot.py frames_folder/ --fps 30 --face-crop landmarks \
        --recognizer-config configs/raicl_cde.py --checkpoint epoch_100.pth
    python tools/spot.py video.avi --spotter learned \
        --train-config configs/spotting/str_synthetic.py   # learned spotter

Frames are streamed (decoded one at a time; only ``2k + 1`` frames of the
largest window and the small aligned face crops are kept). The face crop is
taken once per stable head pose (:mod:`raicl_mm.spotting.face_track`). The
spotter is the training-free baseline by default (its threshold from
``--p``), or the learned spotter trained on a benchmark config's videos.
Every spotted interval is recognised with a Ra-ICL checkpoint (the middle
instance or the ensemble) unless ``--no-recognition``.

Writes ``<name>_intervals.json``, ``<name>_intervals.csv`` and
``<name>_timeline.png`` to ``--out-dir``, and prints the speed in seconds per
minute of 30 fps video beside a baseline measured in the same run (decoding
the same input alone, the floor any tool pays).
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import os.path as osp
import re
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

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
            raise SystemExit(f'{source}: no images ({", ".join(IMAGE_EXTS)})')
        for p in paths:
            img = cv2.imread(p, cv2.IMREAD_GRAYSCALE)
            if img is None:
                raise SystemExit(f'{p}: could not be decoded')
            yield img
        return
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        raise SystemExit(f'{source}: OpenCV could not open it')
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('source', help='video file or folder of frames')
    ap.add_argument('--config', default='configs/spotting/str_synthetic.py',
                    help='spotting config (flow settings, spotter, recogniser)')
    ap.add_argument('--spotter', choices=('baseline', 'learned'), default='baseline')
    ap.add_argument('--train-config', help='learned: train on this config\'s benchmark videos')
    ap.add_argument('--p', type=float, nargs=2, metavar=('MICRO', 'MACRO'),
                    default=(0.3, 0.5), help='baseline threshold fractions')
    ap.add_argument('--fps', type=float, help='frame rate (default: the video\'s, else 30)')
    ap.add_argument('--face-crop', default='none', choices=('none', 'landmarks', 'haar'),
                    help='face crop, taken once per stable head pose')
    ap.add_argument('--rois', help='region preset (default: the config\'s; landmark_crop '
                    'with --face-crop landmarks)')
    ap.add_argument('--recognizer-config', help='Ra-ICL config (default: the config\'s)')
    ap.add_argument('--checkpoint', help='Ra-ICL checkpoint (default: the config\'s)')
    ap.add_argument('--mode', choices=('middle', 'ensemble'), default='ensemble')
    ap.add_argument('--no-recognition', action='store_true')
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--out-dir', default='work_dirs/spot')
    args = ap.parse_args(argv)

    import numpy as np
    import torch
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '1') or 1))
    from mmengine.config import Config

    from raicl_mm.datasets.long_videos import LongVideoRecord
    from raicl_mm.spotting.baseline import FlowPeakSpotter
    from raicl_mm.spotting.face_track import crop_for
    from raicl_mm.spotting.features import WindowFlowConfig, WindowFlowExtractor
    from raicl_mm.spotting.str_protocol import timeline_png

    cfg = Config.fromfile(args.config).to_dict()
    flow_kw = dict(cfg.get('flow', {}))
    if args.rois:
        flow_kw['rois'] = args.rois
    elif args.face_crop == 'landmarks':
        flow_kw['rois'] = 'landmark_crop'
    flow = WindowFlowConfig(**flow_kw)
    fps = video_fps(args.source, args.fps)
    name = osp.splitext(osp.basename(osp.normpath(args.source)))[0]
    os.makedirs(args.out_dir, exist_ok=True)

    # -- the baseline of the speed figure: decoding alone, same input, same run
    t0 = time.perf_counter()
    n_decoded = sum(1 for _ in stream_frames(args.source))
    t_decode_only = time.perf_counter() - t0

    # -- the pipeline: decode -> stable-pose crop -> window flows (streamed)
    t0 = time.perf_counter()
    crop = crop_for(None if args.face_crop == 'none' else dict(
        face_crop=args.face_crop, no_face='whole_frame'), flow.size, name)
    keep = _Keep(crop, flow.size)
    ext = WindowFlowExtractor(flow, fps, keep)
    for frame in stream_frames(args.source):
        ext.push(frame)
    feats = ext.result()
    t_features = time.perf_counter() - t0

    # -- spotting
    t0 = time.perf_counter()
    if args.spotter == 'learned':
        from raicl_mm.spotting.learned import LearnedFlowSpotter
        from raicl_mm.spotting.str_protocol import load_records, video_features
        if not args.train_config:
            raise SystemExit('--spotter learned needs --train-config (a benchmark to train on)')
        tcfg = Config.fromfile(args.train_config).to_dict()
        tflow = WindowFlowConfig(**tcfg.get('flow', {}))
        if tflow.k(fps) != flow.k(fps):
            raise SystemExit('the training config\'s windows differ from this run\'s')
        recs = load_records(tcfg['data'])
        train = [(video_features(r, tflow, tcfg.get('cache_dir'), tcfg.get('face')),
                  r.gt_indices()) for r in recs]
        sp_cfg = next(s for s in tcfg['spotters'] if s['type'] == 'LearnedFlowSpotter')
        spotter = LearnedFlowSpotter(**{k: v for k, v in sp_cfg.items()
                                        if k not in ('type', 'name')}).fit(train, seed=0)
    else:
        spotter = FlowPeakSpotter(p=dict(micro=args.p[0], macro=args.p[1]), tune_p=False)
    intervals = spotter.spot(feats)
    curves = spotter.curves(feats)
    t_spot = time.perf_counter() - t0

    # -- recognition of every spotted interval
    t0 = time.perf_counter()
    if not args.no_recognition and intervals:
        from raicl_mm.apis import RaICLInferencer
        rec = cfg.get('recognizer') or {}
        rcfg = args.recognizer_config or rec.get('config')
        ckpt = args.checkpoint or rec.get('checkpoint')
        if not rcfg or not ckpt or not osp.isfile(ckpt):
            raise SystemExit(f'recogniser checkpoint {ckpt!r} missing: pass --checkpoint '
                             'or --no-recognition')
        inf = RaICLInferencer(rcfg, ckpt, device=args.device, face_crop=None,
                              mode=args.mode)
        for iv in intervals:
            lo, hi = iv['onset'], max(iv['offset'], iv['onset'] + 1)
            clip = keep.frames[lo:hi + 1]
            res = inf.predict_clip(clip, mode=args.mode, fps=fps)
            iv['label'], iv['scores'] = res.label, res.scores
    t_recog = time.perf_counter() - t0

    # -- outputs
    for iv in intervals:
        iv['onset_s'] = round(iv['onset'] / fps, 3)
        iv['offset_s'] = round(iv['offset'] / fps, 3)
    base = osp.join(args.out_dir, name)
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
    out = dict(input=args.source, fps=fps, frames=feats.num_frames, spotter=args.spotter,
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
    curve = curves['micro'] if args.spotter == 'learned' else None
    timeline_png(base + '_timeline.png', rec, fps, feats.signal['micro'],
                 {args.spotter: dict(pred=intervals, curve=curve)},
                 f'{name}: spotted intervals ({args.spotter})')
    print(f'{len(intervals)} intervals ({sum(i["type"] == "micro" for i in intervals)} micro, '
          f'{sum(i["type"] == "macro" for i in intervals)} macro) in {feats.num_frames} '
          f'frames at {fps:g} fps')
    for iv in intervals:
        print(f'  {iv["type"]:5s} {iv["onset_s"]:8.2f}-{iv["offset_s"]:8.2f} s  '
              f'score {iv["score"]:.2f}  {iv.get("label", "")}')
    print(f'speed: {speed["s_per_min_30fps"]} s per minute of 30 fps video '
          f'(baseline, decoding alone in this run: '
          f'{speed["baseline_decode_only_s_per_min_30fps"]} s), stages {speed["stages_s"]}, '
          f'{speed["threads"]} thread(s)')
    print(f'wrote {base}_intervals.json, {base}_intervals.csv, {base}_timeline.png')
    return 0


if __name__ == '__main__':
    sys.exit(main())
