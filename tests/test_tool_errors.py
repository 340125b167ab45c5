"""Issue 20, cases 3 and 7: every tool runs the config checks before reading data,
and any user error is one line (the traceback only with --debug / RAICL_DEBUG=1)."""
import importlib.util
import json
import os

import pytest

from conftest import REPO, run_tool_here

DEAD = ['--cfg-options', 'data_roots.casme2=/nonexistent']


def load_tool(name):
    spec = importlib.util.spec_from_file_location(f'tool_{name}', REPO / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _last_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1] if err else ''


def test_dataset_info_refuses_a_dead_override_naming_the_key(capsys, tmp_path):
    status = load_tool('dataset_info').main([str(REPO / 'configs' / 'raicl_synthetic.py'),
                                             *DEAD])
    line = _last_line(capsys)
    assert status == 2
    assert "top-level config key 'data_roots' reaches nothing" in line
    assert 'train_dataloader.dataset.data_roots' in line
    # a data-only config (the data settings as top-level keys) still works,
    # and a key that is not a data setting is refused there too
    cfg = tmp_path / 'data.py'
    cfg.write_text("protocol = 'casme2'\nmax_epochs = 3\n")
    assert load_tool('dataset_info').main([str(cfg), '--sheets-only']) == 2
    assert "'max_epochs' reaches nothing in a data-only config" in _last_line(capsys)


def test_extract_flows_refuses_a_dead_override(capsys):
    status = load_tool('extract_flows').main([str(REPO / 'configs' / 'raicl_synthetic.py'),
                                              *DEAD])
    assert status == 2
    assert "'data_roots' reaches nothing" in _last_line(capsys)


def test_inferencer_refuses_a_dead_override_before_the_checkpoint(tmp_path):
    from raicl_mm.apis import InferenceError, RaICLInferencer
    with pytest.raises(InferenceError, match="'data_roots' reaches nothing"):
        RaICLInferencer(str(REPO / 'configs' / 'raicl_synthetic.py'),
                        str(tmp_path / 'none.pth'), device='cpu',
                        cfg_options={'data_roots.casme2': '/nonexistent'})


def test_infer_out_dir_that_is_a_file_is_refused_before_the_work(tmp_path, capsys):
    out = tmp_path / 'out'
    out.write_text('')
    status = load_tool('infer').main([str(REPO / 'configs' / 'raicl_synthetic.py'),
                                      str(tmp_path / 'x.pth'), str(tmp_path),
                                      '--out-dir', str(out)])
    assert status == 2
    assert _last_line(capsys) == f'error: --out-dir {out} is a file, not a folder'


def test_train_fold_comma_is_one_line(tiny_config, tmp_path):
    res = run_tool_here('train.py', tiny_config, '--fold', ',', '--work-dir', tmp_path / 'w')
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1] == (
        "error: --fold ',' names no subject (an index, a fold key or a subject id; "
        'several comma-separated)')
    assert not (tmp_path / 'w').exists()


def test_test_fold_all_warns_that_it_scores_training_subjects(tiny_config, tmp_path):
    # the checkpoint does not exist: the warning is not what is tested here
    ckpt = tmp_path / 'c.pth'
    ckpt.write_bytes(b'')
    res = run_tool_here('test.py', tiny_config, ckpt, '--fold', 'all', '--work-dir',
                        tmp_path / 'w')
    assert 'warning: --fold all scores every subject of the protocol, including those ' \
        'the checkpoint was trained on' in res.stderr
    assert res.returncode == 2 and 'Traceback' not in res.stderr


def test_damaged_predictions_are_one_line_and_debug_shows_the_traceback(tmp_path):
    (tmp_path / 'loso_plan.json').write_text(json.dumps(dict(
        folds=['a_1'], classes=['x', 'y'], fold_samples={'a_1': ['s']})))
    (tmp_path / 'fold_a_1').mkdir()
    (tmp_path / 'fold_a_1' / 'predictions.json').write_text(
        json.dumps(dict(classes=['x', 'y'], predictions=[1, 2])))
    res = run_tool_here('loso_report.py', tmp_path)
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if 'Warning' not in ln and 'warn' not in ln]
    assert len(lines) == 1 and lines[0].startswith('loso_report: ')
    res = run_tool_here('loso_report.py', tmp_path, '--debug')
    assert 'Traceback' in res.stderr


def test_a_damaged_plan_is_one_line_in_loso(tiny_config, tmp_path):
    work = tmp_path / 'w'
    work.mkdir()
    (work / 'loso_plan.json').write_text(json.dumps(dict(folds=[1, 2], classes=['x'])))
    res = run_tool_here('loso.py', tiny_config, '--work-dir', work, '--task', '0')
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1] == (
        f'error: {work}/loso_plan.json: "folds" must be a list of strings')


def test_main_guard_names_an_unexpected_error_and_the_debug_switch(capsys, monkeypatch):
    from raicl_mm.engine.cli import main_guard

    def broken(argv=None):
        raise RuntimeError('boom\nsecond line')
    monkeypatch.delenv('RAICL_DEBUG', raising=False)
    assert main_guard(broken, [], tool='x') == 1
    assert _last_line(capsys) == ('x: error: RuntimeError: boom (rerun with --debug or '
                                  'RAICL_DEBUG=1 for the traceback)')
    assert main_guard(lambda argv=None: (_ for _ in ()).throw(FileExistsError('f')), []) == 2
    monkeypatch.setenv('RAICL_DEBUG', '1')
    with pytest.raises(RuntimeError):
        main_guard(broken, [])
    os.environ.pop('RAICL_DEBUG', None)


def test_loso_report_out_that_is_a_file_is_refused_first(tmp_path, capsys):
    (tmp_path / 'loso_plan.json').write_text(json.dumps(dict(folds=['a_1'], classes=['x'])))
    out = tmp_path / 'out'
    out.write_text('')
    assert load_tool('loso_report').main([str(tmp_path), '--out', str(out)]) == 2
    assert _last_line(capsys) == f'loso_report: --out {out} is a file, not a folder'
