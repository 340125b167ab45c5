"""Config checks (raicl_mm.engine.config): nothing reaches nowhere in silence."""
import pytest
from mmengine.config import Config

import raicl_mm  # noqa: F401
from raicl_mm.engine.config import (ConfigError, check_config, data_settings,
                                    resolve_folds)

SYNTH = 'configs/raicl_synthetic.py'


def _cfg(**options):
    cfg = Config.fromfile(SYNTH)
    if options:
        cfg.merge_from_dict(options)
    return cfg


def test_shipped_config_passes():
    check_config(_cfg())


@pytest.mark.parametrize('key,value,expect', [
    ('max_epochs', 1, "'max_epochs' reaches nothing; the setting is "
                      'train_cfg.max_epochs'),
    ('batch_size', 4, 'train_dataloader.batch_size'),
    ('flow_cach', 'x', "'flow_cach' reaches nothing; did you mean the dataset "
                       "setting 'flow_cache'"),
    ('data_roots.casme2', 'x', 'lives in train_dataloader.dataset.data_roots'),
    ('sampling.strategy', 'full', 'lives in train_dataloader.dataset.sampling'),
])
def test_dead_top_level_key_is_refused_with_its_name(key, value, expect):
    with pytest.raises(ConfigError, match='reaches nothing') as err:
        check_config(_cfg(**{key: value}))
    assert expect in str(err.value)
    assert '\n' not in str(err.value)


def test_override_of_one_loader_only_is_refused():
    with pytest.raises(ConfigError) as err:
        check_config(_cfg(**{'train_dataloader.dataset.fold': 3}))
    assert str(err.value).startswith('train_dataloader.dataset.fold = 3 but '
                                     'val_dataloader.dataset.fold = 0')


def test_override_of_every_loader_takes_effect():
    opts = {f'{n}_dataloader.dataset.sampling.strategy': 'full'
            for n in ('train', 'val', 'test')}
    cfg = _cfg(**opts)
    check_config(cfg)
    assert data_settings(cfg)['sampling']['strategy'] == 'full'
    assert cfg.train_dataloader.dataset.sampling.num_instances == 16


def test_dead_pipeline_copy_is_refused():
    cfg = _cfg()
    cfg.test_pipeline = cfg.test_pipeline[:-1]
    with pytest.raises(ConfigError, match='top-level test_pipeline differs'):
        check_config(cfg)


@pytest.mark.parametrize('key,value', [
    ('train_dataloader.batch_size', -1), ('train_dataloader.batch_size', 0),
    ('train_cfg.max_epochs', 0), ('val_dataloader.num_workers', -2)])
def test_bad_numbers_are_refused(key, value):
    with pytest.raises(ConfigError, match=key.replace('.', r'\.')):
        check_config(_cfg(**{key: value}))


def test_fold_lists_resolve_and_refuse_nonsense():
    folds = ['casme2_01', 'casme2_02', 'casme2_03', 'casme2_04']
    assert resolve_folds('1', folds) == 'casme2_02'
    assert resolve_folds('01,casme2_03', folds) == ['casme2_01', 'casme2_03']
    with pytest.raises(ConfigError, match='named twice'):
        resolve_folds('0,casme2_01', folds)
    with pytest.raises(ConfigError, match='none would be left'):
        resolve_folds('0,1,2,3', folds)
    with pytest.raises(ValueError, match='no such subject'):
        resolve_folds('99x', folds)


def test_fold_that_would_never_be_scored_is_refused():
    with pytest.raises(ConfigError, match='the fold would never be scored'):
        check_config(_cfg(**{'train_cfg.max_epochs': 5}))
    check_config(_cfg(**{'train_cfg.max_epochs': 5, 'train_cfg.val_begin': 5,
                         'train_cfg.val_interval': 5}))


def test_our_tools_check_a_config_without_runner_type(capsys):
    """A config of the user's own that names no runner_type is still checked
    by our tools (built with RaICLRunner), not handed to a bare Runner."""
    from raicl_mm.engine.cli import run_tool
    cfg = _cfg(max_epochs=1)
    cfg.pop('runner_type')
    status = run_tool(lambda _: cfg, None, lambda runner, args: None)
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("error: top-level config key 'max_epochs' reaches "
                       'nothing; the setting is train_cfg.max_epochs')
