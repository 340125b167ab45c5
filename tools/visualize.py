#!/usr/bin/env python
"""Attention pictures of a trained Ra-ICL model (paper Fig. 5 / Fig. 14).

For each chosen sample, every instance of its set goes through the online
branch and ``OUT/<sample_id with / -> _>.png`` shows, column by column (in
frame order), the aligned face frame, the instance's flow colour map and its
CAM, Grad-CAM and Guided Grad-CAM overlays on the face (with the outline of
the ground-truth region on the synthetic set), under a title with the ground
truth and the prediction (the middle instance's, as at test time). The strips
also go to TensorBoard (``OUT/vis_data``) through mmengine's visualizer. The
drawing is :func:`raicl_mm.visualization.strips.draw_attention`.
``OUT/<...>_flow.png`` is the flow colour map (Algorithm 1) of the middle
instance alone, with its direction wheel and a brightness bar in pixels.
The middle instance (the one a test run scores) is framed in red; the Grad-CAM
row is taken on ``backbone.layer3`` by default, since on the last feature map
Grad-CAM equals the CAM up to scale for Ra-ICL's GAP + FC head.

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
import os.path as osp
import sys

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
    p.add_argument('--gradcam-layer', default='auto',
                   help='module of the online branch for Grad-CAM (e.g. '
                   'backbone.layer2); default: backbone.layer3 when the '
                   'branch has one; "last" = the last feature map, where '
                   'Grad-CAM equals the CAM up to scale (GAP + FC head)')
    p.add_argument('--no-guided', action='store_true',
                   help='leave out the Guided Grad-CAM row')
    p.add_argument('--tile', type=int, default=96,
                   help='tile size of the strip in pixels')
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='allow a full (unsafe) unpickling of the checkpoint; '
                   'only for files you trust')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override settings in mmaction2 style, e.g. '
                   'test_dataloader.dataset.data_roots.casme2=/data/c2')
    return p.parse_args(argv)


# --------------------------------------------------------------------------
def _visualizer(cfg, out):
    """The config's visualizer writing under ``out`` (TensorBoard too when
    it is installed), so the strips also appear in TensorBoard."""
    from mmengine.visualization import Visualizer
    backends = [dict(b) for b in (cfg.get('visualizer') or {}).get(
        'vis_backends', [dict(type='LocalVisBackend')])]
    try:
        import tensorboard  # noqa: F401
        if not any(b.get('type') == 'TensorboardVisBackend'
                   for b in backends):
            backends.append(dict(type='TensorboardVisBackend'))
    except ImportError:
        pass
    return Visualizer(name=f'raicl_visualize_{id(cfg)}',
                      vis_backends=backends, save_dir=out)


def run(args):
    from mmaction.registry import DATASETS, MODELS
    from mmengine.registry import init_default_scope

    from raicl_mm import compat
    from raicl_mm.apis.provenance import checkpoint_meta, is_synthetic_data
    from raicl_mm.engine.checkpoint import load_checked
    from raicl_mm.engine.cli import ToolError, apply_fold, read_config
    from raicl_mm.engine.config import ConfigError, check_config
    from raicl_mm.visualization.strips import atomic_write, draw_attention

    if not osp.isfile(args.checkpoint):
        raise ToolError(f'checkpoint {args.checkpoint} does not exist')
    if args.max_samples < 1:
        raise ToolError(f'--max-samples must be at least 1, got '
                        f'{args.max_samples}')
    cfg = read_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    try:
        check_config(cfg)
    except ConfigError as err:
        raise ToolError(str(err)) from None
    # --fold: that fold's test subject; none: every subject of the data set.
    fold_key = apply_fold(cfg, args.fold if args.fold is not None else 'all')
    if args.fold is None:
        fold_key = None
    out = args.out or osp.join(
        'work_dirs', 'vis', osp.splitext(osp.basename(args.config))[0]) + (
            f'/fold_{fold_key}' if fold_key else '')

    init_default_scope('mmaction')
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    ids = [dataset.get_data_info(i)['sample_id'] for i in range(len(dataset))]
    if args.samples:
        unknown = [s for s in args.samples if s not in ids]
        if unknown:
            some = ', '.join(ids[:5])
            where = f'fold {fold_key}' if fold_key else 'the data set'
            raise ToolError(f'unknown sample id {unknown[0]!r} in {where}; '
                            f'valid ids include: {some}')
        chosen = list(dict.fromkeys(args.samples))
    else:
        chosen = ids[:args.max_samples]

    model = MODELS.build(cfg.model)
    if args.trust_checkpoint or cfg.get('trust_checkpoint'):
        compat.trust_checkpoint(args.checkpoint)
    load_checked(model, args.checkpoint)  # refused if it does not fit
    model.eval()
    from raicl_mm.apis.provenance import warn_if_synthetic
    warn_if_synthetic(checkpoint_meta(args.checkpoint), args.checkpoint,
                      real_data=not is_synthetic_data(cfg, 'test'))
    layer = None if args.gradcam_layer == 'last' else args.gradcam_layer
    # Every picture written also goes to the event file: the visualizer is
    # closed (its TensorBoard writer flushed) before the tool returns; an
    # unclosed writer drops what is still queued at exit.
    vis = _visualizer(cfg, out)
    try:
        summary = draw_attention(cfg, dataset, model, chosen, out,
                                 gradcam_layer=layer,
                                 guided=not args.no_guided, tile=args.tile,
                                 visualizer=vis)
    finally:
        vis.close()
    summary = dict(config=args.config, checkpoint=args.checkpoint,
                   fold=fold_key, **summary)
    text = json.dumps(summary, indent=1)
    atomic_write(osp.join(out, 'summary.json'), (text + '\n').encode())
    print(text)
    return 0


def main(argv=None):
    args = parse_args(argv)
    import raicl_mm  # noqa: F401  (applies the stack fixes first)
    from raicl_mm.engine.cli import one_line, user_errors
    try:
        return run(args)
    except user_errors() as err:
        print(f'error: {one_line(err)}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
