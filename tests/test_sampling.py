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
