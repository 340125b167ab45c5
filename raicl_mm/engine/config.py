"""What a Ra-ICL config must satisfy before anything is built.

Every data setting lives in the dataset dicts of ``train_dataloader``,
``val_dataloader`` and ``test_dataloader`` (mmaction2's convention), where a
child config and ``--cfg-options`` reach it. Two mistakes would otherwise pass
in silence, so :func:`check_config` refuses them with one line:

* a top-level key that no part of MMEngine reads (``max_epochs=1``,
  ``flow_cach=...``, ``data_root.casme2=...``): mmengine copies config
  variables into the dicts when the file is parsed, so overriding the variable
  afterwards changes nothing;
* loaders that disagree on a data setting (an override that reached only
  ``train_dataloader.dataset``): the model would be trained on one fold, flow
  or sampling and scored on another.

The same function runs in our tools and, through ``runner_type =
'RaICLRunner'`` (:mod:`raicl_mm.engine.runner`), in mmaction2's own
``tools/train.py`` / ``tools/test.py`` and ``mim train mmaction``.
"""
from __future__ import annotations

import difflib
import inspect
from typing import List, Sequence

# The dataset's own settings live in datasets/ (engine imports datasets, never
# the reverse); re-exported here for the importers of this module.
from raicl_mm.datasets.settings import (  # noqa: F401
    DATASET_TYPE, LOADERS, SHARED_DATA_KEYS, ConfigError, as_plain as _as_plain,
    check_loaders_agree as _check_loaders_agree, data_settings, flow_datasets,
    set_data_setting)
from raicl_mm.datasets.synthetic_set import prepare_synthetic

#: Top-level keys read by MMEngine / mmaction2 besides the Runner's arguments.
_EXTRA_KEYS = {
    'default_scope', 'custom_imports', 'runner_type', 'launcher', 'work_dir',
    'compile', 'model_wrapper_cfg', 'resume', 'load_from',
    # mmaction2's convention: pipelines as top-level variables (checked
    # against the loaders below, so a changed copy is not silently dead)
    'train_pipeline', 'val_pipeline', 'test_pipeline',
    # ours: opt-in for a checkpoint outside mmengine's own types, and the key
    # prefixes a checkpoint may lack on purpose (raicl_mm.engine.runner)
    'trust_checkpoint', 'partial_checkpoint',
}


def allowed_top_level_keys() -> set:
    """Keys that reach something: the Runner's arguments and :data:`_EXTRA_KEYS`."""
    from mmengine.runner import Runner
    params = set(inspect.signature(Runner.__init__).parameters) - {'self',
                                                                  'cfg'}
    return params | _EXTRA_KEYS


