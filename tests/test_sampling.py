"""MIR sampling strategies (paper Table 3, appendix A.1.2 / A.2.1)."""
import warnings

import numpy as np
import pytest

from raicl_mm.datasets.sampling import (STRATEGIES, middle_position,
                                        sample_positions)

NS = (4, 8, 16, 20, 32)


def _consecutive(pos):
    return pos == list(range(pos[0], pos[0] + len(pos)))


@pytest.mark.parametrize('n', NS)
def test_middle_window_is_centred_and_consecutive(n):
    t = 60  # 59 usable frames > every N
    pos = sample_positions(t, 'middle', n)
    assert len(pos) == n and _consecutive(pos)
    # Centre of the window within half a frame of the clip centre (T-1)/2.
    assert abs(np.mean(pos) - (t - 1) / 2) <= 0.5


def test_middle_exact_indices():
    assert sample_positions(40, 'middle', 16) == list(range(12, 28))
    assert sample_positions(40, 'middle', 4) == [18, 19, 20, 21]
    # Odd N on an odd centre: symmetric.
    assert sample_positions(41, 'middle', 5) == [18, 19, 20, 21, 22]


def test_middle_shrinks_inward_and_grows_outward():
    t = 80
    windows = [set(sample_positions(t, 'middle', n)) for n in NS]
    for small, large in zip(windows, windows[1:]):
        assert small < large  # each window nests inside the next


@pytest.mark.parametrize('n', NS)
@pytest.mark.parametrize('strategy', ['middle', 'random', 'uniform',
                                      'apex_window'])
def test_short_clip_is_fully_sampled(n, strategy):
    for t in (2, 3, n, n + 1):
        pos = sample_positions(t, strategy, n, apex_pos=t // 2,
                               rng=np.random.default_rng(0))
        assert pos == list(range(1, t)), (t, n, strategy)


def test_middle_one_more_than_needed():
    # T-1 = N+1 usable frames: a window of N, never the onset.
    pos = sample_positions(18, 'middle', 16)
    assert len(pos) == 16 and pos[0] >= 1 and pos[-1] <= 17


