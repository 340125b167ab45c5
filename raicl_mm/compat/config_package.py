"""``_base_ = 'raicl_mm::...'``: raicl_mm's entry in MMEngine's package table.

Upstream problem: MMEngine 0.10 accepts ``package::<config>`` only for the
packages of its table ``mmengine.config.utils.MODULE2PACKAGE``;
:func:`register_config_package` adds raicl_mm's own entry.
"""
from __future__ import annotations


def register_config_package() -> bool:
    """Let MMEngine resolve ``raicl_mm::<folder>/<config>.py``.

    MMEngine 0.10 accepts ``package::`` only for the packages of its table
    ``mmengine.config.utils.MODULE2PACKAGE``; this adds raicl_mm's own entry
    (no other entry is touched). The configs come from ``raicl_mm/.mim``
    (setup.py) and the scope from :mod:`raicl_mm.registry`. Effective once
    raicl_mm is imported: the project's tools import it first; elsewhere
    ``import raicl_mm`` before ``Config.fromfile``. Returns True when added.
    """
    try:
        from mmengine.config import utils as config_utils
    except ImportError:  # pragma: no cover
        return False
    if config_utils.MODULE2PACKAGE.get('raicl_mm') == 'raicl_mm':
        return False
    config_utils.MODULE2PACKAGE['raicl_mm'] = 'raicl_mm'
    return True
