"""mmaction2's missing ``drn`` localizer: a placeholder so that
``import mmaction.models`` works.

Upstream problem: the mmaction2 1.2.0 wheel leaves out
``mmaction/models/localizers/drn`` although ``localizers/__init__.py`` imports
it (open-mmlab/mmaction2#2714), so ``import mmaction.models`` fails with
``No module named 'mmaction.models.localizers.drn'``. :func:`patch_mmaction_drn`
serves a placeholder module for exactly that name, and only while the real
folder is missing; the placeholder ``DRN`` refuses to be built. A fixed
mmaction2 makes it a no-op; site-packages are not edited.

This module imports nothing of raicl_mm (tests load it alone, beside a fake
mmaction).
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import os.path as osp
import sys
import types

_DRN_MODULES = ('mmaction.models.localizers.drn',
                'mmaction.models.localizers.drn.drn')


def _mmaction_has_drn() -> bool:
    spec = importlib.util.find_spec('mmaction')
    if spec is None or not spec.submodule_search_locations:
        return True  # mmaction not installed: nothing to fix
    for loc in spec.submodule_search_locations:
        if osp.isfile(osp.join(loc, 'models', 'localizers', 'drn', 'drn.py')):
            return True
    return False


class _MissingDRN:
    """Placeholder for mmaction2's DRN localizer, absent from the 1.2.0 wheel."""

    def __init__(self, *args, **kwargs):
        raise ImportError(
            'mmaction2 1.2.0 is distributed without '
            'mmaction/models/localizers/drn (open-mmlab/mmaction2#2714); '
            'raicl_mm serves a placeholder so that `import mmaction.models` '
            'works. Install an mmaction2 that ships DRN to use it.')


def patch_mmaction_drn() -> bool:
    """Let ``import mmaction.models`` work without the missing DRN package.

    Returns:
        bool: True if the placeholder was installed, False when it is not
        needed (a fixed mmaction2, or mmaction already imported).
    """
    if _mmaction_has_drn() or _DRN_MODULES[1] in sys.modules:
        return False
    pkg = types.ModuleType(_DRN_MODULES[0])
    pkg.__path__ = []  # a package, so that `.drn.drn` resolves
    pkg.__spec__ = importlib.machinery.ModuleSpec(
        _DRN_MODULES[0], loader=None, is_package=True)
    mod = types.ModuleType(_DRN_MODULES[1])
    mod.__spec__ = importlib.machinery.ModuleSpec(_DRN_MODULES[1], loader=None)
    mod.DRN = _MissingDRN
    pkg.drn = mod
    sys.modules[_DRN_MODULES[0]] = pkg
    sys.modules[_DRN_MODULES[1]] = mod
    return True
