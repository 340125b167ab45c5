"""tools/loso.py: every fold, resumable, failures isolated, pooled report."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, run_tool

pytestmark = pytest.mark.slow
EPOCHS = ['--cfg-options', 'train_cfg.max_epochs=5']


def _report(work):
    rep = json.loads((work / 'report' / 'report.json').read_text())
    log = (work / 'report' / 'megc_log.csv').read_text()
    return rep, log


@pytest.fixture(scope='module')
def reference(tiny_config, tmp_path_factory):
    work = tmp_path_factory.mktemp('loso') / 'ref'
    res = run_tool('loso.py', tiny_config, '--work-dir', work, *EPOCHS)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return work, res


def test_all_folds_run_and_are_pooled(reference):
    work, res = reference
    plan = json.loads((work / 'loso_plan.json').read_text())
    assert plan['folds'] == ['casme2_01', 'casme2_02', 'casme2_03']
    for fold in plan['folds']:
        assert (work / f'fold_{fold}' / 'predictions.json').is_file()
    rep, log = _report(work)
    assert rep['overall']['num_folds'] == 3
    assert rep['overall']['num_samples'] == 9
    assert len(log.strip().splitlines()) == 1 + 9
    assert '| All (casme2) |' in res.stdout  # one dataset: no Composite row
    assert 'confusion_overall.png' in res.stdout
    assert 'confusion_casme2.png' not in res.stdout


def test_rerun_skips_finished_folds(reference, tiny_config):
    work, _ = reference
    before = (work / 'fold_casme2_01' / 'predictions.json').stat().st_mtime
    res = run_tool('loso.py', tiny_config, '--work-dir', work, *EPOCHS)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.count(': skipped') == 3
    assert (work / 'fold_casme2_01' / 'predictions.json').stat().st_mtime \
        == before


def test_killed_run_resumes_to_the_same_report(reference, tiny_config,
                                              tmp_path):
    ref_work, _ = reference
    work = tmp_path / 'killed'
    ckpt = work / 'fold_casme2_02' / 'last_checkpoint'  # after epoch_1.pth
    proc = subprocess.Popen(
        [sys.executable, str(REPO / 'tools' / 'loso.py'), str(tiny_config),
         '--work-dir', str(work), *EPOCHS], cwd=REPO,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    deadline = time.time() + 600
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and its fold process
    proc.wait()
    assert ckpt.exists(), 'the run never saved a checkpoint in the 2nd fold'
    assert not (work / 'fold_casme2_02' / 'predictions.json').exists(), \
        'fold finished before the kill: nothing was interrupted'
    res = run_tool('loso.py', tiny_config, '--work-dir', work, *EPOCHS)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    fold_log = (work / 'fold_casme2_02' / 'loso_stdout.log').read_text()
    assert 'resumed epoch' in fold_log.lower()
    assert 'fold casme2_01: skipped' in res.stdout
    rep, log = _report(work)
    ref_rep, ref_log = _report(ref_work)
    assert log == ref_log
    assert rep['overall'] == ref_rep['overall']


def test_failed_fold_is_reported_and_others_finish(tiny_config, tmp_path):
    work = tmp_path / 'failing'
    bad = work / 'fold_casme2_03'
    bad.mkdir(parents=True)
    (bad / 'epoch_1.pth').write_bytes(b'not a checkpoint')
    (bad / 'last_checkpoint').write_text(str(bad / 'epoch_1.pth'))
    res = run_tool('loso.py', tiny_config, '--work-dir', work, '--workers',
                   '2', *EPOCHS)
    assert res.returncode == 1
    assert 'fold casme2_03: failed' in res.stdout
    assert 'loso_stdout.log' in res.stderr
    for fold in ('casme2_01', 'casme2_02'):
        assert (work / f'fold_{fold}' / 'predictions.json').is_file()
    report = run_tool('loso_report.py', work)
    assert report.returncode == 2 and 'casme2_03' in report.stderr


def test_resume_point_skips_a_partial_checkpoint(tmp_path, trained_fold):
    """Killed between writing epoch_N.pth and the marker: use the newest
    checkpoint that loads."""
    sys.path.insert(0, str(REPO / 'tools'))
    from loso import resume_point
    fold = tmp_path / 'fold_x'
    fold.mkdir()
    assert resume_point(str(fold)) is None
    good = fold / 'epoch_1.pth'
    good.write_bytes(trained_fold.read_bytes())
    (fold / 'epoch_2.pth').write_bytes(b'partial')
    assert resume_point(str(fold)) == str(good)
    (fold / 'last_checkpoint').write_text(str(good))
    assert resume_point(str(fold)) == 'auto'


@pytest.fixture(scope='module')
def trained_fold(reference):
    work, _ = reference
    return work / 'fold_casme2_01' / 'epoch_5.pth'
