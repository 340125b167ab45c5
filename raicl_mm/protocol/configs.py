"""A config file with ``--cfg-options``-style overrides, as a plain dict.

Shared by the ablation runner and the attention measurements (one place, so
that neither imports the other).
"""
from __future__ import annotations

import argparse
import os.path as osp
from typing import Dict, Sequence


class ConfigFileError(ValueError):
    """Bad input to the runner (the message names the file, key or option)."""


def load_cfg(config: str, cfg_options: Sequence[str] = ()) -> Dict:
    """A config (with ``key=value`` overrides, as ``--cfg-options``) as a dict."""
    from mmengine.config import Config, DictAction
    if not osp.isfile(config):
        raise ConfigFileError(f'config {config!r} not found')
    cfg = Config.fromfile(config)
    if cfg_options:
        parser = argparse.ArgumentParser()
        parser.add_argument('--cfg-options', nargs='+', action=DictAction)
        cfg.merge_from_dict(parser.parse_args(
            ['--cfg-options', *cfg_options]).cfg_options)
    return cfg.to_dict()
