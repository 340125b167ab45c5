"""Transitional: the old tool glue, as a read-only view of the new configs.

Data settings now live in the loaders' dataset dicts
(:mod:`raicl_mm.engine.config`); tools that still read ``cfg.protocol``,
``cfg.flow_cfg``... get a copy of the config with the test loader's data
settings mirrored at the top level (never pass that copy to a Runner). New
code uses :func:`raicl_mm.engine.config.data_settings` and
:mod:`raicl_mm.engine.cli`; this module goes once no tool imports it.
"""
from __future__ import annotations

import copy
from typing import Optional

from raicl_mm.engine.cli import ToolError, add_common_args, parse_tool_args  # noqa: F401
from raicl_mm.engine.config import (ConfigError, check_config, data_settings,
                                    flow_datasets, load_records)  # noqa: F401

DATA_KEYS = ('protocol', 'data_roots', 'ann_files', 'exclude_file',
             'flow_cfg', 'sampling', 'flow_cache', 'flow_workers', 'inner_val',
             'synthetic')


def load_config(path: str, cfg_options: Optional[dict] = None):
    """Read a config, merge ``--cfg-options``, check it, and mirror the data
    settings at the top level (a read-only view for older tools)."""
    from raicl_mm.engine.cli import read_config
    cfg = read_config(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    try:
        check_config(cfg)
        ds = data_settings(cfg)
    except ConfigError as err:
        raise ToolError(str(err)) from None
    view = copy.deepcopy(cfg)
    for key in DATA_KEYS:
        if key in ds:
            view[key] = copy.deepcopy(ds[key])
    return view


def prepare_embedded_data(cfg) -> Optional[dict]:
    """Generate the synthetic set if the config asks for it."""
    spec = cfg.get('synthetic')
    if not spec:
        return None
    from raicl_mm.datasets.dataset import prepare_synthetic
    return prepare_synthetic(dict(spec))


def protocol_folds(cfg):
    from raicl_mm.engine.config import fold_keys
    return fold_keys(cfg)


def apply_fold(cfg, fold) -> str:
    """Select a LOSO fold on every loader; returns the fold key."""
    from raicl_mm.engine import cli
    return cli.apply_fold(cfg, fold)


def use_all_subjects(cfg) -> None:
    """No fold: train on every subject and do not validate."""
    from raicl_mm.engine import cli
    cli.apply_fold(cfg, 'all')
