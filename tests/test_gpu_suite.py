"""The GPU suite (benchmarks/gpu/, docs/gpu.md) on CPU, so that it cannot rot
before a GPU is at hand: the whole ``run.sh --tiny --device cpu`` (every
section, each JSON with its fields), and the arithmetic and parsing it uses.
No timing is asserted."""
import json
import math
from pathlib import Path
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO

sys.path.insert(0, str(REPO))

from benchmarks.gpu import _common as gc  # noqa: E402
from benchmarks.gpu import summarize  # noqa: E402

SECTIONS = ('smoke', 'tvl1', 'train', 'protocol', 'evidence')
SMOKE_CHECKS = ('build', 'train_step', 'loss_terms', 'ema_hook', 'predict',
                'amp_bf16', 'checkpoint', 'tvl1_torch')
#: The failure the H200 run of 2026-12-04 found (augment.py wrote a bf16 blur
#: into a float32 tensor under autocast); fixed, never tolerated again.
AMP_BUG = 'Index put requires the source and destination dtypes match'


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and \
        math.isfinite(v)


# ------------------------------------------------------------ the whole run
@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('gpu_suite')
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1',
               RAICL_GPU_NO_WHEELS='1')
    res = subprocess.run(['bash', 'benchmarks/gpu/run.sh', str(out),
                          '--tiny', '--device', 'cpu'], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=500)
    with open(out / 'summary.json') as f:
        summary = json.load(f)
    data = {}
    for name in SECTIONS:
        with open(out / f'{name}.json') as f:
            data[name] = json.load(f)
    return dict(rc=res.returncode, out=out, summary=summary, data=data,
                log=res.stdout[-4000:] + res.stderr[-4000:])


def _amp_bug(smoke):
    c = smoke['checks'].get('amp_bf16', {})
    return c.get('ok') is False and AMP_BUG in (c.get('error') or '')


def test_every_section_wrote_its_json(tiny_run):
    s = tiny_run['summary']
    assert set(s['sections']) == set(SECTIONS)
    for name in SECTIONS:
        d = tiny_run['data'][name]
        assert d['section'] == name
        assert d['status'] in ('pass', 'fail', 'skipped'), (name, d)
        # a skip always says why
        if d['status'] == 'skipped':
            assert d.get('reason'), d
    for name in ('smoke', 'tvl1', 'train', 'protocol'):
        d = tiny_run['data'][name]
        assert d['tiny'] is True
        assert d['device']['torch_device'] == 'cpu'
        assert 'gpu' in d['device'] and 'nvidia_smi' in d['device']
        for check, rec in d['checks'].items():
            assert rec.get('ok') in (True, False) or rec.get('skipped'), \
                (name, check, rec)
            if rec.get('ok') is False:
                assert rec.get('error'), (name, check)


def test_sections_pass(tiny_run):
    s = tiny_run['summary']
    bad = {k: v for k, v in s['sections'].items()
           if v['status'] not in ('pass', 'skipped')}
    assert not bad, (bad, tiny_run['log'])
    assert tiny_run['rc'] == 0, tiny_run['log']


def test_smoke_fields(tiny_run):
    d = tiny_run['data']['smoke']
    assert set(SMOKE_CHECKS) <= set(d['checks'])
    for name in SMOKE_CHECKS:
        assert d['checks'][name]['ok'] is True, (name, d['checks'][name])
    assert d['checks']['ema_hook']['max_abs_err'] < 1e-5
    assert d['checks']['checkpoint']['max_score_diff'] == 0.0


def test_tvl1_fields(tiny_run):
    d = tiny_run['data']['tvl1']
    f = d['figures']['32']
    for bs in (1, 4):
        row = f[f'batch_{bs}']
        assert _num(row['pairs_per_s']) and row['pairs'] == bs
        assert set(row['speedup']) == {
            'vs_one_opencv_process_one_thread',
            'vs_one_opencv_process_one_thread_cpu_time',
            'vs_one_opencv_process_default_threads'}
    assert f['cpu_vs_device']['mean_epe_px'] == 0.0  # cpu vs cpu
    assert _num(f['batch_invariance']['max_epe_px'])
    b = d['baseline']
    assert b['measured_on'].startswith('the CPU machine, not the device')
    assert b['date'] and b['sizes']['32']['frames_match'] is True


def test_train_fields(tiny_run):
    d = tiny_run['data']['train']
    row = d['figures']['fp32_workers2']
    assert _num(row['runner_pairs_per_s'])
    assert _num(row['bare_loop_pairs_per_s'])
    assert row['num_workers'] == 2
    run = d['runs']['fp32_workers2']
    assert run['input']['num_workers'] == 2 and run['input']['amp'] == 'none'
    for name in ('fp32', 'bf16', 'bf16_workers2'):
        assert d['checks'][name]['skipped']


