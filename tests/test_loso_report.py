"""tools/loso_report.py, protocol.report and evaluation.pooling on a work dir
in tmp_path."""
import csv
import importlib.util
import json
import os
import os.path as osp

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, recall_score

from raicl_mm.evaluation.pooling import (load_fold_predictions, missing_folds,
                                         pooled_report)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOL = osp.join(REPO, 'tools', 'loso_report.py')
CLASSES = ['negative', 'positive', 'surprise']
FOLDS = ['casme2_sub01', 'casme2_sub02', 'samm_006', 'samm_007', 'smic_s1']


def load_tool():
    spec = importlib.util.spec_from_file_location('loso_report', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_work_dir(root, skip=(), drop=(), failed=(), legacy=False):
    """Plan with 5 folds; casme2_sub01 has no 'surprise' sample.

    ``drop``: sample ids planned but left out of their fold's predictions;
    ``failed``: those of them whose flow extraction failed in the plan;
    ``legacy``: a plan from before ``fold_samples`` existed.
    """
    rng = np.random.default_rng(0)
    truth = {}
    fold_samples = {}
    for fold in FOLDS:
        dataset, subject = fold.split('_')
        n = int(rng.integers(4, 9))
        high = 2 if fold == 'casme2_sub01' else 3
        gt = rng.integers(0, high, size=n)
        pred = np.where(rng.random(n) < 0.6, gt, rng.integers(0, 3, size=n))
        preds = [{'sample_id': f'{subject}_clip{i}', 'dataset': dataset,
                  'subject': subject, 'gt': int(g), 'pred': int(p),
                  'scores': [0.2, 0.3, 0.5]} for i, (g, p) in
                 enumerate(zip(gt, pred))]
        fold_samples[fold] = [p['sample_id'] for p in preds]
        preds = [p for p in preds if p['sample_id'] not in drop]
        truth[fold] = preds
        if fold in skip:
            continue
        d = osp.join(root, f'fold_{fold}')
        os.makedirs(d)
        with open(osp.join(d, 'predictions.json'), 'w') as f:
            json.dump({'classes': CLASSES, 'predictions': preds}, f)
    plan = {'folds': FOLDS, 'classes': CLASSES,
            'config': 'configs/raicl_cde.py'}
    if not legacy:
        plan['fold_samples'] = fold_samples
        plan['failed_samples'] = [
            {'sample_id': sid, 'fold': next(f for f in FOLDS
                                            if sid in fold_samples[f]),
             'error': 'RuntimeError: no face found'} for sid in failed]
    with open(osp.join(root, 'loso_plan.json'), 'w') as f:
        json.dump(plan, f)
    return truth


def sk(rows):
    gt = [r['gt'] for r in rows]
    pred = [r['pred'] for r in rows]
    return {
        'UF1': f1_score(gt, pred, labels=sorted(set(gt) | set(pred)),
                        average='macro', zero_division=0),
        'UAR': recall_score(gt, pred, labels=sorted(set(gt)),
                            average='macro', zero_division=0),
        'accuracy': accuracy_score(gt, pred),
    }


def is_png(path):
    with open(path, 'rb') as f:
        return f.read(8) == b'\x89PNG\r\n\x1a\n' and osp.getsize(path) > 1000


def test_complete_run(tmp_path, capsys):
    truth = make_work_dir(str(tmp_path))
    rc = load_tool().main([str(tmp_path)])
    assert rc == 0
    out_dir = tmp_path / 'report'
    report = json.loads((out_dir / 'report.json').read_text())
    rows = [r for fold in FOLDS for r in truth[fold]]

    ref = sk(rows)
    for key in ('UF1', 'UAR', 'accuracy'):
        assert report['overall'][key] == pytest.approx(ref[key])
    assert report['overall']['num_samples'] == len(rows)
    assert report['overall']['num_folds'] == len(FOLDS)
    assert report['missing_folds'] == []
    assert sum(map(sum, report['overall']['confusion_matrix'])) == len(rows)
    for ds, n_folds in (('casme2', 2), ('samm', 2), ('smic', 1)):
        sub = [r for r in rows if r['dataset'] == ds]
        ref = sk(sub)
        sec = report['datasets'][ds]
        for key in ('UF1', 'UAR', 'accuracy'):
            assert sec[key] == pytest.approx(ref[key]), (ds, key)
        assert (sec['num_folds'], sec['num_samples']) == (n_folds, len(sub))
    support = {c: sum(r['gt'] == i for r in rows)
               for i, c in enumerate(CLASSES)}
    assert {c: s['support'] for c, s in
            report['overall']['per_class'].items()} == support

    # Pooled, not a mean of per-fold scores.
    per_fold = np.mean([sk(truth[f])['UF1'] for f in FOLDS])
    assert abs(report['overall']['UF1'] - per_fold) > 1e-6

    with open(out_dir / 'megc_log.csv', newline='') as f:
        log = list(csv.DictReader(f))
    assert len(log) == len(rows)
    assert list(log[0]) == ['fold', 'sample_id', 'dataset', 'subject',
                            'ground_truth', 'prediction']
    assert log[0]['ground_truth'] == CLASSES[rows[0]['gt']]
    assert log[0]['fold'] == 'casme2_sub01'

    md = (out_dir / 'report.md').read_text()
    assert f'| Composite | {100 * sk(rows)["UF1"]:.2f} |' in md
    for name in ('confusion_overall.png', 'confusion_casme2.png',
                 'confusion_samm.png', 'confusion_smic.png'):
        assert is_png(out_dir / name), name
    printed = capsys.readouterr().out
    assert '| Composite |' in printed and 'confusion_overall.png' in printed
    assert not list(out_dir.glob('*.tmp'))


def test_missing_fold_refused(tmp_path):
    make_work_dir(str(tmp_path), skip=('samm_006', 'casme2_sub02'))
    from conftest import run_tool_here  # the command line's entry, in-process
    proc = run_tool_here(TOOL, str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    assert 'missing folds: casme2_sub02, samm_006' in proc.stderr
    assert '--allow-missing' in proc.stderr
    assert not (tmp_path / 'report').exists()


def test_allow_missing_reports_and_lists(tmp_path, capsys):
    truth = make_work_dir(str(tmp_path), skip=('samm_006', ))
    out = tmp_path / 'elsewhere'
    assert load_tool().main([str(tmp_path), '--allow-missing', '--out',
                             str(out)]) == 0
    report = json.loads((out / 'report.json').read_text())
    assert report['missing_folds'] == ['samm_006']
    rows = [r for f in FOLDS if f != 'samm_006' for r in truth[f]]
    assert report['overall']['UF1'] == pytest.approx(sk(rows)['UF1'])
    assert report['overall']['num_folds'] == 4
    assert 'samm_006' in (out / 'report.md').read_text()
    assert 'samm_006' in capsys.readouterr().out


def test_pooling_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='loso_plan.json'):
        load_fold_predictions(str(tmp_path))
    make_work_dir(str(tmp_path))
    bad = tmp_path / 'fold_samm_007' / 'predictions.json'
    bad.write_text(json.dumps({'classes': CLASSES, 'predictions': [
        {'sample_id': 'x', 'dataset': 'samm', 'subject': '007', 'gt': 5,
         'pred': 0}]}))
    with pytest.raises(ValueError, match='fold_samm_007.*gt=5'):
        load_fold_predictions(str(tmp_path))
    bad.write_text('{not json')
    with pytest.raises(ValueError, match='fold_samm_007'):
        load_fold_predictions(str(tmp_path))
    bad.write_text(json.dumps({'classes': ['a', 'b', 'c'], 'predictions': []}))
    with pytest.raises(ValueError, match='differ from the plan'):
        load_fold_predictions(str(tmp_path))


def test_duplicate_sample_across_folds(tmp_path):
    truth = make_work_dir(str(tmp_path))
    dup = dict(truth['casme2_sub01'][0])
    path = tmp_path / 'fold_casme2_sub02' / 'predictions.json'
    path.write_text(json.dumps({'classes': CLASSES, 'predictions':
                                truth['casme2_sub02'] + [dup]}))
    with pytest.raises(ValueError,
                       match='also predicted in fold casme2_sub01'):
        load_fold_predictions(str(tmp_path))


def test_pooled_report_api(tmp_path):
    make_work_dir(str(tmp_path), skip=('smic_s1', ))
    plan, folds = load_fold_predictions(str(tmp_path))
    assert missing_folds(plan, folds) == ['smic_s1']
    report = pooled_report(plan, folds)
    assert set(report['datasets']) == {'casme2', 'samm'}
    assert report['num_folds_planned'] == 5
    assert report['config'] == 'configs/raicl_cde.py'


# ------------------------------------------- samples planned vs scored
class Ran:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def run_report(capsys):
    """The tool's main() in this process (a subprocess costs seconds of
    imports; test_missing_fold_refused runs the real command line)."""
    tool = load_tool()

    def run(*args):
        capsys.readouterr()
        rc = tool.main([str(a) for a in args])
        out = capsys.readouterr()
        return Ran(rc, out.out, out.err)
    return run


def test_unscored_samples_refused_and_named(run_report, tmp_path):
    """Issue 10 case 4: clips whose flow failed are not scored; the report
    used to say "complete" with fewer samples than planned."""
    make_work_dir(str(tmp_path),
                  drop=('sub01_clip0', '006_clip1', '007_clip2'),
                  failed=('sub01_clip0', '006_clip1'))
    proc = run_report(tmp_path)
    assert proc.returncode == 2, proc.stdout
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert 'incomplete run: 3 of ' in err
    assert ('sub01_clip0 (flow extraction failed: RuntimeError: no face found)'
            in err)
    assert '006_clip1 (flow extraction failed' in err
    assert '007_clip2 (not in fold_samm_007/predictions.json)' in err
    assert '--allow-missing' in err
    assert not (tmp_path / 'report').exists()


def test_allow_missing_lists_unscored_samples(run_report, tmp_path):
    truth = make_work_dir(str(tmp_path), drop=('sub01_clip0', '007_clip2'),
                          failed=('sub01_clip0',))
    proc = run_report(tmp_path, '--allow-missing')
    assert proc.returncode == 0, proc.stderr
    planned = sum(len(v) for v in truth.values()) + 2
    assert f'samples scored: {planned - 2} of {planned} planned' in proc.stdout
    # counts on the console, the list in a file (one line per sample there)
    assert ('missing samples (not in the scores): 2 (flow extraction failed: 1, '
            'not in fold_samm_007/predictions.json: 1); listed in '
            f'{tmp_path / "report" / "missing_samples.tsv"}') in proc.stdout
    assert 'sub01_clip0 (fold' not in proc.stdout
    listed = (tmp_path / 'report' / 'missing_samples.tsv').read_text()
    assert ('sub01_clip0\tcasme2_sub01\tflow extraction failed: '
            'RuntimeError: no face found') in listed
    assert '007_clip2\tsamm_007\tnot in fold_samm_007/' in listed
    report = json.loads((tmp_path / 'report' / 'report.json').read_text())
    assert report['samples']['planned'] == planned
    assert report['samples']['scored'] == planned - 2
    assert [m['sample_id'] for m in report['samples']['missing']] == [
        'sub01_clip0', '007_clip2']
    assert report['samples']['per_fold']['samm_007']['missing'] == 1
    md = (tmp_path / 'report' / 'report.md').read_text()
    assert '2 planned samples not scored' in md and '`007_clip2`' in md
    assert '| samm_007 |' in md


def test_samples_of_a_missing_fold_are_counted(run_report, tmp_path):
    make_work_dir(str(tmp_path), skip=('smic_s1',))
    plan, folds = load_fold_predictions(str(tmp_path))
    acc = pooled_report(plan, folds)['samples']
    lost = [m for m in acc['missing'] if m['fold'] == 'smic_s1']
    assert lost and all(m['why'] == 'fold not finished' for m in lost)
    assert acc['planned'] == acc['scored'] + len(lost)
    # counted with their fold in the refusal, not listed one by one
    err = run_report(tmp_path).stderr
    assert f'missing folds: smic_s1 ({len(lost)} planned samples); pass ' \
        '--allow-missing' in err


def test_samples_not_in_the_plan_refused_even_with_allow_missing(
        run_report, tmp_path):
    """A fold run on other data (or another plan) is never pooled."""
    truth = make_work_dir(str(tmp_path))
    extra = dict(truth['samm_006'][0], sample_id='006_intruder')
    path = tmp_path / 'fold_samm_006' / 'predictions.json'
    path.write_text(json.dumps({'classes': CLASSES, 'predictions':
                                truth['samm_006'] + [extra]}))
    proc = run_report(tmp_path, '--allow-missing')
    assert proc.returncode == 2
    assert 'fold samm_006: 006_intruder' in proc.stderr
    assert '--new-plan' in proc.stderr


def test_legacy_plan_without_samples_refused(run_report, tmp_path):
    make_work_dir(str(tmp_path), legacy=True)
    proc = run_report(tmp_path)
    assert proc.returncode == 2
    assert 'records no samples per fold' in proc.stderr
    proc = run_report(tmp_path, '--allow-missing')
    assert proc.returncode == 0, proc.stderr
    assert 'samples scored: ' in proc.stdout and 'of ? planned' in proc.stdout


@pytest.mark.parametrize('plan', [
    '{"folds": ["a"], "classes": ["x"], "fold_samples": {"a": "s1"}}',
    '{"folds": ["a"], "classes": ["x"], "fold_samples": []}',
    '{"folds": ["a"], "classes": ["x"], "fold_samples": {"a": []}, '
    '"failed_samples": "s1"}',
    '[1, 2]', '\x00\xff', ''])
def test_hostile_plan_is_one_line(run_report, tmp_path, plan):
    (tmp_path / 'loso_plan.json').write_bytes(plan.encode('latin-1'))
    proc = run_report(tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.count('\n') == 1 and 'Traceback' not in proc.stderr
    assert 'loso_plan.json' in proc.stderr
