"""Tests of the embedded synthetic set (raicl_mm.synthetic.generator)."""
import hashlib
import importlib.util
import json
import logging
import os
from pathlib import Path

import cv2
import numpy as np
import openpyxl
import pandas as pd
import pytest

from raicl_mm.datasets.records import FRAME_RE
from raicl_mm.synthetic.generator import (MANIFEST_NAME, SHEET_NAME,
                                         SYNTHETIC_CLASSES, SyntheticConfig,
                                         au_field, generate, plan,
                                         temporal_profile)

REPO = Path(__file__).resolve().parents[1]
SMALL = dict(num_subjects=3, clips_per_subject=6, size=64)
CASME2_COLUMNS = ['Subject', 'Filename', 'Unnamed: 2', 'OnsetFrame', 'ApexFrame',
                  'OffsetFrame', 'Unnamed: 6', 'Action Units', 'Estimated Emotion']


def tree_hash(root: Path) -> str:
    """Hash of every frame and mask file (names and bytes)."""
    h = hashlib.sha256()
    for sub in ('Cropped', 'masks'):
        for path in sorted((root / sub).rglob('*')):
            if path.is_file():
                h.update(str(path.relative_to(root)).encode())
                h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope='module')
def small_set(tmp_path_factory):
    out = tmp_path_factory.mktemp('syn') / 'set'
    manifest = generate(str(out), SyntheticConfig(**SMALL), workers=2)
    return out, manifest


@pytest.fixture(scope='module')
def still_set(tmp_path_factory):
    """No head drift and no sensor noise: only the expression and blinks move."""
    out = tmp_path_factory.mktemp('still') / 'set'
    cfg = SyntheticConfig(**SMALL, head_shift_px=0.0, noise_std=0.0,
                          blink_prob=0.5, seed=3)
    return out, generate(str(out), cfg, workers=1), cfg


def read(path: Path, grey: bool = False) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR)
    assert img is not None, path
    return img


def eye_exclusion(manifest, subject: str, size: int) -> np.ndarray:
    """True around the eyes (where blinks happen)."""
    keep = np.zeros((size, size), np.uint8)
    for x, y, rx, ry in manifest['subjects'][subject]['eyes']:
        cv2.ellipse(keep, (int(round(x)), int(round(y))),
                    (int(np.ceil(rx * 1.5)) + 1, int(np.ceil(ry * 2.5)) + 1),
                    0, 0, 360, 1, -1)
    return keep.astype(bool)


# ---------------------------------------------------------------- parameters
def test_default_config_matches_the_documented_set():
    cfg = SyntheticConfig()
    assert (cfg.num_subjects, cfg.clips_per_subject, cfg.size) == (8, 12, 128)
    assert (cfg.min_len, cfg.max_len) == (9, 40)
    assert cfg.amplitude == (0.6, 1.5) and cfg.seed == 0
    assert cfg.blink_prob == 0.3 and cfg.head_shift_px == 0.5 and cfg.noise_std == 1.0
    faces, clips = plan(cfg)
    assert len(faces) == 8 and len(clips) == 96
    for s in range(8):
        mine = [c['emotion'] for c in clips if c['subject_index'] == s]
        assert sorted(mine) == sorted(['surprise', 'happiness', 'disgust'] * 4)
        assert mine != sorted(mine)  # shuffled, not grouped
    lengths = [c['num_frames'] for c in clips]
    assert min(lengths) >= 9 and max(lengths) <= 40
    assert min(lengths) < 16 < max(lengths)
    rel = [(c['apex'] - c['onset']) / (c['num_frames'] - 1) for c in clips]
    assert min(rel) >= 0.2 and max(rel) <= 0.8 and np.std(rel) > 0.05
    assert all(0.6 <= c['amplitude_px'] <= 1.5 for c in clips)
    assert 0 < sum(bool(c['distractors']['blink']) for c in clips) < 96
    assert all(c['distractors']['head_shift_px'] <= 0.5 + 1e-9 for c in clips)
    assert {c['emotion'] for c in clips if c['distractors']['blink']} == set(SYNTHETIC_CLASSES)


@pytest.mark.parametrize('kwargs, name', [
    (dict(min_len=10, max_len=5), 'max_len'),
    (dict(amplitude=(1.5, 0.6)), 'amplitude'),
    (dict(classes=('surprise', 'anger')), 'classes'),
    (dict(blink_prob=1.5), 'blink_prob'),
    (dict(size=8), 'size'),
    (dict(num_subjects=0), 'num_subjects'),
])
def test_bad_option_is_named(kwargs, name, tmp_path):
    with pytest.raises(ValueError, match=name):
        generate(str(tmp_path / 'x'), SyntheticConfig(**kwargs))
    assert not (tmp_path / 'x').exists()


