"""tools/train.py and tools/test.py end to end through the real Runner."""
import json

import pytest
import torch

from conftest import run_tool, run_tool_here

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def trained(tiny_config, tmp_path_factory):
    work = tmp_path_factory.mktemp('train') / 'fold'
    res = run_tool('train.py', tiny_config, '--fold', '0', '--work-dir', work)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return work, res


def test_train_writes_checkpoints_and_fold_predictions(trained):
    work, res = trained
    assert (work / 'epoch_2.pth').is_file()
    assert (work / 'last_checkpoint').is_file()
    preds = json.loads((work / 'predictions.json').read_text())
    assert preds['classes'] == ['negative', 'positive', 'surprise']
    # fold 0 = the first subject of the tiny set: its 3 clips, no others.
    subjects = {p['subject'] for p in preds['predictions']}
    assert subjects == {'01'} and len(preds['predictions']) == 3
    log = (res.stdout + res.stderr)
    for term in ('loss_cls', 'loss_acl', 'loss_align', 'loss_c'):
        assert term in log


def test_test_tool_reproduces_the_fold_predictions(trained, tiny_config):
    work, _ = trained
    dump = work / 'again.json'
    res = run_tool('test.py', tiny_config, work / 'epoch_2.pth', '--fold', '0',
                   '--work-dir', work / 'test', '--dump', dump)
    assert res.returncode == 0, res.stderr[-3000:]
    a = json.loads((work / 'predictions.json').read_text())['predictions']
    b = json.loads(dump.read_text())['predictions']
    assert [p['sample_id'] for p in a] == [p['sample_id'] for p in b]
    assert [p['pred'] for p in a] == [p['pred'] for p in b]
    assert torch.allclose(torch.tensor([p['scores'] for p in a]),
                          torch.tensor([p['scores'] for p in b]), atol=1e-5)


def test_resume_continues_from_the_checkpoint(trained, tiny_config):
    work, _ = trained
    res = run_tool('train.py', tiny_config, '--fold', '0', '--work-dir', work,
                   '--resume', '--cfg-options', 'train_cfg.max_epochs=3')
    assert res.returncode == 0, res.stderr[-3000:]
    log = res.stdout + res.stderr
    assert 'resumed epoch: 2' in log.lower() or 'resumed epoch 2' in log.lower()
    assert 'Epoch(train) [3]' in log and 'Epoch(train) [1]' not in log
    assert (work / 'epoch_3.pth').is_file()


def test_foreign_checkpoint_is_refused_by_test_tool(trained, tiny_config,
                                                    tmp_path):
    from argparse import Namespace

    from raicl_mm.compat import load_checkpoint_file
    work, _ = trained
    ckpt = load_checkpoint_file(str(work / 'epoch_2.pth'))
    ckpt['meta']['foreign'] = Namespace(evil=True)
    bad = tmp_path / 'foreign.pth'
    torch.save(ckpt, bad)
    res = run_tool_here('test.py', tiny_config, bad, '--fold', '0', '--work-dir',
                        tmp_path / 'w')
    assert res.returncode != 0
    assert 'argparse.Namespace' in res.stderr
    assert '--trust-checkpoint' in res.stderr
    ok = run_tool('test.py', tiny_config, bad, '--fold', '0', '--work-dir',
                  tmp_path / 'w', '--trust-checkpoint')
    assert ok.returncode == 0, ok.stderr[-2000:]


@pytest.mark.parametrize('tool,args,message', [
    ('train.py', ['configs/does_not_exist.py'], 'config file'),
    ('test.py', ['configs/raicl_synthetic.py', 'nope/epoch_9.pth'],
     'checkpoint nope/epoch_9.pth does not exist'),
])
def test_bad_paths_get_one_line_errors(tool, args, message):
    res = run_tool_here(tool, *args)
    assert res.returncode == 2
    assert message in res.stderr and 'Traceback' not in res.stderr


