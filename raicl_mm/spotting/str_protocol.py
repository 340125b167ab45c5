"""The spot-then-recognize (STR) protocol, leave-one-subject-out.

For every spotter of a config and every seed it asks for:

1. **features** of every long video (:mod:`raicl_mm.spotting.features`,
   cached on disk, one ``.npz`` per video and flow setting);
2. **spotting**, leave-one-subject-out: the spotter is fitted on the other
   subjects' videos (the learned spotter trains, the baseline tunes its
   threshold) and spots the held-out subject's videos;
3. **recognition** of every spotted interval: the frames ``onset..offset``
   are cut from the video and given to a Ra-ICL checkpoint through
   :class:`raicl_mm.apis.RaICLInferencer`; one call gives both the middle
   instance's answer (paper) and the ensemble's;
4. **scores** pooled over all videos with the MEGC definitions of
   :mod:`raicl_mm.spotting.metrics`: spotting P/R/F1 micro, macro, overall;
   the analysis of the true positives; STRS on the micro track;
5. a **timeline picture** per video: ground truth, spotted intervals with
   their recognised class, the motion curve and the learned score.

The recogniser is one checkpoint for every fold. On the synthetic benchmark
it is trained on the embedded short-clip set (``configs/raicl_synthetic.py``
with ``--fold all``), whose subjects are drawn from another seed stream than
the long-video subjects: every long-video subject is unseen by it.
"""
from __future__ import annotations

import hashlib
import json
import os
import os.path as osp
import statistics
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .features import VideoFeatures, WindowFlowConfig, extract_features, read_frames
from .metrics import str_score
from .registry import build_spotter

STR_CLASSES = ('negative', 'positive', 'surprise')


# --------------------------------------------------------------------------
# data and features
# --------------------------------------------------------------------------
def load_records(data: Dict[str, Any]):
    """Long-video records of a config's ``data`` dict.

    ``type``: ``'synthetic_long'`` (generated on first use: ``root``,
    ``preset`` and generator overrides), ``'casme3'`` (``data_root``,
    ``ann_file``) or ``'samm_lv'`` (``root``, ``ann_file``, ``emotion_file``).
    """
    from raicl_mm.datasets import long_videos as lv
    data = dict(data)
    kind = data.pop('type')
    if kind == 'synthetic_long':
        from raicl_mm.synthetic.long_video import generate_long_videos, long_preset
        root = data.pop('root')
        preset = data.pop('preset', 'casme3')
        generate_long_videos(root, long_preset(preset, **data))
        return lv.read_synthetic_long(root)
    if kind == 'casme3':
        return lv.read_casme3_part_a(**data)
    if kind == 'samm_lv':
        return lv.read_samm_lv(**data)
    raise ValueError(f'data.type={kind!r} unknown; choose synthetic_long, casme3, samm_lv')


def _flow_key(cfg: WindowFlowConfig) -> str:
    d = dict(method=cfg.method, size=list(cfg.size), half=cfg.half_window_s,
             rois=cfg.roi_boxes(), map=cfg.map_size, v=1)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]


def video_features(record, flow: WindowFlowConfig, cache_dir: Optional[str],
                   face: Optional[Dict[str, Any]] = None) -> VideoFeatures:
    """Window flows of a record, from the cache when present.

    ``face``: a config's face dict (``face_crop='landmarks'`` ...): the crop
    is taken once per stable head pose (:mod:`raicl_mm.spotting.face_track`).
    """
    from .face_track import crop_for
    path = None
    if cache_dir:
        key = _flow_key(flow) + ('' if not face else '-' + hashlib.sha256(
            json.dumps(face, sort_keys=True).encode()).hexdigest()[:6])
        path = osp.join(cache_dir, key, record.dataset,
                        f'{record.subject}__{record.video}.npz')
        if osp.isfile(path):
            f = VideoFeatures.from_npz(path)
            if f.num_frames == record.num_frames:
                return f
    f = extract_features(read_frames(record.frame_paths), record.fps, flow,
                         crop_for(face, flow.size, record.key))
    if path:
        os.makedirs(osp.dirname(path), exist_ok=True)
        tmp = path + f'.{os.getpid()}.tmp.npz'
        f.to_npz(tmp)
        os.replace(tmp, path)
    return f