def test_protocol_fields(tiny_run):
    d = tiny_run['data']['protocol']
    fl = d['figures']['flow']
    assert fl['complete'] is True and fl['cde_flow_s_is'] == 'measured'
    r = d['figures']['rounds']['k2']
    assert r['concurrent'] == 2 and len(r['measured_fold_wall_s']) == 2
    assert _num(r['projected_protocol_s'])
    assert set(r['projection_parts']) >= {'fixed_s', 'period_s',
                                          'checkpoint_s'}
    assert 'why' in r['gpu_util'] or r['gpu_util']['samples'] > 0
    for k in (1, 4, 8):
        assert f'folds_k{k}' not in d['checks']  # tiny: one round of 2
    assert d['goal']['what'].startswith('CDE protocol')


def test_evidence_section_recorded(tiny_run):
    d = tiny_run['data']['evidence']
    assert d['status'] == 'pass', tiny_run['log']
    assert 'rc' in d and isinstance(d['files'], list)
    # the grid itself: paired rows with the teacher scored, the seed-level
    # table, and the summary naming what ran
    ev = Path(tiny_run['out']) / 'evidence'
    res = json.loads((ev / 'ablation_v3_paper.json').read_text())
    got = sorted((r['method'], r['seed']) for r in res['runs'])
    assert got == [('M2', 0), ('M2', 1), ('M6', 0), ('M6', 1)]
    assert all(r['target_uf1'] is not None and len(r['folds']) == 2
               for r in res['runs'])
    assert 'Seed-level paired comparisons' in (
        ev / 'ablation_v3_paper.md').read_text()
    summary = json.loads((ev / 'evidence.json').read_text())
    assert summary['grids']['v3:paper']['missing'] == []


# ------------------------------------------------------------- fast units
def test_project_fold_and_protocol():
    assert gc.project_fold_s(10.0, 0.05, 1300) == pytest.approx(75.0)
    # 4 folds of 10 s, 2 at a time: 20 s + flow
    assert gc.project_protocol_s([10.0] * 4, 2, flow_s=5.0) == 25.0
    # greedy longest first: 7 | 5 + 3 -> 8
    assert gc.project_protocol_s([3.0, 5.0, 7.0], 2) == 8.0
    assert gc.project_protocol_s([3.0, 5.0], 8) == 5.0
    with pytest.raises(ValueError):
        gc.project_protocol_s([1.0], 0)


def test_cde_steps_per_epoch():
    steps = gc.cde_steps_per_epoch(32, True)
    assert len(steps) == 68
    assert all(12 <= s <= 13 for s in steps)  # floor((442 - n_k) / 32)


def test_fold_projection():
    from benchmarks.gpu.protocol import fold_projection
    r = dict(epochs=2, steps=26, period_s=0.1, wall_s=20.0,
             epoch_boundary_extra_s=0.5, checkpoint_s=0.2)
    folds, parts = fold_projection([r, dict(r)], [13, 12], epochs=100,
                                   ckpt_interval=5)
    fixed = 20.0 - 26 * 0.1 - 0.5
    assert parts['fixed_s'] == pytest.approx(fixed)
    assert folds[0] == pytest.approx(fixed + 1300 * 0.1 + 99 * 0.5 + 20 * 0.2)
    assert folds[1] == pytest.approx(fixed + 1200 * 0.1 + 99 * 0.5 + 20 * 0.2)


def test_seed_for_total_gives_cde_size():
    from benchmarks.gpu.protocol import seed_for_total
    from raicl_mm.synthetic.generator import (SyntheticConfig,
                                              _clips_per_subject)
    seed = seed_for_total(68, 4, 9, 442)
    cfg = SyntheticConfig(num_subjects=68, clips_range=(4, 9), seed=seed)
    assert int(_clips_per_subject(cfg).sum()) == 442


def test_nvidia_smi_parsing():
    row = gc.parse_smi_row('NVIDIA H200, 87, 40960, 143771, 312.5, [N/A]')
    assert row['name'] == 'NVIDIA H200' and row['utilization.gpu'] == 87.0
    assert row['memory.used'] == 40960.0 and row['temperature.gpu'] == '[N/A]'
    s = gc.summarise_util([row, dict(row, **{'utilization.gpu': 13.0})])
    assert s == dict(samples=2, util_mean_pct=50.0, util_max_pct=87.0,
                     mem_used_max_mib=40960.0)
    assert gc.summarise_util([], 'nvidia-smi not on PATH') == dict(
        samples=0, why='nvidia-smi not on PATH')