def test_classes_declare_action_units():
    assert {k: v['action_units'] for k, v in SYNTHETIC_CLASSES.items()} == {
        'surprise': '1+2', 'happiness': '12', 'disgust': '4+9'}


# ------------------------------------------------------------ CASME II layout
def test_sheet_has_the_casme2_header_and_text_subjects(small_set):
    out, manifest = small_set
    sheet = out / SHEET_NAME
    df = pd.read_excel(sheet, header=0)
    assert list(df.columns) == CASME2_COLUMNS
    assert df['Unnamed: 2'].isna().all() and df['Unnamed: 6'].isna().all()
    df_str = pd.read_excel(sheet, header=0, dtype=str)
    assert set(df_str['Subject']) == {'01', '02', '03'}
    assert len(df) == len(manifest['clips']) == 18
    assert set(df['Estimated Emotion']) == set(SYNTHETIC_CLASSES)
    assert all(e == e.lower() for e in df['Estimated Emotion'])
    for _, row in df_str.iterrows():
        assert row['Action Units'] == SYNTHETIC_CLASSES[row['Estimated Emotion']]['action_units']
        assert row['Filename'].startswith('EP')
        assert int(row['OnsetFrame']) < int(row['ApexFrame']) < int(row['OffsetFrame'])
    # The raw cells, as openpyxl sees them: blank header cells, text subjects.
    ws = openpyxl.load_workbook(sheet).worksheets[0]
    header = [c.value for c in ws[1]]
    assert header == ['Subject', 'Filename', None, 'OnsetFrame', 'ApexFrame',
                      'OffsetFrame', None, 'Action Units', 'Estimated Emotion']
    assert all(isinstance(ws.cell(row=r, column=1).value, str)
               for r in range(2, ws.max_row + 1))


def test_frames_follow_the_sheet(small_set):
    out, manifest = small_set
    df = pd.read_excel(out / SHEET_NAME, header=0, dtype=str)
    assert sorted(p.name for p in (out / 'Cropped').iterdir()) == ['sub01', 'sub02', 'sub03']
    for _, row in df.iterrows():
        folder = out / 'Cropped' / f'sub{row["Subject"]}' / row['Filename']
        onset, offset = int(row['OnsetFrame']), int(row['OffsetFrame'])
        numbers = sorted(int(FRAME_RE.search(p.name).group(1)) for p in folder.iterdir())
        assert numbers == list(range(onset, offset + 1))
        assert len(numbers) == offset - onset + 1
        assert all(p.name == f'reg_img{int(FRAME_RE.search(p.name).group(1))}.jpg'
                   for p in folder.iterdir())  # unpadded
        assert onset >= 30  # frame numbers start at an offset, as in CASME II
        assert read(folder / f'reg_img{onset}.jpg').shape == (64, 64, 3)
        mask = read(out / 'masks' / f'sub{row["Subject"]}' / f'{row["Filename"]}.png', True)
        assert mask.shape == (64, 64) and set(np.unique(mask)) == {0, 255}


def test_manifest_records_truth_and_parameters(small_set):
    out, manifest = small_set
    on_disk = json.loads((out / MANIFEST_NAME).read_text())
    assert on_disk == manifest
    assert manifest['seed'] == 0 and manifest['config']['size'] == 64
    for clip in manifest['clips']:
        assert set(clip) >= {'subject', 'filename', 'emotion', 'onset', 'apex', 'offset',
                             'amplitude_px', 'distractors', 'mask'}
        assert not os.path.isabs(clip['mask']) and (out / clip['mask']).is_file()
        assert set(clip['distractors']) == {'blink', 'head_shift_px', 'noise_std'}


def test_lengths_cover_both_sides_of_16(small_set):
    lengths = [c['offset'] - c['onset'] + 1 for c in small_set[1]['clips']]
    assert min(lengths) < 16 < max(lengths)
    assert min(lengths) >= 9 and max(lengths) <= 40


def test_subjects_look_different(small_set):
    out, manifest = small_set
    first = {}
    for clip in manifest['clips']:
        first.setdefault(clip['subject'], read(
            out / clip['frames_dir'] / f'reg_img{clip["onset"]}.jpg').astype(float))
    subjects = sorted(first)
    for i in range(len(subjects)):
        for j in range(i + 1, len(subjects)):
            assert np.abs(first[subjects[i]] - first[subjects[j]]).mean() > 10
    geo = manifest['subjects']
    assert len({round(g['face_axes'][0], 2) for g in geo.values()}) == len(geo)