# --------------------------------------------------------------------------
# recognition
# --------------------------------------------------------------------------
class IntervalRecogniser:
    """Ra-ICL on spotted intervals (cached per video and interval)."""

    def __init__(self, config: str, checkpoint: str, device: str = 'cpu',
                 face_crop: Any = 'config', **kwargs):
        from raicl_mm.apis import RaICLInferencer
        extra = {} if face_crop == 'config' else dict(face_crop=face_crop)
        self.inferencer = RaICLInferencer(config, checkpoint, device=device,
                                          **extra, **kwargs)
        self.classes = list(self.inferencer.classes)
        self._cache: Dict[Tuple[str, int, int], Dict[str, Any]] = {}
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, record, onset: int, offset: int) -> Dict[str, Any]:
        """``{'middle': (label, scores), 'ensemble': (label, scores)}``."""
        import cv2
        key = (record.key, int(onset), int(offset))
        if key in self._cache:
            return self._cache[key]
        t0 = time.perf_counter()
        lo, hi = int(onset), int(offset)
        if hi - lo < 1:  # a clip needs two frames
            hi = min(record.num_frames - 1, lo + 1)
            lo = max(0, hi - 1)
        frames = [cv2.imread(record.frame_paths[i], cv2.IMREAD_COLOR)
                  for i in range(lo, hi + 1)]
        res = self.inferencer.predict_clip(frames, mode='ensemble', fps=record.fps)
        mid = res.instances[len(res.instances) // 2]
        out = dict(ensemble=(res.label, res.scores), middle=(mid['label'], mid['scores']))
        self._cache[key] = out
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return out


# --------------------------------------------------------------------------
# the protocol
# --------------------------------------------------------------------------
def _spotter_name(cfg: Dict[str, Any]) -> str:
    return cfg.get('name') or cfg['type']


def run_loso(records, feats: Dict[str, VideoFeatures], spotter_cfg: Dict[str, Any],
             seed: int) -> Dict[str, List[Dict[str, Any]]]:
    """Spotted intervals (frame indices) of every video, leave-one-subject-out."""
    subjects = sorted({r.subject for r in records})
    preds: Dict[str, List[Dict[str, Any]]] = {}
    fits: Dict[str, Any] = {}
    for s in subjects:
        train = [(feats[r.key], r.gt_indices()) for r in records if r.subject != s]
        cfg = {k: v for k, v in spotter_cfg.items() if k != 'name'}
        sp = build_spotter(cfg)
        t0 = time.perf_counter()
        sp.fit(train, seed=seed)
        fits[s] = dict(p=dict(sp.p), seconds=time.perf_counter() - t0)
        for r in records:
            if r.subject == s:
                preds[r.key] = sp.spot(feats[r.key])
                if hasattr(sp, 'curves'):
                    feats_curves = sp.curves(feats[r.key])
                    preds[r.key + '#curves'] = {k: np.asarray(v).tolist()
                                                for k, v in feats_curves.items()}
    preds['#fits'] = fits
    return preds


def score_run(records, preds, recogniser: Optional[IntervalRecogniser], mode: str,
              classes: Sequence[str], track: str = 'micro') -> Dict[str, Any]:
    """Recognise the spotted intervals (``mode``) and score the run."""
    videos = []
    for r in records:
        pv = []
        for iv in preds[r.key]:
            d = dict(iv)
            if recogniser is not None:
                d['label'] = recogniser(r, iv['onset'], iv['offset'])[mode][0]
            pv.append(d)
        videos.append(dict(video=r.key, gt=r.gt_indices(), pred=pv))
    res = str_score(videos, track=track, classes=list(classes), truth_key='label',
                    pred_key='label')
    res['videos'] = videos
    return res


def _mean_sd(xs: Sequence[float]) -> Dict[str, float]:
    xs = [float(x) for x in xs]
    return dict(mean=float(np.mean(xs)), sd=float(statistics.stdev(xs)) if len(xs) > 1 else 0.0,
                runs=xs)


def _strip(res: Dict[str, Any]) -> Dict[str, Any]:
    """A run's scores without the per-interval lists (for the report)."""
    spot = res['spotting']
    ana = {k: v for k, v in res['analysis'].items()}
    return dict(spotting=spot, analysis=ana, strs=res['strs'], track=res['track'])


def timeline_png(path: str, record, fps: float, motion: Optional[np.ndarray],
                 runs: Dict[str, Dict[str, Any]], title: str = '') -> str:
    """Ground truth, spotted intervals with their classes, and the curves, as a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    colours = {'micro': '#d62728', 'macro': '#1f77b4'}
    n_rows = 1 + len(runs)
    fig, axes = plt.subplots(n_rows + 1, 1, figsize=(14, 1.2 * (n_rows + 1) + 1.2),
                             sharex=True, gridspec_kw=dict(
                                 height_ratios=[2.2] + [1] * n_rows))
    t = np.arange(record.num_frames) / fps
    ax = axes[0]
    if motion is not None:
        ax.plot(t, motion / (motion.max() or 1), color='0.3', lw=0.8, label='motion (micro scale)')
    for name, run in runs.items():
        curve = run.get('curve')
        if curve is not None:
            ax.plot(t, curve, lw=0.8, label=f'{name} micro score')
    ax.set_ylabel('signal')
    ax.legend(loc='upper right', fontsize=7, ncol=3)
    ax.set_title(title or record.key, fontsize=9)

    def draw(ax, ivs, label_key, name):
        for iv in ivs:
            c = colours.get(iv['type'], 'k')
            ax.axvspan(iv['onset'] / fps, (iv['offset'] + 1) / fps, color=c, alpha=0.35)
            txt = iv.get(label_key) or ''
            ax.text((iv['onset'] + iv['offset']) / 2 / fps, 0.5, str(txt)[:3],
                    ha='center', va='center', fontsize=6)
        ax.set_yticks([])
        ax.set_ylabel(name, rotation=0, ha='right', va='center', fontsize=8)
    draw(axes[1], record.gt_indices(), 'label', 'truth')
    for ax_, (name, run) in zip(axes[2:], runs.items()):
        draw(ax_, run['pred'], 'label', name)
    axes[-1].set_xlabel('time (s)  red: micro, blue: macro; text: class')
    fig.tight_layout()
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def run_str(cfg: Dict[str, Any], log=print) -> Dict[str, Any]:
    """The whole protocol of a config dict; returns the report (also written)."""
    t_start = time.perf_counter()
    work_dir = cfg.get('work_dir', 'work_dirs/str')
    os.makedirs(work_dir, exist_ok=True)
    records = load_records(cfg['data'])
    flow = WindowFlowConfig(**cfg.get('flow', {}))
    log(f'{len(records)} long videos, {len({r.subject for r in records})} subjects')
    t0 = time.perf_counter()
    feats = {r.key: video_features(r, flow, cfg.get('cache_dir'), cfg.get('face'))
             for r in records}
    t_feat = time.perf_counter() - t0
    rec_cfg = cfg.get('recognizer')
    recogniser = IntervalRecogniser(**{k: v for k, v in rec_cfg.items()
                                       if k not in ('modes', 'train_cmd')}) \
        if rec_cfg else None
    modes = list(rec_cfg.get('modes', ['middle', 'ensemble'])) if rec_cfg else ['none']
    classes = list(cfg.get('analysis_classes', STR_CLASSES))
    track = cfg.get('track', 'micro')
    report: Dict[str, Any] = dict(
        config={k: v for k, v in cfg.items() if k != 'data'} | dict(data=cfg['data']),
        data=dict(videos=len(records), subjects=sorted({r.subject for r in records})),
        spotters={})
    from raicl_mm.datasets.long_videos import summarise
    report['data'].update(summarise(records))
    timeline_runs: Dict[str, Dict[str, Dict[str, Any]]] = {r.key: {} for r in records}
    for sp_cfg in cfg['spotters']:
        name = _spotter_name(sp_cfg)
        seeds = list(cfg.get('seeds', {}).get(name, [0]))
        per_seed = []
        for seed in seeds:
            t0 = time.perf_counter()
            preds = run_loso(records, feats, sp_cfg, seed)
            t_spot = time.perf_counter() - t0
            runs = {}
            for mode in modes:
                res = score_run(records, preds, recogniser if mode != 'none' else None,
                                mode if mode != 'none' else 'ensemble', classes, track)
                runs[mode] = res
            first = runs[modes[0]]
            log(f'{name} seed {seed}: spotting F1 micro {first["spotting"]["micro"]["f1"]:.3f} '
                f'macro {first["spotting"]["macro"]["f1"]:.3f} overall '
                f'{first["spotting"]["overall"]["f1"]:.3f}; ' + ', '.join(
                    f'STRS[{m}] {runs[m]["strs"]:.3f}' for m in modes)
                + f' ({t_spot:.1f} s)')
            per_seed.append(dict(seed=seed, seconds=t_spot, fits=preds['#fits'],
                                 modes={m: _strip(runs[m]) for m in modes},
                                 intervals={v['video']: v['pred'] for v in first['videos']}))
            if seed == seeds[0]:
                for r in records:
                    curve = preds.get(r.key + '#curves', {}).get('micro')
                    timeline_runs[r.key][name] = dict(
                        pred=[v for v in first['videos'] if v['video'] == r.key][0]['pred'],
                        curve=np.asarray(curve) if curve is not None and name != 'baseline'
                        and sp_cfg['type'] != 'FlowPeakSpotter' else None)
        summary = {}
        for m in modes:
            summary[m] = dict(
                strs=_mean_sd([s['modes'][m]['strs'] for s in per_seed]),
                analysis_f1=_mean_sd([s['modes'][m]['analysis']['f1'] for s in per_seed]),
                analysis_accuracy=_mean_sd([s['modes'][m]['analysis']['accuracy']
                                            for s in per_seed]))
        for t in ('micro', 'macro', 'overall'):
            for key in ('f1', 'precision', 'recall'):
                summary[f'spot_{t}_{key}'] = _mean_sd(
                    [s['modes'][modes[0]]['spotting'][t][key] for s in per_seed])
        report['spotters'][name] = dict(config=sp_cfg, seeds=seeds, summary=summary,
                                        runs=per_seed)
    pics = []
    for r in records:
        pics.append(timeline_png(osp.join(work_dir, 'timelines', f'{r.subject}_{r.video}.png'),
                                 r, r.fps, feats[r.key].signal['micro'],
                                 timeline_runs[r.key], f'{r.key}: truth and spotted '
                                 f'intervals (first seed)'))
    report['timelines'] = pics
    report['seconds'] = dict(features=t_feat, total=time.perf_counter() - t_start,
                             recognition=recogniser.seconds if recogniser else 0.0,
                             recognition_calls=recogniser.calls if recogniser else 0,
                             video_minutes=sum(r.num_frames / r.fps for r in records) / 60)
    with open(osp.join(work_dir, 'str_report.json'), 'w') as fh:
        json.dump(report, fh, indent=1, default=_json_default)
    with open(osp.join(work_dir, 'str_report.md'), 'w') as fh:
        fh.write(report_markdown(report))
    return report


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    return str(o)


def report_markdown(report: Dict[str, Any]) -> str:
    """The pooled table of a report."""
    lines = ['| spotter | seeds | spot F1 micro | spot F1 macro | spot F1 overall | '
             'analysis F1 (middle) | STRS (middle) | analysis F1 (ensemble) | STRS (ensemble) |',
             '|---|---|---|---|---|---|---|---|---|']

    def ms(d):
        return f'{d["mean"]:.3f}' + (f' ± {d["sd"]:.3f}' if len(d['runs']) > 1 else '')
    for name, sp in report['spotters'].items():
        s = sp['summary']
        row = [name, str(len(sp['seeds'])), ms(s['spot_micro_f1']), ms(s['spot_macro_f1']),
               ms(s['spot_overall_f1'])]
        for m in ('middle', 'ensemble'):
            if m in s:
                row += [ms(s[m]['analysis_f1']), ms(s[m]['strs'])]
            else:
                row += ['-', '-']
        lines.append('| ' + ' | '.join(row) + ' |')
    return '\n'.join(lines) + '\n'
