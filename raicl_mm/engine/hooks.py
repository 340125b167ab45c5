"""TargetEMAHook: the target branch follows the online one (Eq. 3)."""
from __future__ import annotations

from mmaction.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper


@HOOKS.register_module()
class TargetEMAHook(Hook):
    """After every optimizer step: xi = tau * xi + (1 - tau) * theta (Eq. 3).

    mmengine's ``EMAHook`` keeps an EMA copy *for evaluation* and swaps it in
    for validation; Ra-ICL's target is a training-time teacher that is never
    evaluated, so this hook only calls ``model.update_target()`` (the
    recognizer owns the EMA container and its tau).

    Args:
        interval: Update every ``interval`` training iterations (1 = every
            optimizer step, as in the paper). With gradient accumulation set
            it to the accumulation count.
    """

    priority = 'NORMAL'

    def __init__(self, interval: int = 1):
        if interval < 1:
            raise ValueError(f'TargetEMAHook: interval must be >= 1, got {interval}')
        self.interval = interval

    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_run(self, runner) -> None:
        if not hasattr(self._model(runner), 'update_target'):
            raise TypeError('TargetEMAHook needs a model with update_target() '
                            f'(RaICLRecognizer); got {type(self._model(runner)).__name__}')

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if self.every_n_train_iters(runner, self.interval):
            self._model(runner).update_target()

    def after_train_epoch(self, runner) -> None:
        model = self._model(runner)
        n = getattr(model, 'single_instance_pairs', 0)
        if n:
            runner.logger.info(
                f'{n} training pairs so far came from one-instance sets '
                '(pair = that instance twice)')


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Reseed python, numpy and torch at the start of every training epoch.

    The seed is ``base_seed + epoch``, so an epoch's randomness (instance pairs,
    branch augmentations) depends only on the seed and the epoch number: a fold
    resumed from an epoch checkpoint continues exactly as an uninterrupted run
    would (mmengine restores model, optimizer and scheduler, not RNG states).
    """

    priority = 'VERY_HIGH'

    def __init__(self, seed: int = 0):
        self.seed = seed

    def before_train_epoch(self, runner) -> None:
        from mmengine.runner import set_random_seed
        base = runner.seed if getattr(runner, 'seed', None) is not None \
            else self.seed
        set_random_seed(int(base) + runner.epoch)
        # The model's private streams (the branches' augmentations) too.
        model = getattr(runner, 'model', None)
        model = getattr(model, 'module', model)
        if hasattr(model, 'reseed_streams'):
            model.reseed_streams(int(base) + runner.epoch)


@HOOKS.register_module()
class TrainDataProvenanceHook(Hook):
    """Record in every checkpoint what the model was trained on.

    ``checkpoint['meta']['raicl_train_data']`` = ``'synthetic'`` (the
    project's generated set) or ``'real'``
    (:func:`raicl_mm.engine.provenance.train_data_kind` of the config). A run
    that starts from a checkpoint (``load_from``) keeps ``'synthetic'`` only
    if both are synthetic. Inference warns when a synthetic-only checkpoint
    meets real frames (:func:`raicl_mm.engine.provenance.warn_if_synthetic`).
    """

    priority = 'LOW'

    def __init__(self):
        self.kind = None

    def before_run(self, runner) -> None:
        from raicl_mm.engine.provenance import (REAL, TRAIN_DATA_KEY,
                                                checkpoint_meta,
                                                train_data_kind)
        self.kind = train_data_kind(runner.cfg)
        start = runner.cfg.get('load_from')
        if start and checkpoint_meta(start).get(TRAIN_DATA_KEY) == REAL:
            self.kind = REAL

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        from raicl_mm.engine.provenance import TRAIN_DATA_KEY, train_data_kind
        kind = self.kind or train_data_kind(runner.cfg)
        checkpoint.setdefault('meta', {})[TRAIN_DATA_KEY] = kind
