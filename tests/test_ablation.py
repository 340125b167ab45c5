"""Tests of the ablation runner (raicl_mm.protocol.ablation) and tools/ablation.py."""
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from raicl_mm.protocol.ablation import (AblationError, Method, epoch_loss_means,
                                        load_results, markdown_table,
                                        paired_bootstrap, read_predictions,
                                        run_ablation, scores, subject_folds)
from raicl_mm.synthetic.presets import PRESETS

REPO = Path(__file__).resolve().parents[1]


def test_subject_folds_partition_and_are_seeded():
    subjects = [f'casme2_{i:02d}' for i in range(1, 27)]
    folds = subject_folds(subjects, 4, seed=0)
    assert sorted(s for f in folds for s in f) == sorted(subjects)
    assert sorted(len(f) for f in folds) == [6, 6, 7, 7]
    assert folds == subject_folds(list(reversed(subjects)), 4, seed=0)
    assert folds != subject_folds(subjects, 4, seed=1)
    with pytest.raises(AblationError, match='--folds 1'):
        subject_folds(subjects, 1)
    with pytest.raises(AblationError, match='--folds 27'):
        subject_folds(subjects, 27)


def write_scalars(work_dir, rows):
    d = Path(work_dir) / '20261201_000000' / 'vis_data'
    d.mkdir(parents=True)
    (d / 'scalars.json').write_text(
        ''.join((r if isinstance(r, str) else json.dumps(r)) + '\n' for r in rows))


def test_epoch_loss_means_first_and_last_epoch(tmp_path):
    write_scalars(tmp_path, [
        {'epoch': 1, 'iter': 1, 'loss_cls': 1.0, 'loss_align': 2.0, 'lr': 1e-3},
        {'epoch': 1, 'iter': 2, 'loss_cls': 3.0, 'loss_align': 2.0},
        {'epoch': 2, 'iter': 3, 'loss_cls': 0.5, 'mrd_queries_used': 4.0},
        {'epoch': 3, 'iter': 5, 'loss_cls': 0.2, 'loss_align': 1.0,
         'mrd_queries_used': 6.0},
        {'UF1': 0.5, 'step': 3},                      # a validation line
    ])
    got = epoch_loss_means(str(tmp_path))
    assert got['loss_cls'] == {'first_epoch': 2.0, 'last_epoch': 0.2}
    assert got['loss_align'] == {'first_epoch': 2.0, 'last_epoch': 1.0}
    assert 'lr' not in got and 'UF1' not in got
    assert 'mrd_queries_used' not in got  # not logged in the first epoch


def test_epoch_loss_means_names_a_bad_line(tmp_path):
    write_scalars(tmp_path, [{'epoch': 1, 'loss': 1.0}, '{not json'])
    with pytest.raises(AblationError, match='scalars.json: line 2'):
        epoch_loss_means(str(tmp_path))
    assert epoch_loss_means(str(tmp_path / 'nothing')) == {}


@pytest.mark.parametrize('content, match', [
    ('[]', 'expected "classes"'),
    ('{"classes": ["a", "b"], "predictions": [{"gt": 0, "pred": 0}]}',
     'no sample_id'),
    ('{"classes": ["a", "b"], "predictions": [{"sample_id": "x", "gt": 2, '
     '"pred": 0}]}', 'gt=2'),
    ('{"classes": ["a", "b"], "predictions": [{"sample_id": "x", "gt": 0, '
     '"pred": true}]}', 'pred=True'),
    ('{"classes": ', 'not valid JSON'),
])
def test_hostile_predictions_are_named(tmp_path, content, match):
    path = tmp_path / 'predictions.json'
    path.write_text(content)
    with pytest.raises(AblationError, match=match):
        read_predictions(str(path))


