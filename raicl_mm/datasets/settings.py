"""The dataset's settings in a config: where they live and how they are read.

Every data setting lives in the dataset dicts of ``train_dataloader``,
``val_dataloader`` and ``test_dataloader`` (mmaction2's convention). This
module owns what a :class:`~raicl_mm.datasets.dataset.MicroExpressionFlowDataset`
dict is: the loaders that carry one, the keys train and score must share,
how the dict describing a config's data is found, and the check that the
loaders agree. :mod:`raicl_mm.engine.config` builds its whole-config checks on
top of it (engine imports datasets, never the reverse).
"""
from __future__ import annotations

from typing import Iterator, Optional, Tuple

DATASET_TYPE = 'MicroExpressionFlowDataset'
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')

#: Dataset settings that train and score must share (``split``,
#: ``test_mode``, ``pipeline`` and ``flow_workers`` may differ).
SHARED_DATA_KEYS = ('protocol', 'data_roots', 'ann_files', 'exclude_file',
                    'flow_cfg', 'sampling', 'flow_cache', 'fold', 'synthetic',
                    'inner_val', 'holdout', 'on_missing', 'uncropped')


class ConfigError(ValueError):
    """A config mistake, reported in one line that names the key."""


def flow_datasets(cfg) -> Iterator[Tuple[str, dict]]:
    """``(loader name, dataset dict)`` of every Ra-ICL dataset of the config."""
    for name in LOADERS:
        loader = cfg.get(name)
        if not loader:
            continue
        ds = loader.get('dataset')
        if ds is not None and ds.get('type') == DATASET_TYPE:
            yield name, ds


def data_settings(cfg, loader: Optional[str] = None) -> dict:
    """The dataset dict that describes the config's data.

    Args:
        cfg: A Ra-ICL config.
        loader: Which loader to read; default: the test loader, else the first
            Ra-ICL dataset found.

    Raises:
        ConfigError: The config has no ``MicroExpressionFlowDataset``.
    """
    found = dict(flow_datasets(cfg))
    if loader is not None:
        if loader not in found:
            raise ConfigError(f'{loader}.dataset is not a {DATASET_TYPE}')
        return found[loader]
    for name in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
        if name in found:
            return found[name]
    raise ConfigError(f'the config has no {DATASET_TYPE} in '
                      f'{", ".join(LOADERS)}')


def set_data_setting(cfg, key: str, value) -> None:
    """Set ``dataset.<key>`` of every Ra-ICL loader (what ``--fold`` does)."""
    for _, ds in flow_datasets(cfg):
        ds[key] = value


def as_plain(value):
    """ConfigDict / tuple-vs-list agnostic form for comparisons; MMEngine's
    ``_scope_`` tag (which package a ``pkg::`` base came from) is left out."""
    if isinstance(value, dict):
        return {k: as_plain(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return [as_plain(v) for v in value]
    return value


def check_loaders_agree(cfg) -> None:
    """Refuse loaders that disagree on a :data:`SHARED_DATA_KEYS` setting.

    Raises:
        ConfigError: One line naming both loaders and the key.
    """
    sets = list(flow_datasets(cfg))
    if len(sets) < 2:
        return
    first_name, first = sets[0]
    for name, ds in sets[1:]:
        for key in SHARED_DATA_KEYS:
            a, b = as_plain(first.get(key)), as_plain(ds.get(key))
            if a != b:
                raise ConfigError(
                    f'{first_name}.dataset.{key} = {a!r} but {name}.dataset.'
                    f'{key} = {b!r}: train and score must use the same '
                    f'{key}; set it for every loader (tools/train.py --fold '
                    f'does so for the fold)')
