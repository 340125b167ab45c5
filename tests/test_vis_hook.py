"""A run of mmaction2's own tools/train.py (what `mim train` runs) on a tiny
config: pictures reach TensorBoard, the console stays short, the checkpoint
says what it was trained on; plus the pieces (log filters, provenance)."""
import glob
import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def _events(folder):
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    files = glob.glob(str(folder / '**' / 'events.out.tfevents.*'),
                      recursive=True)
    assert len(files) == 1, files
    acc = EventAccumulator(files[0], size_guidance={'images': 0,
                                                    'scalars': 0})
    acc.Reload()
    tags = acc.Tags()
    return ({t: len(acc.Images(t)) for t in tags['images']},
            {t: len(acc.Scalars(t)) for t in tags['scalars']})


@pytest.fixture(scope='module')
def stock_run(tiny_config, tmp_path_factory):
    spec = importlib.util.find_spec('mmaction')
    tool = Path(spec.submodule_search_locations[0]) / '.mim' / 'tools' / \
        'train.py'
    if not tool.is_file():
        pytest.skip(f'the installed mmaction2 ships no {tool}')
    cwd = tmp_path_factory.mktemp('vis_hook')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env.pop('PYTHONPATH', None)
    env.pop('RAICL_CONSOLE_DUMPS', None)
    res = subprocess.run([sys.executable, str(tool), str(tiny_config),
                          '--work-dir', 'wd'], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return cwd / 'wd', res


def test_tensorboard_gets_confusion_and_cam_strip(stock_run):
    work, _ = stock_run
    images, scalars = _events(work)
    # the tiny config validates once (after epoch 2)
    assert images == {'val_confusion': 1, 'val_cam_strip': 1}
    assert {'loss', 'loss_cls', 'UF1', 'UAR', 'accuracy'} <= set(scalars)
    pngs = sorted(p.name for p in work.glob('*/vis_data/vis_image/*.png'))
    assert pngs == ['val_cam_strip_2.png', 'val_confusion_2.png']


def test_console_is_short_and_the_log_file_has_the_dumps(stock_run):
    work, res = stock_run
    console = res.stdout + res.stderr
    for absent in ('Config:', 'System environment', 'Hooks will be executed',
                   'MultiScaleDeformableAttention', 'The prefix is not set',
                   '"FileClient" will be deprecated', 'HardDiskBackend'):
        assert absent not in console, absent
    assert 'RaICLRunner: environment, config and hook order: see' in console
    assert len(console.splitlines()) < 60, len(console.splitlines())
    log = next(work.glob('*/*.log')).read_text()
    for present in ('Config:', 'System environment', 'Hooks will be executed',
                    'RaICLVisualizationHook'):
        assert present in log, present


def test_checkpoint_records_its_training_data(stock_run):
    work, _ = stock_run
    ckpt = torch.load(work / 'epoch_2.pth', map_location='cpu',
                      weights_only=False)
    assert ckpt['meta']['raicl_train_data'] == 'synthetic'


def test_quiet_console_filters_by_message(monkeypatch, capsys):
    from raicl_mm.engine.logs import CONSOLE_DUMPS_ENV, quiet_console
    for asked in (False, True):
        if asked:
            monkeypatch.setenv(CONSOLE_DUMPS_ENV, '1')
        else:
            monkeypatch.delenv(CONSOLE_DUMPS_ENV, raising=False)
        logger = logging.getLogger(f'raicl_test_quiet_{asked}')
        logger.propagate = False
        handler = logging.StreamHandler(sys.stdout)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        quiet_console(logger, 'run.log', who='R')
        logger.info('Config:\nmodel = 1')
        logger.info('Hooks will be executed in the following order:\nx')
        logger.info('Epoch(train) [1][1/3]')
        logger.warning('"FileClient" will be deprecated in future. Please')
        logger.warning('something else')
        out = capsys.readouterr().out
        assert 'Epoch(train) [1][1/3]' in out and 'something else' in out
        assert 'FileClient' not in out
        if asked:
            assert 'model = 1' in out and 'Hooks will be executed' in out
        else:
            assert 'model = 1' not in out and 'Hooks will' not in out
            assert out.count('R: environment, config and hook order: see '
                             'run.log') == 1


def test_provenance_warns_once_for_synthetic_on_real(tmp_path):
    import warnings
    from raicl_mm.apis import provenance
    meta = {'raicl_train_data': 'synthetic'}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        assert provenance.warn_if_synthetic(meta, str(tmp_path / 'a.pth'))
        assert provenance.warn_if_synthetic(meta, str(tmp_path / 'a.pth'))
        assert not provenance.warn_if_synthetic(meta, 'b.pth',
                                                real_data=False)
        assert not provenance.warn_if_synthetic({'raicl_train_data': 'real'},
                                                'c.pth')
        assert not provenance.warn_if_synthetic({}, 'd.pth')
    hits = [w for w in caught
            if issubclass(w.category, provenance.SyntheticCheckpointWarning)]
    assert len(hits) == 1 and 'a.pth' in str(hits[0].message)


def test_provenance_of_configs():
    from mmengine.config import Config
    from raicl_mm.apis.provenance import train_data_kind
    assert train_data_kind(Config.fromfile(
        str(REPO / 'configs' / 'raicl_synthetic.py'))) == 'synthetic'
    assert train_data_kind(Config.fromfile(
        str(REPO / 'configs' / 'raicl_cde.py'))) == 'real'