def test_hostile_results_file_is_named(tmp_path):
    path = tmp_path / 'r.json'
    path.write_text('{"runs": [{"method": "M6"}]}')
    with pytest.raises(AblationError, match='run #0 lacks'):
        load_results(str(path))
    path.write_text('{"runs": 3}')
    with pytest.raises(AblationError, match='"runs" list'):
        load_results(str(path))


def fake_run(method, seed, gt, pred):
    return {'method': method, 'seed': seed, 'classes': ['a', 'b', 'c'],
            'predictions': [[f'casme2/01/c{i:03d}', int(g), int(p)]
                            for i, (g, p) in enumerate(zip(gt, pred))]}


def test_paired_bootstrap_brackets_a_real_difference_and_zero():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 3, 300)
    good = np.where(rng.uniform(size=300) < 0.8, gt, (gt + 1) % 3)
    bad = np.where(rng.uniform(size=300) < 0.4, gt, (gt + 1) % 3)
    ref = [fake_run('M6', 0, gt, good)]
    bs = paired_bootstrap(ref, [fake_run('M2', 0, gt, bad)], 3, n_boot=300)
    expect = scores(gt, good, 3)['UF1'] - scores(gt, bad, 3)['UF1']
    assert bs['diff'] == pytest.approx(expect, abs=1e-9)
    assert 0 < bs['low'] < bs['diff'] < bs['high']
    same = paired_bootstrap(ref, [fake_run('X', 0, gt, good)], 3, n_boot=100)
    assert same['diff'] == same['low'] == same['high'] == 0.0
    other = fake_run('M2', 0, gt[:-1], bad[:-1])
    with pytest.raises(AblationError, match='different clips'):
        paired_bootstrap(ref, [other], 3, n_boot=10)


def test_markdown_table_has_mean_std_and_intervals():
    rng = np.random.default_rng(1)
    gt = rng.integers(0, 3, 60)
    runs = []
    for name, acc in (('M6', 0.9), ('M2', 0.5)):
        for seed in (0, 1, 2):
            pred = np.where(rng.uniform(size=60) < acc, gt, (gt + 1) % 3)
            r = fake_run(name, seed, gt, pred)
            s = scores(gt, pred, 3)
            r.update(key=f'{name}{seed}', n=60, uf1=s['UF1'], uar=s['UAR'],
                     accuracy=s['accuracy'],
                     attention={'cam_true_ratio': 1.5 + seed},
                     losses={'loss_cls': {'first_epoch': 1.0, 'last_epoch': 0.5}})
            runs.append(r)
    table = markdown_table({'runs': runs, 'k_folds': 4, 'fold_seed': 0},
                           n_boot=200)
    m2 = next(line for line in table.splitlines() if line.startswith('| M2 |'))
    assert ' ± ' in m2 and '[' in m2 and '0,1,2' in m2
    assert '| M6 | 0,1,2 | 60 |' in table
    assert 'cam_true_ratio' in table and '2.500' in table
    assert '1.0000 -> 0.5000' in table


QUICK_CONFIG = """
_base_ = [{base!r}]
__data = dict(
    synthetic=dict(_delete_=True, out={out!r}, **{quick!r}),
    data_roots=dict(casme2={out!r} + '/Cropped'),
    ann_files=dict(casme2={out!r} + '/CASME2-coding-synthetic.xlsx'),
    flow_cfg=dict(size=(32, 32)), sampling=dict(num_instances=3),
    flow_cache={cache!r}, flow_workers=1)
train_dataloader = dict(batch_size=4, dataset=__data)
val_dataloader = dict(batch_size=8, dataset=__data)
test_dataloader = dict(batch_size=8, dataset=__data)
model = dict(backbone=dict(stem_channels=8, base_channels=8),
             mrd_head=dict(embed_dim=16, proj_hidden=16, pred_hidden=16))
train_cfg = dict(max_epochs=1, val_begin=1, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=1))
"""


