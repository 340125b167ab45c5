"""benchmarks/*.py --quick: each prints one well-formed JSON object.

Behaviour only: the keys, the types, numbers where numbers belong. No
timing is asserted (the figures depend on the machine and its load).
"""
import json
import math
import os
import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow

KEYS = ('what', 'input', 'device', 'figures', 'baseline', 'ratio', 'goal',
        'date')


def _run(script, *args, timeout=300):
    env = dict(os.environ)  # OMP_NUM_THREADS: conftest.THREADS
    res = subprocess.run(
        [sys.executable, str(REPO / 'benchmarks' / script), '--quick',
         *args], capture_output=True, text=True, timeout=timeout,
        cwd=REPO, env=env)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, f'expected one JSON line, got: {res.stdout[:2000]}'
    obj = json.loads(lines[0])
    assert isinstance(obj, dict)
    return obj


def _is_number(v):
    return (isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v))


def _check_common(obj, figure_keys, baseline_keys):
    for key in KEYS:
        assert key in obj, f'missing {key}'
    assert isinstance(obj['what'], str) and obj['what']
    assert isinstance(obj['goal'], str) and obj['goal']
    assert isinstance(obj['date'], str) and obj['date'][:2] == '20'
    assert isinstance(obj['input'], dict) and obj['input']['quick'] is True
    dev = obj['device']
    for key in ('cpu_model', 'cpu_count', 'usable_cores', 'load_avg', 'gpu'):
        assert key in dev, f'device lacks {key}'
    assert len(dev['load_avg']) == 3 and all(map(_is_number,
                                                 dev['load_avg']))
    assert _is_number(obj['ratio']) and obj['ratio'] > 0
    for section, keys in (('figures', figure_keys),
                          ('baseline', baseline_keys)):
        values = obj[section]
        assert isinstance(values, dict) and values
        for key, value in values.items():
            assert _is_number(value), f'{section}.{key} = {value!r}'
        for key in keys:
            assert key in values, f'{section} lacks {key}'


def test_bench_flow_quick():
    obj = _run('bench_flow.py')
    _check_common(obj, ('extract_all_pairs_per_s',
                        'extract_all_cold_pairs_per_s',
                        'farneback_1proc_pairs_per_s'),
                  ('tvl1_1proc_pairs_per_s',))
    assert obj['input']['pairs'] == 16  # 2 clips x 8 frames after the onset
    assert obj['input']['max_abs_diff_cache_vs_baseline'] < 0.01


def test_bench_train_quick():
    obj = _run('bench_train.py')
    _check_common(obj, ('runner_pairs_per_s', 'runner_s_per_iter',
                        'dataloader_and_preprocessor_alone_s'),
                  ('bare_loop_pairs_per_s',))
    assert obj['input']['timed_iters'] == 2
    assert obj['device']['torch_device'] in ('cpu', 'cuda')


def test_bench_protocol_quick():
    obj = _run('bench_protocol.py')
    _check_common(obj, ('measured_wall_s', 'measured_fold_s_mean',
                        'measured_steps_per_fold',
                        'cde_train_s_split_paper_epochs',
                        'cde_total_h_split_paper_epochs'),
                  ('measured_wall_s',))
    assert obj['input']['cde_folds'] == 68
    assert obj['input']['cde_pairs'] == 442 * 16
