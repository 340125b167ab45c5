"""mmaction2's own tools/train.py and tools/test.py run our configs unchanged.

The tools are the ones shipped inside the installed ``mmaction`` package
(``mmaction/.mim/tools/``, what ``mim train mmaction`` runs); no network and no
project tool is involved: the config alone loads the plugin
(``custom_imports``), generates the embedded data (the dataset's
``synthetic``), and builds :class:`raicl_mm.engine.runner.RaICLRunner`
(``runner_type``), which refuses keys that reach nothing.
"""
import importlib.util
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_tool_here

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / 'configs' / 'raicl_synthetic.py'
ONE_EPOCH = ['train_cfg.max_epochs=1', 'train_cfg.val_begin=1',
             'train_cfg.val_interval=1']
#: the embedded set with 3 clips a subject instead of 12 (the layout, the 8
#: subjects and every other setting are the config's): a quarter of the flow
#: to compute. Every loader gets it (a loader left out is refused).
SMALL_SET = [f'{n}_dataloader.dataset.synthetic.clips_per_subject=3'
             for n in ('train', 'val', 'test')]


def _mmaction_tool(name):
    spec = importlib.util.find_spec('mmaction')
    path = Path(spec.submodule_search_locations[0]) / '.mim' / 'tools' / name
    if not path.is_file():
        pytest.skip(f'the installed mmaction2 ships no {path}')
    return path


def _run(tool, *args, cwd, timeout=900):
    env = dict(os.environ)  # OMP_NUM_THREADS: conftest.THREADS
    env.pop('PYTHONPATH', None)  # the plugin comes from the installed package
    return subprocess.run([sys.executable, str(_mmaction_tool(tool)),
                           *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """One epoch of the config's default fold with mmaction2's train.py, in a
    fresh folder (so the synthetic set and the flow cache are made there)."""
    cwd = tmp_path_factory.mktemp('stock')
    res = _run('train.py', CONFIG, '--work-dir', 'wd', '--cfg-options',
               *ONE_EPOCH, *SMALL_SET, cwd=cwd)
    assert res.returncode == 0, res.stderr[-3000:]
    return cwd, res


@pytest.mark.slow
def test_stock_train_runs_the_default_fold(trained):
    cwd, res = trained
    assert (cwd / 'data' / 'synthetic' / 'CASME2-coding-synthetic.xlsx').is_file()
    assert (cwd / 'wd' / 'epoch_1.pth').is_file()
    log = res.stdout + res.stderr
    assert 'RaICLRunner' in log
    assert 'Epoch(val) [1]' in log and 'UF1:' in log


def _dumped(path):
    with open(path, 'rb') as f:
        return pickle.load(f)  # our own file, written by DumpResults


@pytest.mark.slow
def test_stock_test_scores_the_checkpoint_and_a_fold_override(trained):
    cwd, _ = trained
    res = _run('test.py', CONFIG, 'wd/epoch_1.pth', '--work-dir', 'wt',
               '--dump', 'wt/default.pkl', '--cfg-options', *SMALL_SET,
               cwd=cwd)
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'Epoch(test)' in res.stdout + res.stderr
    default = _dumped(cwd / 'wt' / 'default.pkl')
    assert {d['fold'] for d in default} == {'casme2_01'}  # fold 0
    # mmaction2's style: the fold of every loader, as any other setting.
    res = _run('test.py', CONFIG, 'wd/epoch_1.pth', '--work-dir', 'wt',
               '--dump', 'wt/fold3.pkl', '--cfg-options', *SMALL_SET,
               *[f'{n}_dataloader.dataset.fold=3'
                 for n in ('train', 'val', 'test')], cwd=cwd)
    assert res.returncode == 0, res.stderr[-3000:]
    fold3 = _dumped(cwd / 'wt' / 'fold3.pkl')
    assert {d['fold'] for d in fold3} == {'casme2_04'}
    assert len(fold3) == 3  # the subject's clips (SMALL_SET)
    assert len(default) == 3


@pytest.mark.parametrize('option,message', [
    ('max_epochs=1', "top-level config key 'max_epochs' reaches nothing"),
    ('flow_cach=x', "top-level config key 'flow_cach' reaches nothing"),
    ('train_dataloader.dataset.fold=3',
     'train_dataloader.dataset.fold = 3 but val_dataloader.dataset.fold = 0'),
])
def test_stock_train_refuses_a_dead_or_partial_override(tmp_path, option,
                                                        message):
    # refused before any work: run in this interpreter (conftest.run_tool_here)
    res = run_tool_here(_mmaction_tool('train.py'), CONFIG, '--work-dir', 'wd',
                        '--cfg-options', option, cwd=tmp_path)
    assert res.returncode != 0
    assert message in res.stderr
    assert not (tmp_path / 'data').exists()  # refused before any work