def test_summarize_statuses(tmp_path):
    (tmp_path / 'logs').mkdir()
    (tmp_path / 'logs' / 'c.log').write_text('Traceback ... boom\n')
    (tmp_path / 'a.json').write_text(json.dumps(dict(
        section='a', status='pass', checks={'x': dict(ok=True)})))
    (tmp_path / 'b.json').write_text(json.dumps(dict(
        section='b', status='running', checks={'y': dict(ok=True)},
        figures={'f': 1})))
    rows = summarize.parse_tsv('a\t0\t1.5\t30\t\nb\t124\t30.2\t30\t\n'
                               'c\t1\t0.3\t30\t\n'
                               'evidence\t\t\t\tskipped: why\n')
    assert rows[0] == dict(name='a', rc=0, seconds=1.5, limit_s=30.0,
                           note=None)
    s = summarize.summarize(str(tmp_path), rows, {})
    st = {k: v['status'] for k, v in s['sections'].items()}
    assert st == dict(a='pass', b='timeout', c='crashed', evidence='skipped')
    assert s['failed'] == ['b', 'c'] and s['ok'] is False
    b = json.loads((tmp_path / 'b.json').read_text())
    assert b['status'] == 'timeout' and b['figures'] == {'f': 1}
    c = json.loads((tmp_path / 'c.json').read_text())
    assert c['status'] == 'crashed' and 'boom' in c['log_tail']
    e = json.loads((tmp_path / 'evidence.json').read_text())
    assert e == dict(section='evidence', status='skipped',
                     reason='skipped: why')


def test_section_records_failures_and_goes_on(tmp_path):
    import argparse
    args = argparse.Namespace(out=str(tmp_path / 's.json'), tiny=True,
                              device='cpu', budget_s=10.0)

    def body(sec, device):
        sec.check('good', lambda: dict(value=1))
        sec.check('bad', lambda: 1 / 0)
        sec.skip('later', 'not measured: reason')
    assert gc.run_section('s', args, body) == 1
    d = json.loads((tmp_path / 's.json').read_text())
    assert d['status'] == 'fail'
    assert d['checks']['good'] == dict(ok=True, error=None, value=1,
                                       seconds=d['checks']['good']['seconds'])
    assert d['checks']['bad']['error'].startswith('ZeroDivisionError')
    assert d['checks']['later'] == dict(ok=None,
                                        skipped='not measured: reason')


def test_scipy_stub_t_ppf_matches_scipy():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'stub_stats', REPO / 'benchmarks' / 'gpu' / 'stubs' / 'scipy' /
        'stats.py')
    stub = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stub)
    from scipy import stats
    for df in (1, 2, 4, 9, 30):
        for q in (0.025, 0.6, 0.975, 0.995):
            assert stub.t.ppf(q, df) == pytest.approx(stats.t.ppf(q, df),
                                                      abs=1e-9)
    a = np.array([[1, 2, 2, 3], [4, 4, 5, 5]])
    m = stub.mode(a, axis=1)
    assert m.mode.tolist() == [2, 4] and m.count.tolist() == [2, 2]


def test_frames_match_the_committed_baseline():
    from benchmarks.gpu.frames import pairs_and_hash
    from benchmarks.gpu.tvl1 import baseline_rates, load_baseline, speedups
    base = load_baseline()
    assert 'error' not in base, base
    assert base['measured_on'].startswith('the CPU machine')
    for size in ('32', '112', '224'):
        b = baseline_rates(base, size)
        assert b and _num(b['one_thread_pairs_per_s'])
        if size == '32':
            _, _, digest = pairs_and_hash(b['pairs'], 32)
            assert digest == b['frames_sha256']
    sp = speedups(100.0, baseline_rates(base, '112'))
    assert sp['vs_one_opencv_process_one_thread'] > 0


def test_wheels_pin_the_stack_tested_here():
    """The wheels that travel are the OpenMMLab versions this environment
    (tools/setup_venv.sh) tests with."""
    import importlib
    text = (REPO / 'benchmarks' / 'gpu' / 'fetch_wheels.sh').read_text()
    for name, module in (('mmengine', 'mmengine'), ('mmcv-lite', 'mmcv'),
                         ('mmaction2', 'mmaction'),
                         ('mmpretrain', 'mmpretrain')):
        pin = re.search(rf'{name}==([\d.]+)', text).group(1)
        assert importlib.import_module(module).__version__ == pin, name
    assert '/.whl/' in (REPO / '.gitignore').read_text().split()
