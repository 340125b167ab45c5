"""mmaction2 1.2.0's multimodal models beside transformers >= 5.

Upstream problem: mmaction2 1.2.0 imports its VindLU models whenever
transformers >= 4.28 is installed, and they import
``apply_chunking_to_forward`` from ``transformers.modeling_utils``, which
transformers 5 no longer has, so every ``import mmaction.models`` fails.
:func:`patch_mmaction_multimodal` clears mmaction2's multimodal flag first.
"""
from __future__ import annotations

import sys


def patch_mmaction_multimodal() -> bool:
    """Keep ``import mmaction.models`` working beside transformers >= 5.

    mmaction2 1.2.0 imports its VindLU models whenever transformers >= 4.28
    is installed (``mmaction.utils.dependency.WITH_MULTIMODAL``), and they
    import ``apply_chunking_to_forward`` from ``transformers.modeling_utils``,
    which transformers 5 no longer has: every ``import mmaction.models``
    then fails (seen on a GPU image with transformers 5.17). Ra-ICL uses no
    multimodal model; with transformers 5 the flag is cleared before
    ``mmaction.models`` is imported, so mmaction2 registers its own
    placeholders for them instead. Returns True when the flag was cleared.
    """
    from importlib import metadata
    try:
        major = int(metadata.version('transformers').split('.')[0])
    except (metadata.PackageNotFoundError, ValueError):
        return False
    if major < 5 or 'mmaction.models' in sys.modules:
        return False
    from mmaction.utils import dependency
    if not dependency.WITH_MULTIMODAL:
        return False
    dependency.WITH_MULTIMODAL = False
    return True
