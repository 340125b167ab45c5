"""The synthetic long-video benchmark: ground truth, proportions, layout, reuse."""
import csv
import json

import numpy as np
import pytest

from raicl_mm.datasets.long_videos import read_synthetic_long, summarise
from raicl_mm.synthetic import long_video as LV


def _tiny(**kw):
    return LV.long_preset('tiny', **{**dict(num_subjects=2, duration_s=8.0, size=32), **kw})


def test_plan_truth_rules():
    cfg = LV.long_preset('casme3', num_subjects=3)
    _, plans = LV.plan_all(cfg)
    assert len(plans) == 3
    for p in plans:
        assert p['num_frames'] == int(round(cfg.duration_s * cfg.fps))
        ivs = p['intervals']
        assert sum(iv['type'] == 'micro' for iv in ivs) >= cfg.min_micro
        for iv in ivs:
            n = iv['offset'] - iv['onset'] + 1
            assert iv['onset'] < iv['apex'] < iv['offset']
            if iv['type'] == 'micro':
                assert n / cfg.fps <= 0.5 + 1 / cfg.fps     # MEGC: at most 0.5 s
                assert cfg.micro_amplitude[0] <= iv['amplitude_px'] <= cfg.micro_amplitude[1]
            else:
                assert n / cfg.fps > 0.5
                assert iv['amplitude_px'] >= cfg.macro_amplitude[0] > cfg.micro_amplitude[1]
            assert iv['label'] == LV.CDE_LABEL[iv['emotion']]
        # expressions never overlap each other, nor a talking burst
        spans = sorted([(iv['onset'], iv['offset']) for iv in ivs]
                       + [(t['start'], t['end']) for t in p['talks']])
        assert all(a[1] < b[0] for a, b in zip(spans, spans[1:]))
    # the same seed plans the same videos; another seed others
    assert LV.plan_all(cfg)[1] == plans
    assert LV.plan_all(LV.long_preset('casme3', num_subjects=3, seed=1))[1] != plans


def test_generate_layout_sheet_and_measured_proportions(tmp_path):
    cfg = _tiny()
    man = LV.generate_long_videos(str(tmp_path / 'lv'), cfg)
    root = tmp_path / 'lv'
    rows = list(csv.DictReader(open(root / LV.GT_NAME)))
    assert tuple(rows[0]) == LV.GT_COLUMNS
    n_iv = sum(len(v['intervals']) for v in man['videos'])
    assert len(rows) == n_iv
    meas = man['measured']
    assert meas['micro']['count'] == sum(r['type'] == 'micro' for r in rows)
    assert meas['macro']['count'] == sum(r['type'] == 'macro' for r in rows)
    assert meas['minutes'] == pytest.approx(2 * 8.0 / 60, abs=1e-3)
    assert meas['micro']['duration_s']['max'] <= 0.5 + 1 / cfg.fps
    assert meas['macro']['duration_s']['min'] > meas['micro']['duration_s']['max']
    assert man['stated']['micro_per_min'] == cfg.micro_per_min
    for v in man['videos']:
        frames = sorted((root / v['frames_dir']).glob('*.jpg'))
        assert len(frames) == v['num_frames']
    # the reader gives the same intervals, and frame indices equal frame numbers
    recs = read_synthetic_long(str(root))
    assert [r.key for r in recs] == ['s01/a', 's02/a']
    assert sum(len(r.intervals) for r in recs) == n_iv
    assert recs[0].gt_indices() == recs[0].intervals
    summ = summarise(recs)
    assert summ['micro']['count'] == meas['micro']['count']
    # reused when complete and identical: nothing is rewritten
    first = (root / v['frames_dir'] / '0.jpg').stat().st_mtime_ns
    LV.generate_long_videos(str(root), cfg)
    assert (root / v['frames_dir'] / '0.jpg').stat().st_mtime_ns == first


def test_frames_carry_the_expression(tmp_path):
    """An expression moves its region; the eyelid closes during a blink."""
    cfg = _tiny(num_subjects=1, noise_std=0.0, head_moves_per_min=0.0,
                head_rotation_deg=0.0, talk_per_min=0.0, blinks_per_min=0.0)
    faces, plans = LV.plan_all(cfg)
    p = plans[0]
    frames = np.stack([f.astype(np.float32) for f in LV.render_video(faces[0], p, cfg)])
    iv = p['intervals'][0]
    moved = np.abs(frames[iv['apex']] - frames[iv['onset']]).mean()
    still = np.abs(frames[iv['onset']] - frames[max(0, iv['onset'] - 2)]).mean()
    assert moved > 5 * (still + 1e-3)


def test_refuses_foreign_folder_and_bad_config(tmp_path):
    (tmp_path / 'x.txt').write_text('mine')
    with pytest.raises(FileExistsError):
        LV.generate_long_videos(str(tmp_path), _tiny())
    with pytest.raises(ValueError, match='micro_duration_s'):
        LV.long_preset('tiny', micro_duration_s=(0.2, 0.8))
    with pytest.raises(ValueError, match='preset'):
        LV.long_preset('nope')


def test_video_file_round_trip(tmp_path):
    cfg = _tiny(num_subjects=1, duration_s=6.0)
    faces, plans = LV.plan_all(cfg)
    path = LV.write_video_file(str(tmp_path / 'v.avi'), LV.render_video(faces[0], plans[0], cfg),
                               cfg.fps)
    import cv2
    cap = cv2.VideoCapture(path)
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == plans[0]['num_frames']