def _check_top_level(cfg) -> None:
    allowed = allowed_top_level_keys()
    for key in cfg.keys():
        if key in allowed:
            continue
        close = difflib.get_close_matches(key, sorted(allowed), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ''
        nested = [f'{n}.dataset.{key}' for n, ds in flow_datasets(cfg)
                  if key in ds]
        if not nested and not close:
            names = sorted({k for _, ds in flow_datasets(cfg) for k in ds})
            near = difflib.get_close_matches(key, names, n=1)
            if near:
                hint = (f"; did you mean the dataset setting '{near[0]}' "
                        f'(train_dataloader.dataset.{near[0]} and the other '
                        f'loaders)?')
        if nested:
            hint = (f'; the setting lives in {", ".join(nested)} (set it for '
                    f'every loader, e.g. tools/train.py --fold, or in a child '
                    f'config)')
        elif key in ('max_epochs', 'val_interval', 'val_begin'):
            hint = f'; the setting is train_cfg.{key}'
        elif key == 'batch_size':
            hint = '; the setting is train_dataloader.batch_size'
        raise ConfigError(f"top-level config key '{key}' reaches nothing"
                          f'{hint}')


def _check_pipelines(cfg) -> None:
    pairs = (('train_pipeline', ('train_dataloader',)),
             ('val_pipeline', ('val_dataloader',)),
             ('test_pipeline', ('val_dataloader', 'test_dataloader')
              if 'val_pipeline' not in cfg else ('test_dataloader',)))
    found = dict(flow_datasets(cfg))
    for top, loaders in pairs:
        if top not in cfg:
            continue
        for name in loaders:
            ds = found.get(name)
            if ds is None:
                continue
            if _as_plain(cfg[top]) != _as_plain(ds.get('pipeline')):
                raise ConfigError(
                    f'top-level {top} differs from {name}.dataset.pipeline: '
                    f'the top-level copy reaches nothing; change '
                    f'{name}.dataset.pipeline')


def _check_loader_numbers(cfg) -> None:
    for name in LOADERS:
        loader = cfg.get(name)
        if not loader:
            continue
        bs = loader.get('batch_size')
        if bs is not None and (isinstance(bs, bool) or not isinstance(bs, int)
                               or bs < 1):
            raise ConfigError(f'{name}.batch_size = {bs!r}: must be a '
                              f'positive integer')
        nw = loader.get('num_workers')
        if nw is not None and (not isinstance(nw, int) or nw < 0):
            raise ConfigError(f'{name}.num_workers = {nw!r}: must be an '
                              f'integer >= 0')
    train_cfg = cfg.get('train_cfg') or {}
    for key in ('max_epochs', 'val_interval', 'val_begin'):
        val = train_cfg.get(key)
        if val is not None and (not isinstance(val, int) or val < 1):
            raise ConfigError(f'train_cfg.{key} = {val!r}: must be a positive '
                              f'integer')
    epochs, begin = train_cfg.get('max_epochs'), train_cfg.get('val_begin', 1)
    if (epochs is not None and cfg.get('val_dataloader') and cfg.get('val_cfg')
            and isinstance(begin, int) and begin > epochs):
        # MMEngine would train and never score the fold, with exit status 0.
        raise ConfigError(
            f'train_cfg.val_begin = {begin} > train_cfg.max_epochs = '
            f'{epochs}: the fold would never be scored; set '
            f'train_cfg.val_begin (and val_interval) too, e.g. '
            f'train_cfg.val_begin={epochs} train_cfg.val_interval={epochs}')


def check_config(cfg) -> None:
    """Refuse dead top-level keys, disagreeing loaders and bad numbers.

    Raises:
        ConfigError: One line naming the key.
    """
    _check_top_level(cfg)
    _check_loaders_agree(cfg)
    _check_pipelines(cfg)
    _check_loader_numbers(cfg)


def fold_keys(cfg) -> List[str]:
    """The protocol's LOSO fold keys (parses the sheets, computes no flow)."""
    from raicl_mm.datasets.folds import list_folds
    return list_folds(load_records(cfg).records)


def load_records(cfg):
    """ParseReport of the config's protocol (all subjects)."""
    from raicl_mm.datasets.sources import build_records
    ds = data_settings(cfg)
    if ds.get('synthetic'):
        # the sheet to read is generated first, as the dataset would
        prepare_synthetic(dict(ds['synthetic']))
    return build_records(ds['protocol'], dict(ds.get('data_roots') or {}),
                         dict(ds.get('ann_files') or {}),
                         exclude_file=ds.get('exclude_file'))


def resolve_folds(fold, folds: Sequence[str]):
    """``--fold`` text -> a fold key, or a list of keys for ``a,b,c``."""
    from raicl_mm.datasets.folds import resolve_fold
    if isinstance(fold, (list, tuple)):
        parts = list(fold)
    else:
        parts = [p for p in str(fold).split(',') if p.strip()]
    if not parts:
        raise ConfigError(f'--fold {fold!r} names no subject (an index, a fold key '
                          'or a subject id; several comma-separated)')
    keys = [resolve_fold(p, folds) for p in parts]
    if len(set(keys)) != len(keys):
        raise ConfigError(f'--fold {fold}: a subject is named twice')
    if len(keys) == len(folds):
        raise ConfigError(f'--fold {fold}: every subject would be tested, '
                          f'none would be left to train on')
    return keys[0] if len(keys) == 1 else keys
