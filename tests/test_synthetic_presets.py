"""Tests of the synthetic benchmark design (raicl_mm.synthetic.presets and
.properties): the presets, the shared primary region, the truth kept."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from raicl_mm.synthetic.generator import (DISTRACTOR_REGIONS, PRIMARY_REGION,
                                         SECONDARY_REGIONS, SHEET_NAME,
                                         SyntheticConfig, clip_field, generate,
                                         motion_mask, plan)
from raicl_mm.synthetic.presets import BENCHMARK, build_config, preset_config
from raicl_mm.synthetic.properties import measure_properties
from test_synthetic import read, tree_hash

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def quick_set(tmp_path_factory):
    out = tmp_path_factory.mktemp('quick') / 'set'
    cfg = preset_config('quick')
    return out, generate(str(out), cfg, workers=1), cfg


def test_demo_preset_is_the_default_demo_set():
    assert preset_config('demo') == SyntheticConfig()
    with pytest.raises(ValueError, match="preset 'nope' unknown"):
        preset_config('nope')
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['amplitud'\]"):
        build_config({'preset': 'quick', 'amplitud': (0.1, 1.0)})
    assert build_config({'preset': 'benchmark', 'seed': 3,
                         'amplitude': [0.2, 0.5], 'out': 'x'}) == replace_cfg(
        preset_config('benchmark'), seed=3, amplitude=(0.2, 0.5))


def replace_cfg(cfg, **kw):
    from dataclasses import replace
    return replace(cfg, **kw)


def test_benchmark_configs_use_the_preset():
    from mmengine.config import Config
    cfg = Config.fromfile(str(REPO / 'configs' / 'benchmark' / 'm6_ours.py'))
    spec = dict(cfg.train_dataloader.dataset.synthetic)
    assert spec.pop('out') == 'data/synthetic_benchmark_v2'
    assert build_config(spec) == preset_config('benchmark')
    shuffled = Config.fromfile(str(REPO / 'configs' / 'benchmark' /
                                   'control_shuffled.py'))
    s = dict(shuffled.train_dataloader.dataset.synthetic)
    assert s.pop('shuffle_labels') == 1 and s.pop('out') != spec.get('out')
    assert build_config(s) == preset_config('benchmark')


def test_benchmark_v2_changes_only_signal_to_noise_settings_of_v1():
    from raicl_mm.synthetic.presets import BENCHMARK_V1
    changed = {k for k in set(BENCHMARK) | set(BENCHMARK_V1)
               if BENCHMARK.get(k) != BENCHMARK_V1.get(k)}
    assert changed == {
        'amplitude', 'amplitude_dist', 'secondary_ratio', 'distractor_prob',
        'distractor_ratio', 'blink_prob', 'head_shift_px', 'head_rotation_deg',
        'illumination_std', 'noise_std', 'texture_contrast',
        'jpeg_quality_range'}
    v2 = preset_config('benchmark')
    assert v2.secondary_ratio[1] < 1.0 and 0.1 <= v2.amplitude[0]
    assert v2.amplitude[1] <= 1.0 and v2.design == 'shared_primary'
    assert min(v2.head_shift_px, v2.noise_std, v2.blink_prob,
               v2.distractor_prob, v2.illumination_std) > 0
    assert preset_config('benchmark_v1').secondary_ratio == (0.35, 0.7)


def test_benchmark_plan_has_cde_size_and_balance():
    faces, clips = plan(preset_config('benchmark'))
    assert len(faces) == 26 and len(clips) >= 300
    n = len(clips)
    share = {e: sum(c['emotion'] == e for c in clips) / n
             for e in ('disgust', 'happiness', 'surprise')}
    assert share['disgust'] == pytest.approx(0.56, abs=0.005)
    assert share['happiness'] == pytest.approx(0.25, abs=0.005)
    assert share['surprise'] == pytest.approx(0.19, abs=0.005)
    amps = [c['amplitude_px'] for c in clips]
    assert 0.1 <= min(amps) and max(amps) <= 1.0
    errors = [c['apex'] - c['true_apex'] for c in clips]
    assert 1.0 < np.mean(np.abs(errors)) < 4.0  # frames: real coders' error
    for c in clips:
        assert c['regions']['primary'] == PRIMARY_REGION
        assert c['regions']['secondary'] == SECONDARY_REGIONS[c['emotion']]
        assert c['regions'].get('distractor', DISTRACTOR_REGIONS[0]) in \
            DISTRACTOR_REGIONS
        assert c['onset'] < c['apex'] <= c['offset']
        lo, hi = BENCHMARK['secondary_ratio']
        assert lo <= c['secondary_px'] / c['amplitude_px'] <= hi
        # v2: the secondary region is weaker than the shared primary.
        assert c['secondary_px'] < c['amplitude_px']


def test_shared_primary_field_is_class_independent_and_truth_is_kept(quick_set):
    out, manifest, cfg = quick_set
    clips = manifest['clips']
    assert {c['emotion'] for c in clips} == set(SECONDARY_REGIONS)
    res = cfg.size * cfg.supersample
    for c in clips:
        for k in ('primary', 'secondary'):
            assert len(c['intensity'][k]) == c['num_frames']
        assert max(c['intensity']['primary']) == 1.0
        assert c['intensity']['primary'][c['true_apex'] - c['onset']] == 1.0
        assert (out / c['mask_primary']).is_file()
        assert (out / c['mask_secondary']).is_file()
        # The applied field at the true apex: the primary at its full
        # amplitude, the secondary weaker, inside its own region.
        fld = clip_field(manifest_face(manifest, c, cfg), c, res,
                         c['true_apex'] - c['onset'])
        assert np.sqrt((fld ** 2).sum(-1)).max() <= \
            c['amplitude_px'] + c['secondary_px'] + c.get('distractor_px', 0) + 1e-5
    # Every class moves the same primary region (same mask for one subject).
    by_subject = {}
    for c in clips:
        m = read(out / c['mask_primary'], grey=True)
        by_subject.setdefault(c['subject'], []).append(m)
    for masks in by_subject.values():
        assert all(np.array_equal(masks[0], m) for m in masks)
    # Secondary regions differ between classes of one subject.
    sub = clips[0]['subject']
    sec = {c['emotion']: read(out / c['mask_secondary'], grey=True)
           for c in clips if c['subject'] == sub}
    names = sorted(sec)
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            assert not np.array_equal(sec[names[i]], sec[names[j]])


def manifest_face(manifest, clip, cfg):
    faces, _ = plan(cfg)
    return faces[int(clip['subject']) - 1]


def test_shuffled_labels_keep_frames_and_truth(quick_set, tmp_path):
    out, manifest, cfg = quick_set
    other = tmp_path / 'shuffled'
    m2 = generate(str(other), replace_cfg(cfg, shuffle_labels=1), workers=1)
    assert tree_hash(other) == tree_hash(out)  # same frames and masks
    assert [c['emotion'] for c in m2['clips']] == \
        [c['emotion'] for c in manifest['clips']]
    sheet = sorted(c['sheet_emotion'] for c in m2['clips'])
    assert sheet == sorted(c['emotion'] for c in manifest['clips'])
    assert any(c['sheet_emotion'] != c['emotion'] for c in m2['clips'])
    df = pd.read_excel(other / SHEET_NAME, dtype={'Subject': str})
    by_name = {(c['subject'], c['filename']): c['sheet_emotion'] for c in m2['clips']}
    for _, row in df.iterrows():
        assert row['Estimated Emotion'] == by_name[(row['Subject'], row['Filename'])]


def test_properties_are_measured_from_the_truth(quick_set):
    out, manifest, cfg = quick_set
    props = measure_properties(str(out))
    assert props['subjects'] == cfg.num_subjects
    assert props['clips'] == len(manifest['clips'])
    assert sum(props['class_fraction'].values()) == pytest.approx(1.0)
    assert 0.1 <= props['primary_px']['min'] <= props['primary_px']['max'] <= 1.0
    for area in props['region_area'].values():
        assert 0 < area['primary'] < 0.5 and 0 < area['secondary'] < 0.5
    assert 0 <= props['secondary_peak_not_at_annotated_apex'] <= 1
    (out / 'bad').mkdir()
    (out / 'bad' / 'manifest.json').write_text('{"clips": []}')
    with pytest.raises(ValueError, match='no "clips" list'):
        measure_properties(str(out / 'bad'))


@pytest.mark.parametrize('kwargs, name', [
    (dict(design='mixed'), 'design'),
    (dict(class_weights=(1.0, 2.0)), 'class_weights'),
    (dict(class_weights=(1.0, -1.0, 1.0)), 'class_weights'),
    (dict(clips_range=(0, 4)), 'clips_range'),
    (dict(amplitude_dist='normal'), 'amplitude_dist'),
    (dict(secondary_lag=(-2.0, 0.0)), 'secondary_lag'),
    (dict(apex_error_std=-0.1), 'apex_error_std'),
    (dict(distractor_prob=1.5), 'distractor_prob'),
    (dict(jpeg_quality_range=(50, 101)), 'jpeg_quality_range'),
])
def test_bad_benchmark_option_is_named(kwargs, name):
    with pytest.raises(ValueError, match=f'SyntheticConfig.{name} '):
        replace_cfg(preset_config('quick'), **kwargs).validate()


def test_benchmark_v3_configs_use_the_preset_and_v2_is_unchanged():
    from mmengine.config import Config

    from raicl_mm.synthetic.presets import BENCHMARK_V3
    cfg = Config.fromfile(str(REPO / 'configs' / 'benchmark_v3' / 'm6_ours.py'))
    spec = dict(cfg.train_dataloader.dataset.synthetic)
    assert spec.pop('out') == 'data/synthetic_benchmark_v3'
    assert build_config(spec) == preset_config('benchmark_v3')
    assert cfg.model.tau == 0.9 and cfg.train_cfg.max_epochs == 16
    # v3 = v2 plus the weak region; only the secondary's strength and timing
    # and the design change.
    changed = {k for k in set(BENCHMARK) | set(BENCHMARK_V3)
               if BENCHMARK.get(k) != BENCHMARK_V3.get(k)}
    assert changed == {'design', 'secondary_ratio', 'secondary_lag',
                       'weak_ratio', 'weak_lag'}
    for name in ('m1_apexstar_cls', 'm2_mir_cls', 'm4_mir_mrd', 'm5_mir_irc',
                 'control_shuffled'):
        other = Config.fromfile(str(REPO / 'configs' / 'benchmark_v3' /
                                    f'{name}.py'))
        s = dict(other.train_dataloader.dataset.synthetic)
        s.pop('out'), s.pop('shuffle_labels', None)
        assert build_config(s) == preset_config('benchmark_v3'), name


def test_strong_weak_design_two_informative_regions_of_different_strength():
    from raicl_mm.synthetic.generator import WEAK_REGIONS
    cfg = preset_config('benchmark_v3')
    faces, clips = plan(cfg)
    assert len(set(WEAK_REGIONS.values()) | set(SECONDARY_REGIONS.values())
               | {PRIMARY_REGION}) == 7
    for c in clips:
        assert c['regions']['primary'] == PRIMARY_REGION
        assert c['regions']['secondary'] == SECONDARY_REGIONS[c['emotion']]
        assert c['regions']['weak'] == WEAK_REGIONS[c['emotion']]
        assert c['weak_px'] <= 0.5 * c['secondary_px'] < c['amplitude_px']
        assert len(c['intensity']['weak']) == c['num_frames']
    # the weak region peaks elsewhere in time than the strong one in most
    # clips, so a clip holds instances of both kinds
    apart = np.mean([c['weak_apex'] != c['secondary_apex'] for c in clips])
    assert apart > 0.7
    with pytest.raises(ValueError, match='weak_ratio'):
        build_config({'preset': 'benchmark_v3', 'weak_ratio': (0.3, 0.6)})
    # the v2 plan is what it was: no weak region drawn
    _, v2 = plan(preset_config('benchmark'))
    assert all('weak' not in c['regions'] for c in v2)


def test_strong_weak_masks_and_fields(tmp_path):
    from raicl_mm.synthetic.generator import WEAK_REGIONS
    cfg = preset_config('quick', design='strong_weak',
                        secondary_ratio=(0.5, 0.7), weak_ratio=(0.3, 0.5),
                        num_subjects=2, clips_per_subject=3)
    manifest = generate(str(tmp_path / 's'), cfg, workers=1)
    assert manifest['design']['weak_regions'] == WEAK_REGIONS
    for c in manifest['clips']:
        assert (tmp_path / 's' / c['mask_weak']).is_file()
        weak = motion_mask(manifest_face(manifest, c, cfg), c['regions']['weak'],
                           cfg.size, cfg.mask_threshold, cfg.supersample) > 0
        prim = motion_mask(manifest_face(manifest, c, cfg), PRIMARY_REGION,
                           cfg.size, cfg.mask_threshold, cfg.supersample) > 0
        assert weak.any() and (weak & prim).mean() < 0.5 * weak.mean()