@pytest.mark.parametrize('strategy', STRATEGIES)
@pytest.mark.parametrize('n', NS)
def test_every_strategy_sorted_unique_in_range(strategy, n):
    rng = np.random.default_rng(1)
    for t in (2, 3, 5, 9, 17, 33, 64, 150):
        for apex in {0, 1, t // 3, t - 1}:
            pos = sample_positions(t, strategy, n, apex_pos=apex, rng=rng)
            assert pos, (strategy, t, n)
            assert pos == sorted(set(pos))
            assert 1 <= pos[0] and pos[-1] <= t - 1
            assert len(pos) <= max(n, 1) or strategy == 'full'


def test_apex_single():
    assert sample_positions(30, 'apex_single', 16, apex_pos=11) == [11]
    # An apex annotated on the onset gives the first usable frame.
    assert sample_positions(30, 'apex_single', 16, apex_pos=0) == [1]


@pytest.mark.parametrize('n', NS)
def test_apex_window_centred_and_shifted_inside(n):
    t = 100
    pos = sample_positions(t, 'apex_window', n, apex_pos=50)
    assert len(pos) == n and _consecutive(pos) and 50 in pos
    assert abs(np.mean(pos) - 50) <= 0.5
    near_end = sample_positions(t, 'apex_window', n, apex_pos=98)
    assert near_end == list(range(t - n, t))
    near_start = sample_positions(t, 'apex_window', n, apex_pos=2)
    assert near_start == list(range(1, n + 1))


def test_full():
    assert sample_positions(7, 'full', 2) == [1, 2, 3, 4, 5, 6]
    assert sample_positions(2, 'full') == [1]


@pytest.mark.parametrize('n', NS)
def test_uniform_spans_the_clip(n):
    t = 101
    pos = sample_positions(t, 'uniform', n)
    assert len(pos) == n
    assert pos[0] == 1 and pos[-1] == t - 1
    gaps = np.diff(pos)
    assert gaps.max() - gaps.min() <= 1  # evenly spread up to rounding


def test_uniform_exact():
    assert sample_positions(41, 'uniform', 5) == [1, 11, 20, 30, 40]


@pytest.mark.parametrize('n', NS)
def test_random_reproducible_with_seeded_rng(n):
    t = 120
    a = sample_positions(t, 'random', n, rng=np.random.default_rng(7))
    b = sample_positions(t, 'random', n, rng=np.random.default_rng(7))
    c = sample_positions(t, 'random', n, rng=np.random.default_rng(8))
    assert a == b and len(a) == n
    assert a != c


def test_random_covers_the_whole_clip():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        seen.update(sample_positions(20, 'random', 4, rng=rng))
    assert seen == set(range(1, 20))


def test_activation_and_decay_phases():
    t, apex = 40, 10
    assert sample_positions(t, 'activation', 16, apex_pos=apex) == list(
        range(1, 11))
    dec = sample_positions(t, 'decay', 16, apex_pos=apex)
    assert len(dec) == 16 and dec[0] == apex and dec[-1] == t - 1
    act = sample_positions(t, 'activation', 4, apex_pos=30)
    assert act == [1, 11, 20, 30]
    assert sample_positions(t, 'decay', 32, apex_pos=35) == [35, 36, 37, 38,
                                                             39]


@pytest.mark.parametrize('strategy', ['apex_single', 'apex_window',
                                      'activation', 'decay'])
def test_missing_apex_falls_back_to_centre_with_warning(strategy):
    t = 41
    with pytest.warns(UserWarning, match='apex'):
        got = sample_positions(t, strategy, 8, apex_pos=None)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        want = sample_positions(t, strategy, 8, apex_pos=(t - 1) // 2)
    assert got == want


def test_middle_does_not_warn_without_apex():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        sample_positions(41, 'middle', 8, apex_pos=None)


def test_apex_jitter_reproducible_and_clipped():
    t, apex = 40, 20
    draws = [sample_positions(t, 'apex_single', apex_pos=apex,
                              apex_jitter_std=3.0,
                              rng=np.random.default_rng(s))[0]
             for s in range(400)]
    again = [sample_positions(t, 'apex_single', apex_pos=apex,
                              apex_jitter_std=3.0,
                              rng=np.random.default_rng(s))[0]
             for s in range(400)]
    assert draws == again
    assert abs(np.mean(draws) - apex) < 0.6
    assert 2.4 < np.std(draws) < 3.6
    # A large std near the end stays inside [1, T-1] and hits both bounds.
    rng = np.random.default_rng(0)
    wide = [sample_positions(t, 'apex_single', apex_pos=38,
                             apex_jitter_std=50.0, rng=rng)[0]
            for _ in range(300)]
    assert min(wide) == 1 and max(wide) == t - 1
    # No jitter: exactly the apex.
    assert sample_positions(t, 'apex_single', apex_pos=apex,
                            apex_jitter_std=0.0) == [apex]


def test_jitter_moves_the_apex_window():
    pos = sample_positions(100, 'apex_window', 8, apex_pos=50,
                           apex_jitter_std=10.0,
                           rng=np.random.default_rng(3))
    shifted = sample_positions(100, 'apex_window', 8, apex_pos=50)
    assert pos != shifted and len(pos) == 8 and _consecutive(pos)


def test_errors_are_clear():
    with pytest.raises(ValueError, match='middle'):
        sample_positions(10, 'median')
    with pytest.raises(ValueError, match='at least 2 frames'):
        sample_positions(1, 'middle')
    with pytest.raises(ValueError, match='num_instances'):
        sample_positions(10, 'middle', 0)
    with pytest.raises(ValueError, match='outside the clip'):
        sample_positions(10, 'apex_single', apex_pos=10)
    with pytest.raises(ValueError, match='apex_jitter_std'):
        sample_positions(10, 'apex_single', apex_pos=3, apex_jitter_std=-1)


def test_middle_position():
    assert middle_position([3, 4, 5, 6]) == 5
    assert middle_position([9, 1, 5]) == 5
    assert middle_position([7]) == 7
    assert middle_position(sample_positions(40, 'middle', 16)) == 20
    with pytest.raises(ValueError):
        middle_position([])


# ---------------------------------------------------------------- apex source, spotter, fps
from raicl_mm.datasets.records import ClipRecord  # noqa: E402
from raicl_mm.datasets.sampling import (SamplingConfig, apex_report, clip_positions,  # noqa: E402
                                        resample_indices, spot_apex)


def _clip(num, apex=None, fps=200.0, start=100, meta=None):
    return ClipRecord(dataset='casme2', subject='01', clip_id=f'c{num}_{apex}',
                      label='negative', onset=start, apex=apex, offset=start + num - 1,
                      frame_paths=[f'f{i}.jpg' for i in range(num)],
                      frame_numbers=list(range(start, start + num)), fps=fps,
                      meta=dict(meta or {}))


def test_spot_apex_finds_the_peak_despite_a_spike_and_the_edges():
    t = np.arange(41)
    curve = np.exp(-0.5 * ((t - 27) / 5.0) ** 2)
    curve[0] = 0.0
    spiky = curve.copy()
    spiky[8] = 3.0          # a one-frame spike (a blink frame): smoothed away
    spiky[40] = 5.0         # motion at the offset: outside the margin
    assert spot_apex(curve, sigma=0, margin=0) == 27
    assert spot_apex(spiky, sigma=0.05, margin=0.1) == 27
    assert spot_apex(spiky, sigma=0, margin=0) == 40
    assert spot_apex([0.0, 1.0]) == 1
    with pytest.raises(ValueError, match='at least 2 frames'):
        spot_apex([1.0])
    with pytest.raises(ValueError, match='position 2 is nan'):
        spot_apex([0, 1, float('nan')])


def test_apex_source_annotation_spotted_and_or():
    motion = lambda rec: np.exp(-0.5 * ((np.arange(rec.num_frames) - 30) / 3.0) ** 2)
    annotated = _clip(41, apex=110)
    gap = _clip(41, apex=None)
    single = dict(strategy='apex_single')
    assert clip_positions(annotated, SamplingConfig(**single)) == [10]
    spotted = SamplingConfig(apex_source='spotted', **single)
    assert clip_positions(annotated, spotted, motion) == [30]
    either = SamplingConfig(apex_source='annotation_or_spotted', **single)
    assert clip_positions(annotated, either, motion) == [10]
    assert clip_positions(gap, either, motion) == [30]
    # a spotted frame number written by whoever has the flows wins over motion_fn
    assert clip_positions(_clip(41, meta=dict(apex_spotted=125)), spotted) == [25]
    with pytest.raises(ValueError, match=r"casme2/01/c41_None: .*needs the spotter.*motion_fn"):
        clip_positions(gap, spotted)
    with pytest.raises(ValueError, match='motion curve has 3 values for 41 frames'):
        clip_positions(gap, spotted, lambda rec: [0, 1, 0])
    # no apex-based strategy: the spotter is never asked
    assert clip_positions(gap, SamplingConfig(strategy='middle', num_instances=4,
                                              apex_source='spotted')) == [19, 20, 21, 22]


def test_missing_apex_is_warned_counted_or_refused():
    gap, ok = _clip(21, apex=None), _clip(21, apex=105)
    cfg = SamplingConfig(strategy='apex_single')
    with pytest.warns(UserWarning, match=r'casme2/01/c21_None: no apex .*clip centre'):
        assert clip_positions(gap, cfg) == [10]
    report = apex_report([gap, ok], cfg)
    assert report['counts'] == dict(annotation=1, spotted=0, to_spot=0, centre_fallback=1)
    assert report['centre_fallback'] == ['casme2/01/c21_None']
    with pytest.raises(ValueError, match=r"c21_None: .*needs an apex.*annotation_or_spotted"):
        clip_positions(gap, SamplingConfig(strategy='apex_single', missing_apex='error'))
    either = apex_report([gap, ok], SamplingConfig(strategy='decay',
                                                   apex_source='annotation_or_spotted'))
    assert either['counts'] == dict(annotation=1, spotted=0, to_spot=1, centre_fallback=0)
    assert apex_report([gap], SamplingConfig()) == dict(strategy='middle',
                                                         apex_source='annotation',
                                                         uses_apex=False)


def test_resample_indices_uniform_frame_sampling():
    # 200 -> 100 fps: every other frame
    assert resample_indices(list(range(100, 121)), 200, 100) == list(range(0, 21, 2))
    # frames missing on disk: the nearest existing frame in time, never invented
    assert resample_indices([0, 1, 2, 5, 6], 200, 100) == [0, 2, 3, 4]
    # 30 -> 100 fps: frames repeat
    up = resample_indices([0, 1, 2], 30, 100)
    assert up[0] == 0 and up[-1] == 2 and len(up) == 7 and up == sorted(up)
    assert resample_indices([0, 1], 500, 100) == [0, 1]  # at least 2 instants
    with pytest.raises(ValueError, match='frame rate'):
        resample_indices([0, 1], 0, 100)


def test_target_fps_chooses_real_frames_at_the_target_rate():
    rec = _clip(101, apex=150, fps=500.0)   # 0.2 s at 500 fps
    cfg = SamplingConfig(strategy='full', target_fps=100.0)
    assert clip_positions(rec, cfg) == list(range(5, 101, 5))  # 20 instants after onset
    window = clip_positions(rec, SamplingConfig(strategy='apex_window', num_instances=4,
                                                target_fps=100.0))
    assert window == [45, 50, 55, 60]           # consecutive at 100 fps, around the apex
    same = clip_positions(rec, SamplingConfig(strategy='middle', num_instances=4))
    assert same == [49, 50, 51, 52]             # without target_fps: native frames
    with pytest.raises(ValueError, match='target_fps must be a positive'):
        SamplingConfig(target_fps=0)


def test_key_dict_keeps_old_keys_and_records_new_settings():
    old = SamplingConfig().key_dict()
    assert set(old) == {'strategy', 'num_instances', 'apex_jitter_std', 'seed'}
    assert SamplingConfig(target_fps=100.0).key_dict()['target_fps'] == 100.0
    spotted = SamplingConfig(apex_source='spotted').key_dict()
    assert spotted['apex_source'] == 'spotted' and 'spot_sigma' in spotted
    for bad, match in ((dict(apex_source='sheet'), 'apex_source'),
                       (dict(missing_apex='skip'), 'missing_apex'),
                       (dict(spot_margin=0.5), 'spot_margin'),
                       (dict(spot_sigma=-1), 'spot_sigma')):
        with pytest.raises(ValueError, match=match):
            SamplingConfig(**bad)


@pytest.mark.slow
def test_spotter_beats_the_clip_centre_on_generated_clips(tmp_path):
    """The spotter on clips of raicl_mm.synthetic against the generator's true apex."""
    import json
    from raicl_mm.datasets.sampling import onset_motion
    from raicl_mm.datasets.sources import build_records
    from raicl_mm.flow import FlowConfig
    from raicl_mm.synthetic.generator import generate
    from raicl_mm.synthetic.presets import preset_config
    out = tmp_path / 'syn'
    # the demo design (one moving region per class, blinks and head drift as
    # distractors), apex anywhere in 10-90 % of the clip so the centre is no answer
    generate(str(out), preset_config('demo', num_subjects=2, clips_per_subject=5, size=64,
                                     apex_range=(0.1, 0.9), seed=3), workers=1)
    truth = {f"casme2/{c['subject']}/{c['filename']}": c.get('true_apex', c['apex'])
             for c in json.loads((out / 'manifest.json').read_text())['clips']}
    report = build_records('casme2_3cls', dict(casme2=str(out / 'Cropped')),
                           dict(casme2=str(out / 'CASME2-coding-synthetic.xlsx')))
    cfg = SamplingConfig(strategy='apex_single', apex_source='spotted')
    spot_err, centre_err = [], []
    for rec in report.records:
        pos = clip_positions(rec, cfg, lambda r: onset_motion(r, FlowConfig(
            method='farneback', size=(64, 64))))[0]
        spot_err.append(abs(rec.frame_numbers[pos] - truth[rec.sample_id]))
        centre_err.append(abs(rec.frame_numbers[(rec.num_frames - 1) // 2]
                              - truth[rec.sample_id]))
    assert len(spot_err) == 10
    assert np.mean(spot_err) < np.mean(centre_err), (spot_err, centre_err)