@pytest.mark.slow
def test_runner_on_the_quick_preset_writes_the_records(tmp_path):
    """Two methods x one seed x two folds on the quick preset, then resume."""
    quick = {k: (list(v) if isinstance(v, tuple) else v)
             for k, v in PRESETS['quick'].items()}
    cfg = tmp_path / 'quick.py'
    cfg.write_text(QUICK_CONFIG.format(
        base=str(REPO / 'configs' / 'benchmark' / 'm6_ours.py'),
        out=str(tmp_path / 'data'), cache=str(tmp_path / 'cache'), quick=quick))
    methods = [Method('M6', str(cfg)),
               Method('M2', str(cfg), ['model.cam_head=None',
                                       'model.mrd_head=None'])]
    out = tmp_path / 'results' / 'ablation.json'
    cwd = os.getcwd()
    os.chdir(REPO)  # tools/train.py is run from the repository root
    try:
        res = run_ablation(methods, [0], 2, str(out), str(tmp_path / 'work'),
                           log=lambda m: None)
        data = json.loads(out.read_text())
        assert data == json.loads(json.dumps(res))
        assert data['k_folds'] == 2 and len(data['runs']) == 2
        n_clips = sum(1 for _ in (tmp_path / 'data' / 'Cropped').glob('*/*'))
        for run in data['runs']:
            assert {'method', 'seed', 'uf1', 'uar', 'accuracy', 'folds',
                    'wall_s', 'device', 'losses', 'predictions',
                    'attention'} <= set(run)
            assert 0 <= run['uf1'] <= 100 and 0 <= run['accuracy'] <= 100
            assert run['n'] == n_clips == sum(f['n'] for f in run['folds'])
            assert len(run['folds']) == 2
            assert all(0 <= f['correct'] <= f['n'] for f in run['folds'])
            assert 'loss_cls' in run['losses']
            assert set(run['losses']['loss_cls']) == {'first_epoch', 'last_epoch'}
            assert 0 < run['attention']['cam_true_ratio']
            assert -1 <= run['attention']['cam_instance_corr'] <= 1
        m6 = next(r for r in data['runs'] if r['method'] == 'M6')
        assert {'loss_acl', 'loss_align', 'loss_c'} <= set(m6['losses'])
        assert 'mrd_secondary_best' in m6['attention']
        table = (tmp_path / 'results' / 'ablation.md').read_text()
        assert '| M2 |' in table and '| M6 |' in table
        # Resume: nothing is trained again.
        before = out.stat().st_mtime_ns
        logs = []
        run_ablation(methods, [0], 2, str(out), str(tmp_path / 'work'),
                     log=logs.append)
        assert logs == ['M6 seed 0: done, skipped', 'M2 seed 0: done, skipped']
        assert out.stat().st_mtime_ns == before
    finally:
        os.chdir(cwd)


def test_tool_names_a_bad_option(capsys, tmp_path):
    sys.path.insert(0, str(REPO / 'tools'))
    try:
        import ablation as tool
    finally:
        sys.path.pop(0)
    assert tool.main(['--only', 'M7', '--out', str(tmp_path / 'r.json')]) == 2
    assert "unknown method(s) ['M7']" in capsys.readouterr().err
    assert tool.main(['--method', 'X=nope.py', '--out',
                      str(tmp_path / 'r.json')]) == 2
    assert "config 'nope.py' not found" in capsys.readouterr().err


