"""tools/loso.py and raicl_mm.protocol: every fold, resumable, failures
isolated, nothing lost, one runner per work dir, folds die with the runner."""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import REPO, run_tool, run_tool_here

EPOCHS = ['--cfg-options', 'train_cfg.max_epochs=5']
OPTIONS = {'train_cfg.max_epochs': 5}


def _report(work):
    rep = json.loads((work / 'report' / 'report.json').read_text())
    log = (work / 'report' / 'megc_log.csv').read_text()
    return rep, log


def _procs_mentioning(text):
    """pids of live processes whose command line contains ``text``."""
    found = []
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                cmd = f.read().replace(b'\0', b' ').decode(errors='replace')
            with open(f'/proc/{pid}/stat') as f:
                if f.read().split(') ')[-1].startswith('Z'):
                    continue  # a zombie writes nothing
        except OSError:
            continue
        if text in cmd:
            found.append(int(pid))
    return found


def _wait_gone(text, seconds):
    deadline = time.time() + seconds
    while _procs_mentioning(text) and time.time() < deadline:
        time.sleep(0.05)
    return _procs_mentioning(text)


@pytest.fixture(scope='module')
def reference(tiny_config, tmp_path_factory):
    work = tmp_path_factory.mktemp('loso') / 'ref'
    res = run_tool('loso.py', tiny_config, '--work-dir', work, *EPOCHS)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return work, res


@pytest.fixture(scope='module')
def trained_fold(reference):
    work, _ = reference
    return work / 'fold_casme2_01' / 'epoch_5.pth'


def _first_fold_only(reference, dest):
    """A copy of the reference run with its plan and its finished first fold
    (casme2_01) only: the next run skips it and trains the other two."""
    work = _copy_run(reference, dest)
    for name in ('fold_casme2_02', 'fold_casme2_03', 'report',
                 'loso_timing.json'):
        path = work / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    return work


def _copy_run(reference, dest):
    ref, _ = reference
    shutil.copytree(ref, dest, ignore=shutil.ignore_patterns('loso.lock'))
    # the plan names no fold dir; last_checkpoint markers name the old ones
    for marker in dest.glob('fold_*/last_checkpoint'):
        marker.write_text(marker.read_text().replace(str(ref), str(dest)))
    return dest


# ------------------------------------------------------------ whole runs
@pytest.mark.slow
def test_all_folds_run_and_are_pooled(reference):
    work, res = reference
    plan = json.loads((work / 'loso_plan.json').read_text())
    assert plan['folds'] == ['casme2_01', 'casme2_02', 'casme2_03']
    assert {f: len(ids) for f, ids in plan['fold_samples'].items()} == {
        'casme2_01': 3, 'casme2_02': 3, 'casme2_03': 3}
    assert plan['failed_samples'] == []
    assert plan['settings']['cfg_options'] == OPTIONS
    for fold in plan['folds']:
        assert (work / f'fold_{fold}' / 'predictions.json').is_file()
    rep, log = _report(work)
    assert rep['overall']['num_folds'] == 3
    assert rep['overall']['num_samples'] == 9
    assert rep['samples']['planned'] == rep['samples']['scored'] == 9
    assert len(log.strip().splitlines()) == 1 + 9
    assert '| All (casme2) |' in res.stdout  # one dataset: no Composite row
    assert 'samples scored: 9 of 9 planned' in res.stdout
    assert 'confusion_overall.png' in res.stdout
    assert 'confusion_casme2.png' not in res.stdout


