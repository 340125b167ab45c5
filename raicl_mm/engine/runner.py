"""RaICLRunner: MMEngine's Runner, after the config checks of this project.

Registered in mmaction2's ``RUNNERS`` and named by every config
(``runner_type = 'RaICLRunner'`` in ``configs/_base_/default_runtime.py``), so
mmaction2's shipped ``tools/train.py`` / ``tools/test.py`` (and ``mim train
mmaction``) build it exactly as ours do: the config is checked
(:func:`raicl_mm.engine.config.check_config`) before the model or any dataset
is built, and checkpoints are loaded by the project's policy.

Checkpoints: before MMEngine loads one (``load_from``, ``--resume``, a test),
it is read with the weights-only policy of :mod:`raicl_mm.compat` and compared
with the model (:func:`raicl_mm.engine.checkpoint.check_matches`): a file from
another config (another class count, no MRD head) is refused in one line that
names the keys, instead of MMEngine's log lines and a random head. Loading a
part on purpose (a backbone-only checkpoint) is
``partial_checkpoint=[<key prefixes left at initialisation>]`` in the config.

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

    def build_logger(self, log_level='INFO', log_file=None, **kwargs):
        """MMEngine's logger; the environment / config / hook-order dumps go
        to the log file only (:mod:`raicl_mm.engine.logs`)."""
        import os.path as osp
        from .logs import quiet_console
        if log_file is None:
            log_file = osp.join(self._log_dir, f'{self.timestamp}.log')
        logger = super().build_logger(log_level=log_level, log_file=log_file,
                                      **kwargs)
        return quiet_console(logger, log_file, log_level,
                             type(self).__name__)

    def _check_checkpoint(self, filename: str) -> None:
        from .checkpoint import check_matches, partial_prefixes, read_checkpoint
        if self.cfg.get('trust_checkpoint'):
            from raicl_mm import compat
            compat.trust_checkpoint(filename)
        prefixes = partial_prefixes(self.cfg.get('partial_checkpoint'))
        check_matches(self.model, read_checkpoint(filename), filename,
                      allow_missing_prefixes=prefixes)

    def load_checkpoint(self, filename: str, *args, **kwargs):
        self._check_checkpoint(filename)
        return super().load_checkpoint(filename, *args, **kwargs)

    def resume(self, filename: str, *args, **kwargs) -> None:
        self._check_checkpoint(filename)
        return super().resume(filename, *args, **kwargs)
