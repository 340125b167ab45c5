"""RaICLRunner: MMEngine's Runner, after the config checks of this project.

Registered in mmaction2's ``RUNNERS`` and named by every config
(``runner_type = 'RaICLRunner'`` in ``configs/_base_/default_runtime.py``), so
mmaction2's shipped ``tools/train.py`` / ``tools/test.py`` (and ``mim train
mmaction``) build it exactly as ours do: the config is checked
(:func:`raicl_mm.engine.config.check_config`) before the model or any dataset
is built, and checkpoints are loaded by the project's policy.

It changes nothing else: training, validation and testing are MMEngine's.
"""
from __future__ import annotations

from mmaction.registry import RUNNERS
from mmengine.runner import Runner

from .config import check_config


@RUNNERS.register_module()
class RaICLRunner(Runner):
    """:class:`mmengine.runner.Runner` that refuses a config that would be
    silently wrong (dead top-level keys, loaders that disagree)."""

    @classmethod
    def from_cfg(cls, cfg) -> 'RaICLRunner':
        check_config(cfg)
        if cfg.get('trust_checkpoint') and cfg.get('load_from'):
            from raicl_mm import compat
            compat.trust_checkpoint(cfg.load_from)
        return super().from_cfg(cfg)