@pytest.mark.slow
def test_rerun_skips_finished_folds(reference, tiny_config):
    work, _ = reference
    before = (work / 'fold_casme2_01' / 'predictions.json').stat().st_mtime
    res = run_tool('loso.py', tiny_config, '--work-dir', work, *EPOCHS)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.count(': skipped') == 3
    assert (work / 'fold_casme2_01' / 'predictions.json').stat().st_mtime \
        == before


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_report(reference, tiny_config,
                                              tmp_path):
    """SIGKILL of the runner alone (issue 10 case 8): its fold process must
    die with it -- nothing is left writing -- and a rerun resumes the fold
    to the same report."""
    ref_work, _ = reference
    # the plan and fold casme2_01 of the reference (finished: skipped); the
    # runner is killed in the middle of fold casme2_02
    work = _first_fold_only(reference, tmp_path / 'killed')
    ckpt = work / 'fold_casme2_02' / 'last_checkpoint'  # after epoch_1.pth
    proc = subprocess.Popen(
        [sys.executable, str(REPO / 'tools' / 'loso.py'), str(tiny_config),
         '--work-dir', str(work), *EPOCHS], cwd=REPO,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    deadline = time.time() + 600
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    fold_dir = str(work / 'fold_casme2_02')
    assert _procs_mentioning(fold_dir), 'no fold process was running'
    os.kill(proc.pid, signal.SIGKILL)  # the runner only, not its folds
    proc.wait()
    assert ckpt.exists(), 'the run never saved a checkpoint in the 2nd fold'
    assert not _wait_gone(fold_dir, 5), 'fold processes outlived the runner'
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


@pytest.mark.slow
def test_failed_fold_is_reported_and_others_finish(reference, tiny_config,
                                                  tmp_path):
    # the reference's plan and finished fold casme2_01; casme2_02 trains
    # beside casme2_03, whose checkpoint is damaged
    work = _first_fold_only(reference, tmp_path / 'failing')
    bad = work / 'fold_casme2_03'
    bad.mkdir(parents=True)
    (bad / 'epoch_1.pth').write_bytes(b'not a checkpoint')
    (bad / 'last_checkpoint').write_text(str(bad / 'epoch_1.pth'))
    res = run_tool('loso.py', tiny_config, '--work-dir', work, '--workers',
                   '2', *EPOCHS)
    assert res.returncode == 1
    assert 'fold casme2_03: failed' in res.stdout
    # the fold tool's own one-line error, not just an exit status
    line = [ln for ln in res.stdout.splitlines() if 'casme2_03: failed' in ln]
    assert 'epoch_1.pth' in line[0], line
    assert 'loso_stdout.log' in res.stderr
    for fold in ('casme2_01', 'casme2_02'):
        assert (work / f'fold_{fold}' / 'predictions.json').is_file()
    report = run_tool_here('loso_report.py', work)
    assert report.returncode == 2 and 'casme2_03' in report.stderr


@pytest.mark.slow
def test_final_checkpoint_without_predictions_is_tested(reference,
                                                        tiny_config, tmp_path):
    """Issue 10 case 5: killed after its last checkpoint, before scoring;
    the rerun used to resume at max_epochs, train nothing and print
    "failed (exit 0)"."""
    work = _copy_run(reference, tmp_path / 'unscored')
    (work / 'fold_casme2_02' / 'predictions.json').unlink()
    shutil.rmtree(work / 'report')
    res = run_tool('loso.py', tiny_config, '--work-dir', work, *EPOCHS)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert 'fold casme2_02: tested in' in res.stdout
    log = (work / 'fold_casme2_02' / 'loso_stdout.log').read_text()
    assert 'test: ' in log and 'tools/test.py' in log and 'epoch_5.pth' in log
    rep, mlog = _report(work)
    ref_rep, ref_log = _report(reference[0])
    assert mlog == ref_log and rep['overall'] == ref_rep['overall']


# ------------------------------------------------------- plan and lock
@pytest.mark.slow
def test_rerun_with_other_settings_refused(reference, tiny_config, tmp_path):
    """Issue 10 case 7b: other --cfg-options used to keep the old folds and
    overwrite the plan; now refused before anything runs."""
    work = _copy_run(reference, tmp_path / 'other')
    plan_before = (work / 'loso_plan.json').read_text()
    res = run_tool_here('loso.py', tiny_config, '--work-dir', work,
                        '--cfg-options', 'train_cfg.max_epochs=4')
    assert res.returncode == 2
    err = res.stderr.strip().splitlines()[-1]
    assert err.startswith('error: ') and 'loso_plan.json was made with ' \
        'other settings' in err
    assert 'cfg_options.train_cfg.max_epochs: 5 -> 4' in err
    assert '--new-plan' in err
    assert (work / 'loso_plan.json').read_text() == plan_before
    # --new-plan: the old plan and folds are archived, never pooled
    res = run_tool('loso.py', tiny_config, '--work-dir', work, '--plan-only',
                   '--new-plan', '--cfg-options', 'train_cfg.max_epochs=4')
    assert res.returncode == 0, res.stderr[-2000:]
    assert 'moved to' in res.stdout
    archived = list((work / 'superseded').iterdir())
    assert len(archived) == 1
    assert (archived[0] / 'fold_casme2_01' / 'predictions.json').is_file()
    assert (archived[0] / 'loso_plan.json').read_text() == plan_before
    assert not list(work.glob('fold_*'))
    plan = json.loads((work / 'loso_plan.json').read_text())
    assert plan['settings']['cfg_options'] == {'train_cfg.max_epochs': 4}


def test_second_runner_is_refused_with_the_holder(tiny_config, tmp_path):
    """Issue 10 case 7a: two runners on one work dir."""
    work = tmp_path / 'busy'
    holder = subprocess.Popen(
        [sys.executable, '-c', textwrap.dedent(f'''
            import importlib.util, time
            # by path: the lock needs no torch (the holder starts at once)
            spec = importlib.util.spec_from_file_location(
                'lock', {str(REPO / 'raicl_mm' / 'protocol' / 'lock.py')!r})
            lock = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(lock)
            with lock.work_dir_lock({str(work)!r}, 'tools/loso.py'):
                print('held', flush=True)
                time.sleep(120)
            ''')], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        res = run_tool_here('loso.py', tiny_config, '--work-dir', work, *EPOCHS)
        assert res.returncode == 2
        err = res.stderr.strip().splitlines()[-1]
        assert err.startswith('error: ') and 'loso.lock is held by pid ' \
            f'{holder.pid} on host ' in err
        assert 'since 20' in err and '(tools/loso.py)' in err
        assert not (work / 'loso_plan.json').exists()
    finally:
        holder.kill()
        holder.wait()


def test_lock_passes_to_guards_and_is_free_when_they_end(tmp_path):
    from raicl_mm.protocol.lock import LockedError, work_dir_lock
    lock = work_dir_lock(str(tmp_path)).acquire()
    child = subprocess.Popen([sys.executable, '-c',
                              'import time; time.sleep(60)'],
                             pass_fds=(lock.fd,))
    os.close(lock.fd)  # the runner is gone; its fold still holds the lock
    lock.fd = None
    other = work_dir_lock(str(tmp_path))
    other.wait_s = 0.5
    with pytest.raises(LockedError, match=f'pid {os.getpid()} on host'):
        other.acquire()
    child.kill()
    child.wait()
    other.acquire()  # nothing of the old runner left
    other.release()


# ------------------------------------------------------------ fold runner
def test_fold_state_resume_and_final_checkpoint(tmp_path, trained_fold):
    """Killed between writing epoch_N.pth and the marker: use the newest
    checkpoint that loads; a final one is tested, not resumed."""
    from raicl_mm.protocol.fold_runner import fold_state
    fold = tmp_path / 'fold_x'
    fold.mkdir()
    assert fold_state(str(fold), 5).action == 'train'
    good = fold / 'epoch_1.pth'
    good.write_bytes(trained_fold.read_bytes())
    (fold / 'epoch_2.pth').write_bytes(b'partial')
    st = fold_state(str(fold), 5)
    assert (st.action, st.checkpoint) == ('resume', str(good))
    assert 'passed over epoch_2.pth' in st.note
    (fold / 'last_checkpoint').write_text(str(good))
    assert (fold_state(str(fold), 5).action,
            fold_state(str(fold), 5).checkpoint) == ('resume', 'auto')
    final = fold / 'epoch_5.pth'
    final.write_bytes(trained_fold.read_bytes())
    (fold / 'last_checkpoint').write_text(str(final))
    st = fold_state(str(fold), 5)
    assert (st.action, st.checkpoint) == ('test', str(final))
    (fold / 'last_checkpoint').unlink()
    assert fold_state(str(fold), 5).action == 'test'
    (fold / 'predictions.json').write_text('{}')
    assert fold_state(str(fold), 5).action == 'finished'


def test_crafted_checkpoint_in_a_fold_is_refused_in_one_line(tmp_path):
    """Issue 10 case 1, third path: a pickle dropped into a fold folder as
    epoch_9.pth for the runner to resume from runs nothing."""
    import torch

    from raicl_mm.protocol.fold_runner import run_fold
    marker = tmp_path / 'pwned'

    class Evil:
        def __reduce__(self):
            return (os.system, (f'touch {marker}',))

    fold = tmp_path / 'work' / 'fold_casme2_01'
    fold.mkdir(parents=True)
    torch.save({'state_dict': {}, 'meta': Evil()}, fold / 'epoch_9.pth')
    res = run_fold('casme2_01', str(tmp_path / 'work'), 'unused.py', 5)
    assert not marker.exists()
    assert res.status == 'failed'
    assert res.message.startswith('error: refusing to load checkpoint ')
    assert 'epoch_9.pth' in res.message and '\n' not in res.message
    assert 'RAICL_TRUST_CHECKPOINT' in res.message
    assert not (fold / 'loso_stdout.log').exists()  # no tool was started


_RUNNER = '''
import importlib.util, sys, time
# by path: the runner side of the guard needs no torch (fast to start)
spec = importlib.util.spec_from_file_location(
    'fold_runner', {repo!r} + '/raicl_mm/protocol/fold_runner.py')
fold_runner = importlib.util.module_from_spec(spec)
sys.modules['fold_runner'] = fold_runner  # dataclasses look it up
spec.loader.exec_module(fold_runner)
log = open({log!r}, 'ab')
proc = fold_runner.start_guarded(
    [sys.executable, '-c', 'import time; time.sleep(300)', {tag!r}], log,
    dict(__import__('os').environ))
print(proc.pid, flush=True)
if {stop}:
    time.sleep(1.0)
    print(fold_runner.stop_all(grace_s=2.0), flush=True)
time.sleep(300)
'''


@pytest.mark.parametrize('how', ['SIGKILL', 'SIGTERM', 'stop_all'])
def test_fold_group_dies_with_the_runner(tmp_path, how):
    """A fold's tool (here a sleeper) is gone within a few seconds of the
    runner being killed (SIGKILL: PR_SET_PDEATHSIG / stdin EOF), stopped
    (SIGTERM handler of tools/loso.py is stop_all), or stop_all()."""
    tag = f'raicl-test-sleeper-{how}-{os.getpid()}'
    code = _RUNNER.format(repo=str(REPO), log=str(tmp_path / 'log'),
                          tag=tag, stop=how == 'stop_all')
    if how == 'SIGTERM':
        code = code.replace('print(proc.pid, flush=True)', textwrap.dedent('''
            import signal, os
            def h(s, f):
                fold_runner.stop_all(grace_s=2.0)
                os._exit(143)
            signal.signal(signal.SIGTERM, h)
            print(proc.pid, flush=True)'''))
    runner = subprocess.Popen([sys.executable, '-c', code],
                              stdout=subprocess.PIPE, text=True)
    try:
        guard = int(runner.stdout.readline())

        def fold_procs():  # the runner's own command line names the tag
            return [p for p in _procs_mentioning(tag) if p != runner.pid]
        deadline = time.time() + 10
        while len(fold_procs()) < 2 and time.time() < deadline:
            time.sleep(0.05)
        pids = fold_procs()
        assert guard in pids and len(pids) == 2  # the guard and its tool
        if how == 'stop_all':
            assert runner.stdout.readline().strip() == '1'
        else:
            os.kill(runner.pid, getattr(signal, how))
        deadline = time.time() + 5
        while fold_procs() and time.time() < deadline:
            time.sleep(0.05)
        assert not fold_procs(), f'{how}: fold processes survived'
    finally:
        runner.kill()
        runner.wait()
        for pid in _procs_mentioning(tag):
            if pid != runner.pid:
                os.kill(pid, signal.SIGKILL)


def test_flow_failure_is_in_the_plan_and_refused_by_the_report(
        tiny_config, tmp_path, monkeypatch, capsys):
    """Issue 10 case 4: a clip whose flow extraction fails is recorded in
    the plan, and a report that lacks it names it and refuses (the folds'
    predictions are written here as the dataset would score the others)."""
    from raicl_mm.engine.config import load_records
    from raicl_mm.flow.cache import FlowCache
    from raicl_mm.protocol import loso
    from raicl_mm.protocol.report import IncompleteRunError, make_report
    records = load_records(loso.load_run_config(str(tiny_config), OPTIONS))
    victim = sorted(r.sample_id for r in records.records
                    if r.fold_subject == 'casme2_02')[1]
    real = FlowCache.fill

    def broken(self, record, *args, **kwargs):
        if record.sample_id == victim:
            raise RuntimeError('no face found in the onset frame')
        return real(self, record, *args, **kwargs)
    monkeypatch.setattr(FlowCache, 'fill', broken)
    work = tmp_path / 'lost'
    assert loso.plan_only(str(tiny_config), str(work), OPTIONS) == 0
    err = capsys.readouterr().err
    assert f'flow extraction failed: {victim}: RuntimeError: no face' in err
    assert f'1 clips of the plan have no flow and cannot be scored: ' \
        f'{victim}; every fold that holds one refuses it' in err
    plan = json.loads((work / 'loso_plan.json').read_text())
    assert sorted(s for ids in plan['fold_samples'].values() for s in ids) \
        == sorted(r.sample_id for r in records.records)
    assert plan['failed_samples'] == [dict(
        sample_id=victim, fold='casme2_02',
        error='RuntimeError: no face found in the onset frame')]
    from raicl_mm.protocol.plan import write_fold_stamp
    for fold, ids in plan['fold_samples'].items():
        (work / f'fold_{fold}').mkdir()
        (work / f'fold_{fold}' / 'predictions.json').write_text(json.dumps(
            dict(classes=plan['classes'], predictions=[
                dict(sample_id=sid, dataset='casme2', subject=fold[-2:],
                     gt=plan['labels'][sid], pred=0) for sid in ids if sid != victim])))
        write_fold_stamp(str(work / f'fold_{fold}'), plan, fold, 'the test')
    with pytest.raises(IncompleteRunError) as info:
        make_report(str(work))
    assert (f'1 of 9 planned samples not scored: {victim} (flow extraction '
            f'failed: RuntimeError: no face found') in str(info.value)
    rep = make_report(str(work), allow_missing=True)
    assert rep['samples']['scored'] == 8
    assert rep['samples']['missing'][0]['sample_id'] == victim


# ------------------------------------------- a work dir belongs to its plan
@pytest.mark.slow
def test_stray_one_fold_run_is_refused_and_the_report_unchanged(reference, tiny_config,
                                                                tmp_path):
    """Issue 20 case 2: a one-fold run with other settings into a planned fold."""
    work = _copy_run(reference, tmp_path / 'copy')
    fold = work / 'fold_casme2_01'
    before = (fold / 'predictions.json').read_bytes()
    marker = (fold / 'last_checkpoint').read_text()
    res = run_tool_here('train.py', tiny_config, '--fold', '0', '--work-dir', fold,
                        '--cfg-options', 'train_cfg.max_epochs=2')
    assert res.returncode == 2, res.stderr[-2000:]
    err = res.stderr.strip().splitlines()[-1]
    assert f'{fold} is fold casme2_01 of the LOSO plan {work}/loso_plan.json' in err
    assert 'train_cfg' in err and f'--work-dir {work} --folds casme2_01' in err
    assert 'another --work-dir' in err
    res = run_tool_here('test.py', tiny_config, str(fold / 'epoch_5.pth'), '--fold', '1',
                        '--work-dir', fold, '--dump', fold / 'predictions.json')
    assert res.returncode == 2 and 'fold casme2_02 in the folder of fold casme2_01' \
        in res.stderr, res.stderr[-2000:]
    assert (fold / 'predictions.json').read_bytes() == before
    assert (fold / 'last_checkpoint').read_text() == marker
    # the plan's own settings, by hand: allowed, and stamped as the plan's
    res = run_tool('test.py', tiny_config, str(fold / 'epoch_5.pth'), '--fold', '0',
                   '--work-dir', fold, '--dump', fold / 'predictions.json', *EPOCHS)
    assert res.returncode == 0, res.stderr[-2000:]
    assert run_tool('loso_report.py', work).returncode == 0


def test_report_refuses_predictions_that_are_not_the_plans(reference, tmp_path):
    from raicl_mm.protocol.plan import STAMP_FILE, write_fold_stamp
    from raicl_mm.protocol.report import PlanMismatchError, make_report
    work = _copy_run(reference, tmp_path / 'copy')
    plan = json.loads((work / 'loso_plan.json').read_text())
    preds_path = work / 'fold_casme2_02' / 'predictions.json'
    data = json.loads(preds_path.read_text())
    data['predictions'][0]['gt'] = (data['predictions'][0]['gt'] + 1) % 3
    preds_path.write_text(json.dumps(data))
    with pytest.raises(PlanMismatchError, match=r"fold_casme2_02/predictions\.json "
                                                r"changed after the plan's run wrote it"):
        make_report(str(work))
    # re-stamped by someone: the ground truth is still checked against the plan
    write_fold_stamp(str(preds_path.parent), plan, 'casme2_02', 'test')
    sid = data['predictions'][0]['sample_id']
    with pytest.raises(PlanMismatchError, match=rf"predictions\.json: sample {sid} has "
                                                r"ground truth .* but the plan labels it"):
        make_report(str(work))
    # predictions written under another plan
    (preds_path.parent / STAMP_FILE).write_text(json.dumps(dict(
        json.loads((preds_path.parent / STAMP_FILE).read_text()), plan_id='0' * 16)))
    with pytest.raises(PlanMismatchError, match='written under other settings'):
        make_report(str(work))
    res = run_tool_here('loso_report.py', work)
    assert res.returncode == 2 and 'fold_casme2_02/predictions.json' in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_unstamped_predictions_are_not_taken_as_finished(tmp_path):
    from raicl_mm.protocol.fold_runner import fold_state
    from raicl_mm.protocol.plan import plan_id, write_fold_stamp
    plan = dict(folds=['casme2_01'], classes=['a'], settings=dict(config='x'))
    plan['plan_id'] = plan_id(plan)
    fold = tmp_path / 'fold_casme2_01'
    fold.mkdir()
    (fold / 'predictions.json').write_text('{"predictions": []}')
    st = fold_state(str(fold), 5, plan)
    assert st.action == 'refused' and 'has no loso_fold.json' in st.note
    assert 'move ' in st.note
    write_fold_stamp(str(fold), plan, 'casme2_01', 'test')
    assert fold_state(str(fold), 5, plan).action == 'finished'
    assert fold_state(str(fold), 5).action == 'finished'   # no plan: as before


@pytest.mark.slow
def test_a_plan_without_stamps_keeps_its_finished_folds(reference, tiny_config, tmp_path):
    work = _copy_run(reference, tmp_path / 'copy')
    plan = json.loads((work / 'loso_plan.json').read_text())
    for key in ('plan_id', 'labels'):
        plan.pop(key)
    (work / 'loso_plan.json').write_text(json.dumps(plan))
    for stamp in work.glob('fold_*/loso_fold.json'):
        stamp.unlink()
    res = run_tool('loso.py', tiny_config, '--work-dir', work, *EPOCHS)
    assert res.returncode == 0, res.stderr[-2000:]
    assert '3 finished folds of the earlier plan' in res.stdout
    assert res.stdout.count(': skipped') == 3
    assert len(list(work.glob('fold_*/loso_fold.json'))) == 3


@pytest.mark.slow
def test_console_shows_fold_scores_pooled_uf1_and_eta(reference):
    _, res = reference
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith('  fold ')]
    assert len(lines) == 3
    assert all(' fold UF1 ' in ln and ' acc ' in ln and 'pooled UF1' in ln
               for ln in lines), lines
    assert '[1/3, ETA ' in lines[0] and lines[-1].endswith('[3/3]')


@pytest.mark.slow
def test_loso_does_not_take_a_replaced_fold_as_finished(reference, tiny_config, tmp_path):
    work = _copy_run(reference, tmp_path / 'copy')
    preds = work / 'fold_casme2_01' / 'predictions.json'
    data = json.loads(preds.read_text())
    data['predictions'][0]['pred'] = (data['predictions'][0]['pred'] + 1) % 3
    preds.write_text(json.dumps(data))      # what a stray one-fold run leaves
    res = run_tool('loso.py', tiny_config, '--work-dir', work, *EPOCHS)
    assert res.returncode == 1, res.stderr[-2000:]
    assert ("fold casme2_01: failed: error: " in res.stdout
            and "predictions.json changed after the plan's run wrote it" in res.stdout
            and f'move {work}/fold_casme2_01 away' in res.stdout), res.stdout
    assert res.stdout.count(': skipped') == 2
    assert json.loads(preds.read_text()) == data       # left as it is


def test_fold_threads_share_the_allowed_cores_and_keep_a_set_cap(monkeypatch):
    from raicl_mm.protocol.loso import fold_threads
    monkeypatch.setattr(os, 'sched_getaffinity', lambda pid: set(range(8)),
                        raising=False)
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    assert fold_threads(2) == 4
    assert fold_threads(3) == 2
    assert fold_threads(16) == 1  # never 0
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    assert fold_threads(2) == 1  # the caller's cap wins
    monkeypatch.setenv('OMP_NUM_THREADS', '16')
    assert fold_threads(2) == 4  # a cap is not a floor
    for junk in ('', 'x', '0', '-3'):
        monkeypatch.setenv('OMP_NUM_THREADS', junk)
        assert fold_threads(2) == 4