# ------------------------------------------------------------------- content
def test_motion_is_inside_the_mask_for_each_class(still_set):
    out, manifest, cfg = still_set
    ratios = {k: [] for k in SYNTHETIC_CLASSES}
    for clip in manifest['clips']:
        on = read(out / clip['frames_dir'] / f'reg_img{clip["onset"]}.jpg').astype(float)
        ap = read(out / clip['frames_dir'] / f'reg_img{clip["apex"]}.jpg').astype(float)
        diff = np.abs(ap - on).mean(-1)
        mask = read(out / clip['mask'], True) > 0
        eyes = eye_exclusion(manifest, clip['subject'], cfg.size)
        inside = diff[mask & ~eyes].mean()
        outside = diff[~mask & ~eyes].mean()
        ratios[clip['emotion']].append(inside / max(outside, 1e-3))
    for emotion, r in ratios.items():
        assert r and min(r) > 3.0, (emotion, r)


def test_applied_field_lives_in_the_mask_and_peaks_at_the_amplitude(still_set):
    out, manifest, cfg = still_set
    faces, clips = plan(cfg)
    for clip in clips:
        face = faces[clip['subject_index']]
        fld = au_field(face, clip['emotion'], cfg.size, norm_res=cfg.size * cfg.supersample)
        profile = temporal_profile(clip['num_frames'], clip['apex'] - clip['onset'])
        assert profile.argmax() == clip['apex'] - clip['onset']
        mag_apex = np.sqrt((fld ** 2).sum(-1)) * clip['amplitude_px'] * profile.max()
        assert 0.95 * cfg.amplitude[0] <= mag_apex.max() <= cfg.amplitude[1]
        mask = read(out / clip['mask'], True) > 0
        assert mag_apex[mask].mean() > 10 * mag_apex[~mask].mean()


def test_estimated_flow_follows_the_applied_field(still_set):
    """Flow estimated from the JPEG frames points where the field does."""
    out, manifest, cfg = still_set
    faces, clips = plan(cfg)
    cosines = {k: [] for k in SYNTHETIC_CLASSES}
    for clip in clips:
        if clip['distractors']['blink']:
            continue
        on = read(out / clip['frames_dir'] / f'reg_img{clip["onset"]}.jpg', True)
        ap = read(out / clip['frames_dir'] / f'reg_img{clip["apex"]}.jpg', True)
        flow = cv2.calcOpticalFlowFarneback(on, ap, None, 0.5, 2, 9, 5, 5, 1.1, 0)
        fld = au_field(faces[clip['subject_index']], clip['emotion'], cfg.size,
                       norm_res=cfg.size * cfg.supersample) * clip['amplitude_px']
        mag = np.sqrt((fld ** 2).sum(-1))
        sel = mag > 0.5 * mag.max()
        est, true = flow[sel].ravel(), fld[sel].ravel()
        cosines[clip['emotion']].append(est @ true / np.linalg.norm(est) / np.linalg.norm(true))
    for emotion, c in cosines.items():
        assert c and np.median(c) > 0.6, (emotion, c)


def test_classes_move_different_regions(small_set):
    out, manifest = small_set
    by_subject = {}
    for clip in manifest['clips']:
        by_subject.setdefault(clip['subject'], {})[clip['emotion']] = (
            read(out / clip['mask'], True) > 0)
    for subject, masks in by_subject.items():
        eye_y = manifest['subjects'][subject]['eyes'][0][1]
        nose_y = manifest['subjects'][subject]['nose_tip'][1]
        s, h, d = masks['surprise'], masks['happiness'], masks['disgust']
        assert (s & h).sum() <= 0.05 * min(s.sum(), h.sum())
        assert (s | h).sum() > 0
        iou_dh = (d & h).sum() / (d | h).sum()
        assert iou_dh < 0.1
        assert np.nonzero(s)[0].mean() < eye_y < nose_y < np.nonzero(h)[0].mean()


def test_temporal_profile_rises_and_falls():
    p = temporal_profile(20, 6)
    assert p[0] == 0 and p[-1] == 0 and p[6] == 1
    assert np.all(np.diff(p[:7]) > 0) and np.all(np.diff(p[6:]) < 0)
    with pytest.raises(ValueError, match='apex_index'):
        temporal_profile(5, 5)


