"""raicl_mm's registry scope: empty children of mmaction2's registries.

Every raicl_mm component registers in mmaction2's registries (scope
``mmaction``; configs keep ``default_scope = 'mmaction'``). A config that
inherits across packages, ``_base_ = 'raicl_mm::raicl/<config>.py'``, makes
MMEngine tag the inherited parts with ``_scope_ = 'raicl_mm'`` and look for
registries of that scope (``import raicl_mm.registry``, then a registry of
scope ``raicl_mm`` in the tree). These children hold nothing themselves: a
look-up falls through to mmaction2's registry (and on to mmcv's, mmengine's),
so the same components are found as under ``mmaction``.
"""
from mmaction import registry as _mmaction
from mmengine.registry import Registry

SCOPE = 'raicl_mm'

_NAMES = ('DATASETS', 'DATA_SAMPLERS', 'EVALUATOR', 'FUNCTION', 'HOOKS',
          'INFERENCERS', 'LOG_PROCESSORS', 'LOOPS', 'METRICS', 'MODELS',
          'MODEL_WRAPPERS', 'OPTIMIZERS', 'OPTIM_WRAPPERS',
          'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'RUNNERS',
          'RUNNER_CONSTRUCTORS', 'TASK_UTILS', 'TRANSFORMS', 'VISBACKENDS',
          'VISUALIZERS', 'WEIGHT_INITIALIZERS')


def _child(parent: Registry) -> Registry:
    existing = parent.children.get(SCOPE)
    if existing is not None:  # module reloaded: reuse the registered child
        return existing
    # the parent's locations too: a look-up here imports what mmaction2's
    # registry would (mmaction.visualization, ...) before falling through
    return Registry(parent.name, parent=parent, scope=SCOPE,
                    locations=list(getattr(parent, '_locations', [])))


for _name in _NAMES:
    _parent = getattr(_mmaction, _name, None)
    if isinstance(_parent, Registry):
        globals()[_name] = _child(_parent)

__all__ = [n for n in _NAMES if n in globals()]