def test_unknown_fold_is_named(tiny_config, tmp_path):
    res = run_tool_here('train.py', tiny_config, '--fold', 'sub99', '--work-dir',
                        tmp_path)
    assert res.returncode == 2
    assert 'sub99' in res.stderr and 'casme2_01' in res.stderr
    res = run_tool_here('train.py', tiny_config, '--fold', '7', '--work-dir',
                        tmp_path)
    assert res.returncode == 2 and 'out of range' in res.stderr


def test_inner_validation_picks_the_checkpoint_without_the_test_subject(
        tiny_config, tmp_path):
    work = tmp_path / 'inner'
    res = run_tool('train.py', tiny_config, '--fold', '0', '--work-dir', work,
                   '--inner-val', '1', '--inner-val-interval', '1')
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert list(work.glob('best_UF1_epoch_*.pth'))
    preds = json.loads((work / 'predictions.json').read_text())['predictions']
    # scored once, on the test subject only, after training
    assert {p['subject'] for p in preds} == {'01'}
    log = res.stdout + res.stderr
    val_lines = [ln for ln in log.splitlines()
                 if 'Epoch(val)' in ln and 'UF1:' in ln]
    assert len(val_lines) == 2  # inner validation after epochs 1 and 2
    assert 'Epoch(test)' in log


def _five_class_copy(src, dst):
    """The trained checkpoint with a 5-class head: as from another config."""
    ckpt = torch.load(src, map_location='cpu', weights_only=False)
    sd = ckpt['state_dict']
    for key in list(sd):
        if key.endswith('fc.weight'):
            sd[key] = torch.zeros(5, sd[key].shape[1])
        elif key.endswith('fc.bias'):
            sd[key] = torch.zeros(5)
    torch.save(ckpt, dst)
    return dst


def test_checkpoint_of_another_config_is_refused(trained, tiny_config,
                                                 tmp_path):
    work, _ = trained
    five = _five_class_copy(work / 'epoch_2.pth', tmp_path / 'five.pth')
    res = run_tool_here('test.py', tiny_config, five, '--fold', '0', '--work-dir',
                        tmp_path / 't')
    assert res.returncode == 2, res.stderr[-2000:]
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith('error: checkpoint') and 'online.fc.weight' in line
    assert 'does not fit the model' in line
    assert not (tmp_path / 't' / 'predictions_test.json').exists()
    res = run_tool_here('train.py', tiny_config, '--fold', '0', '--work-dir',
                        tmp_path / 'r', '--resume', five)
    assert res.returncode == 2 and 'online.fc.weight' in res.stderr
    assert not (tmp_path / 'r' / 'predictions.json').exists()


def test_cfg_options_win_and_fold_changes_only_the_fold(tiny_config,
                                                        tmp_path):
    dump = tmp_path / 'mine.json'
    res = run_tool('train.py', tiny_config, '--fold', '1', '--work-dir',
                   tmp_path / 'w', '--cfg-options',
                   f'val_evaluator.dump_file={dump}', 'train_cfg.max_epochs=1',
                   'train_cfg.val_begin=1', 'train_cfg.val_interval=1')
    assert res.returncode == 0, res.stderr[-3000:]
    # the option beat the tool's own WORK_DIR/predictions.json
    assert dump.is_file() and not (tmp_path / 'w' / 'predictions.json').exists()
    preds = json.loads(dump.read_text())['predictions']
    assert {p['subject'] for p in preds} == {'02'}
    from mmengine.config import Config
    cfg = Config.fromfile(str(tmp_path / 'w' / 'tiny.py'))
    assert [cfg[f'{n}_dataloader'].dataset.fold for n in
            ('train', 'val', 'test')] == ['casme2_02'] * 3
    assert cfg.train_cfg.val_interval == 1 and cfg.train_cfg.max_epochs == 1


def test_seed_keeps_mmaction2s_rule_and_says_so(tiny_config, tmp_path):
    res = run_tool_here('train.py', tiny_config, '--seed', '3', '--work-dir',
                        tmp_path)
    assert res.returncode == 2
    assert 'randomness.seed=3' in res.stderr.strip().splitlines()[-1]