def test_oracle_rules_on_crafted_region_features():
    from raicl_mm.protocol.oracle import _predict
    rng = np.random.default_rng(0)
    n = 60
    gt = np.repeat([0, 1, 2], n // 3)
    col_class = np.array([2, 0, 1])  # region j tells class col_class[j]
    f = rng.normal(0, 0.1, (n, 3))
    f[:, 0] += 5.0  # region 0 always moves most (spill-over of the primary)
    for j, c in enumerate(col_class):
        f[gt == c, j] += 1.0  # ...but each class adds to its own region
    folds = np.tile([0, 1], n // 2)
    raw = _predict('raw', f, gt, folds, col_class, 3)
    assert (raw == col_class[0]).all()  # the raw rule always says region 0
    for rule in ('standardized', 'centroid'):
        assert (_predict(rule, f, gt, folds, col_class, 3) == gt).mean() > 0.9
    # labels carry no signal: the trained centroid rule drops to chance
    shuffled = rng.permutation(gt)
    acc = (_predict('centroid', f, shuffled, folds, col_class, 3) == shuffled).mean()
    assert acc < 0.6


def test_variants_table_pivots_base_dash_variant_names():
    rng = np.random.default_rng(2)
    gt = rng.integers(0, 3, 40)
    runs = []
    for name in ('M6', 'M1', 'M1-std10', 'M1-spotted', 'M3-std10', 'shuffled'):
        for seed in (0, 1):
            r = fake_run(name, seed, gt, gt)
            r.update(key=f'{name}{seed}', n=40, uf1=80.0 + seed, uar=70.0,
                     accuracy=90.0)
            runs.append(r)
    table = markdown_table({'runs': runs, 'k_folds': 2, 'fold_seed': 0},
                           n_boot=20)
    assert '| method | (itself) | std10 | spotted |' in table
    row = next(line for line in table.splitlines()
               if line.startswith('| M1 | 80.50'))
    assert row.count('80.50 ± 0.71 / 70.00 ± 0.00') == 3
    # M3 has no run of its own: not a base, so no row (it stays a method)
    assert not any(line.startswith('| M3 | ') for line in table.splitlines())
    no_variants = markdown_table(
        {'runs': [r for r in runs if '-' not in r['method']], 'k_folds': 2,
         'fold_seed': 0}, n_boot=20)
    assert 'Variants' not in no_variants


@pytest.mark.slow
def test_m2_and_m6_see_the_same_batches(tiny_config, tmp_path):
    """Paired rows: at one seed, M2 (no IRC, no MRD) and M6 train from
    bit-identical backbone and FC weights on the same batches, and the
    validation scores the teacher beside the student."""
    import torch
    from mmengine.config import Config
    from mmengine.hooks import Hook

    from raicl_mm.engine.runner import RaICLRunner

    class Recorder(Hook):
        def __init__(self):
            self.batches, self.start = [], None

        def before_train(self, runner):
            model = runner.model
            self.start = {k: v.clone() for k, v in
                          model.online.state_dict().items()
                          if k.startswith(('backbone.', 'fc.'))}

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            ids = [ds.metainfo['sample_id'] for ds in data_batch['data_samples']]
            x = torch.stack(list(data_batch['inputs'])).float()
            self.batches.append((ids, float(x.sum()), float((x * x).sum())))

    seen = {}
    for name, heads in (('M2', dict(cam_head=None, mrd_head=None)),
                        ('M6', {})):
        cfg = Config.fromfile(str(tiny_config))
        cfg.merge_from_dict(dict(model=heads, randomness=dict(seed=4),
                                 train_cfg=dict(max_epochs=1, val_begin=1,
                                                val_interval=1)))
        cfg.work_dir = str(tmp_path / name)
        for loader in ('train', 'val', 'test'):
            cfg[f'{loader}_dataloader'].dataset.fold = 0
        runner = RaICLRunner.from_cfg(cfg)
        rec = Recorder()
        runner.register_hook(rec, 'LOWEST')
        runner.train()
        seen[name] = rec
        metrics = runner.message_hub.log_scalars
        assert 'val/target/UF1' in metrics, sorted(metrics)
    a, b = seen['M2'], seen['M6']
    assert a.start.keys() == b.start.keys()
    for k in a.start:
        assert torch.equal(a.start[k], b.start[k]), k
    assert len(a.batches) >= 2 and a.batches == b.batches


def test_duplicated_or_malformed_run_records_are_refused(tmp_path):
    path = tmp_path / 'r.json'
    run = {'method': 'M2', 'seed': 0, 'key': 'a'}
    path.write_text(json.dumps({'runs': [run, dict(run, key='b')]}))
    with pytest.raises(AblationError, match='runs #0 and #1 are both M2 seed 0'):
        load_results(str(path))
    path.write_text(json.dumps({'runs': [dict(run, seed='0')]}))
    with pytest.raises(AblationError, match="run #0 has method='M2' seed='0'"):
        load_results(str(path))


def test_seed_level_rule_and_noise_floor():
    from raicl_mm.protocol.ablation_stats import paired_seed_stats, seed_table

    def runs(name, uf1s, teacher=None):
        return [{'method': name, 'seed': s, 'uf1': u,
                 **({'target_uf1': teacher[s]} if teacher else {})}
                for s, u in enumerate(uf1s)]
    a = runs('A', [80, 82, 81, 83, 80])
    b = runs('B', [75, 76, 77, 76, 75])
    st = paired_seed_stats(a, b)
    assert st['verdict'] == 'A > B' and st['wins'] == 5
    assert st['diffs'] == [5, 6, 4, 7, 5] and st['low'] > 0
    # a large mean carried by one seed: the interval includes 0
    c = runs('C', [75, 76, 77, 76, 95])
    assert paired_seed_stats(c, b)['verdict'] == 'not distinguishable'
    # 4 of 5 seeds is enough when the interval excludes 0; 3 of 5 is not
    d = runs('D', [79, 80, 81, 75.5, 80])
    st = paired_seed_stats(d, b)
    assert st['wins'] == 4 and st['verdict'] == 'A > B'
    assert paired_seed_stats(b, a)['verdict'] == 'A < B'
    assert paired_seed_stats(a[:1], b[:1]) is None
    table = '\n'.join(seed_table({'M2': b, 'M6': a,
                                  'M2-reinit': runs('M2-reinit',
                                                    [76, 75, 77, 75, 76])}))
    assert '| M6 | M2 | 5 |' in table and 'M6 > M2' in table
    assert 'noise floor (the same method, another initial-weight draw): sd of Δ' in table
    assert '| M2-reinit | M6 |' not in table


def test_teacher_cell_flags_a_teacher_far_below_its_student():
    from raicl_mm.protocol.ablation_stats import teacher_cell
    runs = [{'uf1': 80.0, 'target_uf1': 78.0}, {'uf1': 80.0, 'target_uf1': 60.0}]
    assert '⚠ 1/2 runs > 10 below the student' in teacher_cell(runs)
    assert '⚠' not in teacher_cell(runs[:1]) and teacher_cell([{'uf1': 1}]) == ''


def test_parallel_grid_with_a_failed_fold_is_not_exit_0(tmp_path, monkeypatch):
    """--jobs: a fold that failed leaves its run unrecorded, and the grid ends
    in an error naming it (after recording and tabulating the rest)."""
    from raicl_mm.protocol import ablation

    monkeypatch.setattr(ablation, 'config_subjects',
                        lambda config, opts=(): ['casme2_01', 'casme2_02'])
    monkeypatch.setattr(ablation, '_train_parallel',
                        lambda tasks, extra, jobs, deadline, log:
                        ['M2 seed 0 fold casme2_01: tools/train.py exited 1; '
                         'see train_fold_0.log'])
    out = tmp_path / 'r.json'
    logs = []
    with pytest.raises(RuntimeError, match=r'1 fold-run\(s\) failed.*exited 1'):
        ablation.run_ablation([Method('M2', str(REPO / 'configs' / 'benchmark' /
                                                 'm2_mir_cls.py'))],
                              [0], 2, str(out), str(tmp_path / 'w'),
                              attention=False, log=logs.append, jobs=2)
    assert any('not recorded' in m for m in logs)
    assert not out.exists()              # no run finished, none recorded
    assert (tmp_path / 'r.md').read_text() == '(no finished run)\n'
