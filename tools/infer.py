#!/usr/bin/env python
"""Run a trained Ra-ICL model on your own clips (no apex needed).

Each INPUT is a folder of frames, a video file (mp4 / avi / mov) or several
of them; each gives ``OUT_DIR/<name>.json`` (label, scores as class ->
probability, face_box [x1, y1, x2, y2] in input pixels, instances, frames
used, time per stage) and, with ``--show-cam``, ``OUT_DIR/<name>_cam.png``
(per instance: the aligned frame, its flow colour map, the CAM of the
predicted class over the aligned face).

Example::

    python tools/infer.py configs/raicl_cde.py work_dirs/cde/epoch_100.pth \\
        my_clip.mp4 --face-crop landmarks --show-cam --out-dir work_dirs/infer
"""
import argparse
import json
import os.path as osp
import re
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Ra-ICL prediction for frame folders / videos')
    p.add_argument('config', help='config file path')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('inputs', nargs='+', metavar='INPUT',
                   help='frame folder or video file')
    p.add_argument('--onset', type=int, help='0-based onset frame index '
                   '(default: the first frame)')
    p.add_argument('--offset', type=int, help='0-based offset frame index '
                   '(default: the last frame)')
    p.add_argument('--mode', choices=('middle', 'ensemble'),
                   help="middle instance (paper) or mean over all instances; "
                   "default: the config's test pipeline")
    p.add_argument('--face-crop', choices=('none', 'box', 'landmarks',
                                           'haar'),
                   help="face crop (default: the config's flow_cfg)")
    p.add_argument('--fps', type=float, help='frame rate of frame folders '
                   '(videos carry their own)')
    p.add_argument('--target-fps', type=float, help='resample every clip to '
                   'this rate before sampling (e.g. the training data\'s)')
    p.add_argument('--device', help='cpu, cuda, cuda:1 (default: CUDA when '
                   'available)')
    p.add_argument('--out-dir', default='work_dirs/infer',
                   help='where the JSON files (and pictures) go')
    p.add_argument('--show-cam', action='store_true',
                   help='also write a CAM picture per input')
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='allow a full (unsafe) unpickling of the checkpoint')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings')
    p.add_argument('--allow-truncated', action='store_true',
                   help='score a video that decodes fewer frames than its container '
                   'reports on the decoded ones (recorded as a warning in the JSON)')
    p.add_argument('--debug', action='store_true',
                   help='show the traceback of an error (also RAICL_DEBUG=1)')
    return p.parse_args(argv)


def _stem(path: str) -> str:
    base = osp.basename(osp.normpath(path))
    return re.sub(r'[^A-Za-z0-9._-]+', '_', base) or 'input'


def run(args) -> int:
    import cv2
    from mmengine.utils import ProgressBar

    from raicl_mm.apis import RaICLInferencer
    from raicl_mm.visualization.strips import atomic_write as _atomic_write

    if osp.exists(args.out_dir) and not osp.isdir(args.out_dir):
        raise ValueError(f'--out-dir {args.out_dir} is a file, not a folder')
    kwargs = {}
    if args.face_crop is not None:
        kwargs['face_crop'] = None if args.face_crop == 'none' \
            else args.face_crop
    infer = RaICLInferencer(args.config, args.checkpoint, device=args.device,
                            cfg_options=args.cfg_options, mode=args.mode,
                            target_fps=args.target_fps,
                            trust_checkpoint=args.trust_checkpoint,
                            allow_truncated=args.allow_truncated, **kwargs)
    stems = {}
    bar = ProgressBar(len(args.inputs), file=sys.stderr) \
        if len(args.inputs) > 1 else None
    written = []
    for path in args.inputs:
        res = infer(path, onset=args.onset, offset=args.offset, fps=args.fps)
        stem = _stem(path)
        stems[stem] = stems.get(stem, 0) + 1
        if stems[stem] > 1:
            stem = f'{stem}_{stems[stem]}'
        out = res.to_dict()
        out.update(config=args.config, checkpoint=args.checkpoint,
                   model_load_s=infer.load_time)
        if args.show_cam:
            pic = osp.join(args.out_dir, f'{stem}_cam.png')
            ok, buf = cv2.imencode('.png', infer.cam_picture(res))
            if not ok:
                raise RuntimeError(f'PNG encoding failed for {pic}')
            _atomic_write(pic, buf.tobytes())
            out['picture'] = pic
        js = osp.join(args.out_dir, f'{stem}.json')
        _atomic_write(js, (json.dumps(out, indent=1) + '\n').encode())
        written.append(dict(input=path, json=js, label=res.label,
                            score=res.scores[res.label]))
        if bar is not None:
            bar.update()
    if bar is not None:
        sys.stderr.write('\n')
    for w in written:
        print(json.dumps(w))
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    import raicl_mm  # noqa: F401  (applies the stack fixes first)
    from raicl_mm.apis import InferenceError
    from raicl_mm.compat import CheckpointError
    from raicl_mm.engine.cli import debug_wanted, error_line
    try:
        return run(args)
    except (InferenceError, CheckpointError, OSError, ValueError) as err:
        if debug_wanted(args):
            raise
        print(f'error: {str(err).splitlines()[0] if str(err) else type(err).__name__}',
              file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - one line unless --debug
        if debug_wanted(args):
            raise
        print(error_line(err, False), file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
