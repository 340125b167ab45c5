"""Fixes that make the OpenMMLab stack work on a current PyTorch.

``import raicl_mm`` applies them before anything imports ``mmaction.models``.
Each fix is a no-op when the stack no longer needs it, and each has its own
test (``tests/test_compat.py``). The three breakages are described, with how
they were reproduced, in ``docs/stack.md``:

1. :func:`patch_mmaction_drn` -- the mmaction2 1.2.0 wheel leaves out
   ``mmaction/models/localizers/drn`` although ``localizers/__init__.py``
   imports it (open-mmlab/mmaction2#2714), so ``import mmaction.models`` fails.
   We serve a placeholder module for exactly that name, and only while the real
   folder is missing; the placeholder ``DRN`` refuses to be built.
2. :func:`patch_checkpoint_loading` -- torch >= 2.6 loads with
   ``weights_only=True`` and mmengine 0.10.7 cannot read its own checkpoints.
   Rather than a blanket ``weights_only=False`` (a checkpoint is a pickle: that
   would let a downloaded file run code) we keep ``weights_only=True`` and
   allow-list exactly the types an mmengine checkpoint holds. A file that needs
   anything else is refused with a message that names the type and the opt-in
   (:func:`trust_checkpoint`, ``--trust-checkpoint`` / ``trust_checkpoint=True``).
3. :func:`require_optflow` -- mmengine/mmcv-lite pull in ``opencv-python``
   which overwrites the ``cv2`` of ``opencv-contrib-python-headless``; TV-L1
   lives in ``cv2.optflow`` (contrib only). Flow extraction asks for it
   through this function and gets a message naming the package to reinstall.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import os.path as osp
import pickle
import sys
import types
from typing import Iterable, List, Set

import torch

OPTFLOW_FIX = ('pip install --force-reinstall --no-deps '
               'opencv-contrib-python-headless')

# --------------------------------------------------------------------------
# 1. mmaction.models.localizers.drn missing from the 1.2.0 wheel
# --------------------------------------------------------------------------
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


# --------------------------------------------------------------------------
# 2. weights_only checkpoint loading with an allow-list
# --------------------------------------------------------------------------
_TRUSTED: Set[str] = set()


def checkpoint_safe_globals() -> List:
    """Exactly the non-tensor types that mmengine's own checkpoints contain.

    Measured with ``torch.serialization.get_unsafe_globals_in_checkpoint`` on a
    checkpoint saved by the Runner (see tests/test_compat.py): the message
    hub's ``HistoryBuffer``, numpy arrays/dtypes/scalars in its statistics, and
    ``builtins.getattr`` (the hub pickles bound methods such as
    ``getattr(buffer, 'min')``). torch's weights-only unpickler still refuses
    to *call* what getattr returns unless that callable is allow-listed too,
    so ``getattr`` does not open the door to arbitrary code.
    """
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    allowed = [HistoryBuffer, np.ndarray, np.dtype, multiarray._reconstruct,
               multiarray.scalar, getattr]
    # numpy >= 1.25 pickles dtypes through their concrete classes.
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [getattr(dtypes, n) for n in dir(dtypes)
                    if n.endswith('DType') and isinstance(getattr(dtypes, n), type)]
    return allowed


def trust_checkpoint(path: str) -> None:
    """Opt in to a full (unsafe) unpickling of ONE checkpoint file you trust."""
    _TRUSTED.add(osp.realpath(osp.expanduser(path)))


class UntrustedCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds a type outside the allow-list."""


def load_checkpoint_file(filename: str, map_location=None):
    """Load a local checkpoint with ``weights_only=True`` and the allow-list.

    Args:
        filename: Path of the checkpoint.
        map_location: As for :func:`torch.load`.

    Returns:
        The loaded checkpoint object.

    Raises:
        FileNotFoundError: The file does not exist.
        UntrustedCheckpointError: The file holds a type outside the allow-list
            and was not opted in with :func:`trust_checkpoint`.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} does not exist')
    if osp.realpath(filename) in _TRUSTED:
        return torch.load(filename, map_location=map_location,
                          weights_only=False)
    try:
        with torch.serialization.safe_globals(checkpoint_safe_globals()):
            return torch.load(filename, map_location=map_location,
                              weights_only=True)
    except pickle.UnpicklingError as err:
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(
                filename)
        except Exception:  # noqa: BLE001 - not a zip checkpoint
            unsafe = []
        allowed = {f'{g.__module__}.{g.__qualname__}'
                   for g in checkpoint_safe_globals()}
        extra = [u for u in unsafe if u not in allowed] or [str(err)]
        raise UntrustedCheckpointError(
            f'refusing to load checkpoint {filename}: it holds '
            f'{", ".join(extra)}, which is not among the types that mmengine '
            'checkpoints contain (loading it would run pickled code). If you '
            'trust this file, pass --trust-checkpoint to tools/train.py / '
            'tools/test.py, or set trust_checkpoint=True in the config.'
        ) from err


def patch_checkpoint_loading() -> bool:
    """Route mmengine's local checkpoint loading through the allow-list.

    Uses mmengine's own extension point (``CheckpointLoader.register_scheme``
    with the empty prefix, which serves local paths) instead of editing
    mmengine. Returns True when the loader was (re)registered.
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    current = CheckpointLoader._schemes.get('')
    if current is _load_from_local:
        return False
    CheckpointLoader.register_scheme(prefixes='', loader=_load_from_local,
                                     force=True)
    return True


def _load_from_local(filename, map_location=None):
    # name starts with 'load_from_' as mmengine logs class_name[10:]
    return load_checkpoint_file(filename, map_location)


_load_from_local.__name__ = 'load_from_local_allowlist'


# --------------------------------------------------------------------------
# 3. cv2.optflow (TV-L1) needs the contrib build of OpenCV
# --------------------------------------------------------------------------
def require_optflow():
    """Return ``cv2.optflow`` or explain which package to reinstall.

    Raises:
        RuntimeError: The installed ``cv2`` is not the contrib build.
    """
    import cv2
    optflow = getattr(cv2, 'optflow', None)
    if optflow is None or not hasattr(optflow,
                                      'DualTVL1OpticalFlow_create'):
        raise RuntimeError(
            f'cv2 {cv2.__version__} at {osp.dirname(cv2.__file__)} has no '
            'cv2.optflow (TV-L1): another package (opencv-python, pulled in '
            'by mmengine/mmcv) overwrote the contrib build. Fix it with:\n  '
            f'{OPTFLOW_FIX}\n(tools/setup_venv.sh does this last), or use '
            "flow_cfg=dict(method='farneback').")
    return optflow


def apply_all() -> dict:
    """Apply every fix; returns which ones were needed (for logs and tests)."""
    return dict(drn=patch_mmaction_drn(),
                checkpoint=patch_checkpoint_loading())


def mark_trusted(paths: Iterable[str]) -> None:
    for p in paths:
        if p:
            trust_checkpoint(p)


__all__ = [
    'apply_all', 'patch_mmaction_drn', 'patch_checkpoint_loading',
    'load_checkpoint_file', 'trust_checkpoint', 'require_optflow',
    'checkpoint_safe_globals', 'UntrustedCheckpointError', 'OPTFLOW_FIX'
]
