"""Spotters, peaks, window flows, the STR protocol and tools/spot.py on tiny videos."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from raicl_mm.spotting import SPOTTERS, build_spotter
from raicl_mm.spotting.baseline import FlowPeakSpotter
from raicl_mm.spotting.features import (VideoFeatures, WindowFlowConfig, extract_features)
from raicl_mm.spotting.learned import LearnedFlowSpotter, soft_targets
from raicl_mm.spotting.metrics import spotting_scores
from raicl_mm.spotting.peaks import (curves_to_intervals, merge_intervals, moilanen_threshold,
                                     peak_intervals, suppress_micro_in_macro)
from raicl_mm.synthetic import long_video as LV

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def tiny():
    """Two tiny videos (15 fps, 12 s, 32 px) and their features."""
    cfg = LV.long_preset('tiny', num_subjects=2, duration_s=12.0, size=32)
    faces, plans = LV.plan_all(cfg)
    out = []
    for p in plans:
        frames = list(LV.render_video(faces[p['subject_index']], p, cfg))
        feats = extract_features(frames, cfg.fps, WindowFlowConfig(size=(32, 32), map_size=8))
        out.append((feats, [dict(iv) for iv in p['intervals']], frames, p))
    return out


def test_peaks_recipe():
    x = np.zeros(100)
    x[30] = 1.0
    x[70] = 0.5
    assert moilanen_threshold(x, 0.5) == pytest.approx(x.mean() + 0.5 * (1 - x.mean()))
    ivs = peak_intervals(x, 3, 0.2, 'micro', smooth=1)
    assert [(i['onset'], i['apex'], i['offset']) for i in ivs] == [(27, 30, 33), (67, 70, 73)]
    assert ivs[0]['score'] == pytest.approx(1.0) and 0 < ivs[1]['score'] < 1
    merged = merge_intervals([dict(onset=0, apex=2, offset=5, type='micro', score=0.2),
                              dict(onset=4, apex=8, offset=9, type='micro', score=0.9),
                              dict(onset=4, apex=6, offset=9, type='macro', score=0.1)])
    assert [(m['onset'], m['offset'], m['apex'], m['type']) for m in merged] == \
        [(0, 9, 8, 'micro'), (4, 9, 6, 'macro')]
    kept = suppress_micro_in_macro([dict(onset=10, offset=14, type='micro'),
                                    dict(onset=0, offset=12, type='macro'),
                                    dict(onset=30, offset=34, type='micro')])
    assert [k['onset'] for k in kept] == [0, 30]


def test_window_flows_stream_and_roundtrip(tiny, tmp_path):
    feats, gts, frames, p = tiny[0]
    assert feats.num_frames == len(frames)
    k = feats.k['micro']
    assert feats.signal['micro'][:k].sum() == 0 and feats.signal['micro'][k:-k].min() >= 0
    assert feats.maps['micro'].shape == (len(frames), 4, 8, 8)
    # the motion is larger inside expressions than outside, on average
    inside = np.zeros(len(frames), bool)
    for g in gts:
        inside[g['onset']:g['offset'] + 1] = True
    sig = feats.signal['micro']
    assert sig[inside].mean() > sig[~inside & (sig > 0)].mean()
    feats.to_npz(str(tmp_path / 'f.npz'))
    back = VideoFeatures.from_npz(str(tmp_path / 'f.npz'))
    assert back.k == feats.k and np.allclose(back.signal['macro'], feats.signal['macro'])


def test_baseline_spots_and_tunes(tiny):
    sp = build_spotter(dict(type='FlowPeakSpotter', tune_p=True))
    assert isinstance(sp, FlowPeakSpotter)
    sp.fit([(f, g) for f, g, _, _ in tiny[1:]])
    assert set(sp.p) == {'micro', 'macro'}
    feats, gts, _, _ = tiny[0]
    ivs = sp.spot(feats)
    assert ivs and all(0 <= i['onset'] <= i['apex'] <= i['offset'] < feats.num_frames
                       and i['type'] in ('micro', 'macro') and 0 <= i['score'] <= 1
                       for i in ivs)
    res = spotting_scores([dict(gt=gts, pred=ivs)])
    assert res['overall']['tp'] >= 1


def test_learned_spotter_trains_and_spots(tiny):
    feats, gts, _, _ = tiny[0]
    y = soft_targets(feats, gts)
    assert y.shape == (feats.num_frames, 2) and 0 <= y.min() and y.max() <= 1
    g = next(g for g in gts if g['type'] == 'micro')
    assert y[(g['onset'] + g['offset']) // 2, 0] > 0.3
    sp = SPOTTERS.build(dict(type='LearnedFlowSpotter', epochs=3, chunk=64))
    assert isinstance(sp, LearnedFlowSpotter)
    sp.fit([(f, g) for f, g, _, _ in tiny], seed=0)
    assert len(sp.history) == 3 and all(np.isfinite(sp.history))
    curves = sp.curves(feats)
    assert curves['micro'].shape == (feats.num_frames,)
    ivs = sp.spot(feats)
    assert all(i['type'] in ('micro', 'macro') for i in ivs)
    # the same seed trains the same model
    sp2 = LearnedFlowSpotter(epochs=3, chunk=64).fit([(f, g) for f, g, _, _ in tiny], seed=0)
    assert np.allclose(sp2.curves(feats)['micro'], curves['micro'], atol=1e-6)
    state = sp.state()
    sp3 = LearnedFlowSpotter().load_state(state)
    assert np.allclose(sp3.curves(feats)['micro'], curves['micro'], atol=1e-6)


def test_str_protocol_without_recogniser(tmp_path):
    from raicl_mm.spotting.str_protocol import run_str
    cfg = dict(data=dict(type='synthetic_long', root=str(tmp_path / 'lv'), preset='tiny',
                         num_subjects=2, duration_s=8.0, size=32),
               flow=dict(size=(32, 32), map_size=8),
               spotters=[dict(type='FlowPeakSpotter', name='baseline'),
                         dict(type='LearnedFlowSpotter', name='learned', epochs=2, chunk=64)],
               seeds=dict(learned=[0, 1]), recognizer=None,
               work_dir=str(tmp_path / 'wd'), cache_dir=str(tmp_path / 'cache'))
    rep = run_str(cfg, log=lambda m: None)
    assert set(rep['spotters']) == {'baseline', 'learned'}
    assert len(rep['spotters']['learned']['runs']) == 2
    s = rep['spotters']['baseline']['summary']
    assert 0 <= s['spot_overall_f1']['mean'] <= 1
    assert len(rep['timelines']) == 2 and all(os.path.isfile(p) for p in rep['timelines'])
    assert os.path.isfile(tmp_path / 'wd' / 'str_report.md')
    # the features were cached: a second run reads them
    assert list((tmp_path / 'cache').rglob('*.npz'))


def test_spot_tool_on_a_video_file(tmp_path):
    cfg = LV.long_preset('tiny', num_subjects=1, duration_s=8.0, size=48)
    faces, plans = LV.plan_all(cfg)
    video = LV.write_video_file(str(tmp_path / 'rec.avi'),
                                LV.render_video(faces[0], plans[0], cfg), cfg.fps)
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'tools', 'spot.py'), video, '--no-recognition',
         '--out-dir', str(tmp_path / 'out'), '--p', '0.3', '0.5'],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert out.returncode == 0, out.stderr[-2000:]
    assert 's per minute of 30 fps video' in out.stdout and 'decoding alone' in out.stdout
    res = json.load(open(tmp_path / 'out' / 'rec_intervals.json'))
    assert res['frames'] == plans[0]['num_frames'] and res['fps'] == pytest.approx(cfg.fps)
    assert res['intervals'] and (tmp_path / 'out' / 'rec_timeline.png').is_file()
    assert (tmp_path / 'out' / 'rec_intervals.csv').read_text().startswith('onset,apex,offset')


def test_spot_tool_names_a_bad_input_in_one_line(tmp_path):
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'tools', 'spot.py'),
         str(tmp_path / 'nope.avi'), '--no-recognition',
         '--out-dir', str(tmp_path / 'out')],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f'error: {tmp_path / "nope.avi"}: OpenCV could not open it']


@pytest.mark.parametrize('name,reader', [('str_casme3_lv', 'read_casme3_part_a'),
                                         ('str_samm_lv', 'read_samm_lv')])
def test_real_layout_configs_load_and_name_a_reader_and_a_recogniser(name, reader):
    """The two real-data configs share their base; each resolves to a data
    reader whose arguments it gives, and a recogniser config that exists."""
    import inspect

    from mmengine.config import Config

    from raicl_mm.datasets import long_videos as lv
    cfg = Config.fromfile(os.path.join(ROOT, 'configs', 'spotting', f'{name}.py'))
    data = dict(cfg.data)
    data.pop('type')
    params = inspect.signature(getattr(lv, reader)).parameters
    assert set(data) <= set(params), (set(data) - set(params))
    assert os.path.isfile(os.path.join(ROOT, cfg.recognizer.config))
    assert cfg.recognizer.face_crop == 'landmarks' and cfg.face.face_crop == 'landmarks'
    assert [s['type'] for s in cfg.spotters] == ['FlowPeakSpotter', 'LearnedFlowSpotter']
    assert cfg.work_dir.endswith(name)
