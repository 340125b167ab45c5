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
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


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

    import os

    import torch
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '1') or 1))
    from raicl_mm.spotting.video import SpotError, spot_video
    try:
        out = spot_video(
            args.source, config=args.config, spotter_name=args.spotter,
            train_config=args.train_config, p=args.p, fps_given=args.fps,
            face_crop=args.face_crop, rois=args.rois,
            recognizer_config=args.recognizer_config,
            checkpoint=args.checkpoint, mode=args.mode,
            recognition=not args.no_recognition, device=args.device,
            out_dir=args.out_dir)
    except (SpotError, OSError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    intervals, fps, speed, base = (out['intervals'], out['fps'], out['speed'],
                                   out['base'])
    print(f'{len(intervals)} intervals ({sum(i["type"] == "micro" for i in intervals)} micro, '
          f'{sum(i["type"] == "macro" for i in intervals)} macro) in {out["frames"]} '
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