def test_test_tool_dumps_pickle_and_shows_confusion(trained, tiny_config,
                                                    tmp_path):
    import pickle
    work, _ = trained
    res = run_tool('test.py', tiny_config, work / 'epoch_2.pth', '--fold', '0',
                   '--work-dir', tmp_path / 't', '--dump', tmp_path / 'r.pkl',
                   '--show-dir', tmp_path / 'show')
    assert res.returncode == 0, res.stderr[-3000:]
    with open(tmp_path / 'r.pkl', 'rb') as f:
        dumped = pickle.load(f)
    assert len(dumped) == 3 and {d['subject'] for d in dumped} == {'01'}
    assert (tmp_path / 't' / 'predictions_test.json').is_file()
    assert list((tmp_path / 'show').glob('confusion_*.png'))


def test_test_tool_mode_ensemble_scores_every_instance(trained, tiny_config,
                                                       tmp_path):
    work, _ = trained
    res = run_tool('test.py', tiny_config, work / 'epoch_2.pth', '--fold', '0',
                   '--work-dir', tmp_path / 'e', '--mode', 'ensemble',
                   '--dump', tmp_path / 'e.json')
    assert res.returncode == 0, res.stderr[-3000:]
    middle = json.loads((work / 'predictions.json').read_text())['predictions']
    ens = json.loads((tmp_path / 'e.json').read_text())['predictions']
    assert [p['sample_id'] for p in middle] == [p['sample_id'] for p in ens]
    # the mean over the instances is not the middle instance's softmax
    assert not torch.allclose(torch.tensor([p['scores'] for p in middle]),
                              torch.tensor([p['scores'] for p in ens]),
                              atol=1e-6)
    dumped = next((tmp_path / 'e').glob('*.py')).read_text()
    assert "ensemble=True" in dumped
    bad = run_tool_here('test.py', tiny_config, work / 'epoch_2.pth',
                        '--mode', 'mean')
    assert bad.returncode == 2 and 'mode' in bad.stderr


def test_set_test_mode_sets_every_scoring_pipeline():
    from mmengine.config import Config
    from raicl_mm.engine.cli import ToolError, set_test_mode
    pair = dict(type='SampleInstancePair', test_mode=True)
    cfg = Config(dict(
        test_pipeline=[dict(pair)],
        val_dataloader=dict(dataset=dict(pipeline=[dict(pair)],
                                         sampling=dict(num_instances=8))),
        test_dataloader=dict(dataset=dict(pipeline=[dict(pair)],
                                          sampling=dict(num_instances=8)))))
    assert set_test_mode(cfg, 'ensemble') == 3
    for p in (cfg.test_pipeline, cfg.val_dataloader.dataset.pipeline,
              cfg.test_dataloader.dataset.pipeline):
        assert p[0]['ensemble'] is True and p[0]['pad_to'] == 8
    assert set_test_mode(cfg, 'middle') == 3
    assert cfg.test_pipeline[0]['ensemble'] is False
    assert cfg.test_pipeline[0]['pad_to'] is None
    with pytest.raises(ToolError, match='SampleInstancePair'):
        set_test_mode(Config(dict(test_dataloader=dict(dataset=dict(
            pipeline=[dict(type='FlowNormalize')])))), 'ensemble')
    with pytest.raises(ToolError, match='--mode'):
        set_test_mode(cfg, 'mean')


def test_set_test_mode_pads_to_the_samplings_own_default():
    from mmengine.config import Config
    from raicl_mm.datasets.sampling import SamplingConfig
    from raicl_mm.engine.cli import set_test_mode
    cfg = Config(dict(test_dataloader=dict(dataset=dict(
        pipeline=[dict(type='SampleInstancePair', test_mode=True)]))))
    set_test_mode(cfg, 'ensemble')
    assert cfg.test_dataloader.dataset.pipeline[0]['pad_to'] == \
        SamplingConfig().num_instances
