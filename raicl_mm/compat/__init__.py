"""Fixes that make the OpenMMLab stack work on a current PyTorch.

``import raicl_mm`` applies them (:func:`apply_all`) before anything imports
``mmaction.models``. Each fix is a no-op when the stack no longer needs it,
lives in its own module, and has its own test (``tests/test_compat.py``). The
three breakages are described, with how they were reproduced, in
``docs/stack.md``:

1. :mod:`.drn` -- :func:`patch_mmaction_drn`: the mmaction2 1.2.0 wheel leaves
   out ``mmaction/models/localizers/drn`` (open-mmlab/mmaction2#2714), so
   ``import mmaction.models`` fails; a placeholder module is served for
   exactly that name while the real folder is missing.
2. :mod:`.checkpoint` -- :func:`patch_checkpoint_loading`: torch >= 2.6 loads
   with ``weights_only=True`` and mmengine 0.10.7 cannot read its own
   checkpoints; we keep ``weights_only=True`` with an allow-list of exactly
   what an mmengine checkpoint holds, refuse anything else in one line
   (:class:`CheckpointError`), and let a user opt in a file they trust
   (:func:`trust_checkpoint`, ``RAICL_TRUST_CHECKPOINT``).
3. :mod:`.opencv` -- :func:`require_optflow`: mmengine/mmcv-lite pull in
   ``opencv-python``, which overwrites the contrib ``cv2`` that has TV-L1
   (``cv2.optflow``); flow extraction gets a message naming the package to
   reinstall.

Beside them: :mod:`.known_warnings` (two third-party warnings filtered by
message and emitting module), :mod:`.config_package` (``raicl_mm::`` config
paths for MMEngine) and :mod:`.multimodal` (mmaction2's multimodal models
beside transformers >= 5).

Every name is re-exported here; code reads them as ``raicl_mm.compat.X``.
"""
from __future__ import annotations

from .checkpoint import (HISTORY_BUFFER_STATISTICS, TRUST_ENV,
                         CheckpointError, CorruptCheckpointError,
                         MissingCheckpointError, UntrustedCheckpointError,
                         checkpoint_safe_globals, is_trusted,
                         load_checkpoint_file, mark_trusted,
                         patch_checkpoint_loading, trust_checkpoint)
from .config_package import register_config_package
from .drn import patch_mmaction_drn
from .known_warnings import KNOWN_WARNINGS, filter_known_warnings
from .multimodal import patch_mmaction_multimodal
from .opencv import OPTFLOW_FIX, require_optflow


def apply_all() -> dict:
    """Apply every fix; returns which ones were needed (for logs and tests)."""
    return dict(warnings=filter_known_warnings(), drn=patch_mmaction_drn(),
                multimodal=patch_mmaction_multimodal(),
                checkpoint=patch_checkpoint_loading(),
                config_package=register_config_package())


__all__ = [
    'apply_all', 'patch_mmaction_drn', 'patch_mmaction_multimodal',
    'patch_checkpoint_loading',
    'load_checkpoint_file', 'trust_checkpoint', 'is_trusted', 'mark_trusted',
    'TRUST_ENV',
    'require_optflow', 'checkpoint_safe_globals', 'filter_known_warnings',
    'register_config_package',
    'KNOWN_WARNINGS', 'CheckpointError',
    'MissingCheckpointError', 'CorruptCheckpointError',
    'UntrustedCheckpointError', 'HISTORY_BUFFER_STATISTICS', 'OPTFLOW_FIX'
]