def test_blinks_only_change_the_eyes(still_set):
    out, manifest, cfg = still_set
    blinked = [c for c in manifest['clips'] if c['distractors']['blink']]
    assert blinked
    for clip in blinked:
        blink = clip['distractors']['blink']
        mid = (blink['start'] + blink['end']) // 2
        # compare with the frame before the blink, or after it at the start
        ref_n = blink['start'] - 1 if blink['start'] > clip['onset'] else blink['end'] + 1
        if not clip['onset'] <= ref_n <= clip['offset']:
            continue
        a = read(out / clip['frames_dir'] / f'reg_img{mid}.jpg').astype(float)
        b = read(out / clip['frames_dir'] / f'reg_img{ref_n}.jpg').astype(float)
        diff = np.abs(a - b).mean(-1)
        eyes = eye_exclusion(manifest, clip['subject'], cfg.size)
        assert diff[eyes].mean() > 5 * max(diff[~eyes].mean(), 0.2)


# ------------------------------------------------- determinism and the folder
def test_same_seed_same_bytes_other_seed_differs(small_set, tmp_path):
    out, _ = small_set
    again = tmp_path / 'again'
    generate(str(again), SyntheticConfig(**SMALL), workers=1)  # other worker count
    assert tree_hash(again) == tree_hash(out)
    other = tmp_path / 'other'
    generate(str(other), SyntheticConfig(**SMALL, seed=1), workers=1)
    assert tree_hash(other) != tree_hash(out)


def test_rerun_reuses_a_complete_set(tmp_path, caplog):
    out = tmp_path / 'set'
    cfg = SyntheticConfig(num_subjects=1, clips_per_subject=3, size=32, max_len=12)
    first = generate(str(out), cfg, workers=1)
    frame = out / first['clips'][0]['frames_dir'] / f'reg_img{first["clips"][0]["onset"]}.jpg'
    stamp = frame.stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger='raicl_mm.synthetic.generator'):
        second = generate(str(out), cfg, workers=1)
    assert second == first
    assert frame.stat().st_mtime_ns == stamp
    assert 'reused' in caplog.text
    # An incomplete set is regenerated, not reused.
    frame.unlink()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger='raicl_mm.synthetic.generator'):
        generate(str(out), cfg, workers=1)
    assert frame.is_file() and 'reused' not in caplog.text
    # Other parameters in a synthetic folder: regenerated in place, old clips gone.
    third = generate(str(out), SyntheticConfig(num_subjects=1, clips_per_subject=3,
                                               size=32, max_len=12, seed=5), workers=1)
    dirs = {p.relative_to(out).as_posix() for p in (out / 'Cropped').glob('*/*')}
    assert dirs == {c['frames_dir'] for c in third['clips']}


def test_foreign_folder_is_refused_unless_overwrite(tmp_path):
    out = tmp_path / 'mine'
    out.mkdir()
    (out / 'notes.txt').write_text('not a synthetic set')
    cfg = SyntheticConfig(num_subjects=1, clips_per_subject=3, size=32, max_len=12)
    with pytest.raises(FileExistsError, match='mine'):
        generate(str(out), cfg)
    assert sorted(p.name for p in out.iterdir()) == ['notes.txt']
    manifest = generate(str(out), cfg, workers=1, overwrite=True)
    assert len(manifest['clips']) == 3
    assert (out / 'notes.txt').read_text() == 'not a synthetic set'


def test_command_line(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location('make_synthetic',
                                                  REPO / 'tools' / 'make_synthetic.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / 'cli'
    rc = tool.main(['--out', str(out), '--subjects', '2', '--clips-per-subject', '3',
                    '--size', '32', '--seed', '4', '--workers', '1'])
    printed = capsys.readouterr().out
    assert rc == 0
    assert str(out) in printed and 'clips: 6' in printed and 'time:' in printed
    assert json.loads((out / MANIFEST_NAME).read_text())['seed'] == 4
    (tmp_path / 'foreign').mkdir()
    (tmp_path / 'foreign' / 'x').write_text('x')
    assert tool.main(['--out', str(tmp_path / 'foreign'), '--subjects', '1']) == 2
    assert 'foreign' in capsys.readouterr().err


def test_the_casme2_parser_reads_the_set(small_set):
    """Integration: the real CASME II parser takes the set as it is."""
    casme2 = pytest.importorskip('raicl_mm.datasets.sources.casme2')
    out, manifest = small_set
    report = casme2.build_casme2('casme2', {'casme2': str(out / 'Cropped')},
                                 {'casme2': str(out / SHEET_NAME)})
    assert not report.skipped and not report.flagged
    assert len(report.records) == len(manifest['clips'])
    truth = {(c['subject'], c['filename']): c for c in manifest['clips']}
    for rec in report.records:
        clip = truth[(rec.subject, rec.clip_id)]
        assert (rec.label, rec.onset, rec.apex, rec.offset) == (
            clip['emotion'], clip['onset'], clip['apex'], clip['offset'])
        assert rec.frame_numbers == list(range(clip['onset'], clip['offset'] + 1))
