"""Known third-party warnings, filtered once by message and emitting module.

Upstream problem: the stack prints two warnings on every import that say
nothing to a Ra-ICL user: mmcv-lite's "Fail to import
``MultiScaleDeformableAttention``" (mmcv-lite has no compiled ops by design)
and setuptools 80's "pkg_resources is deprecated as an API" (at each import of
pkg_resources by mmengine and mim). :func:`filter_known_warnings` ignores
exactly :data:`KNOWN_WARNINGS`, never globally. (Named ``known_warnings`` so
as not to shadow the standard library's :mod:`warnings`.)
"""
from __future__ import annotations

#: ``(category, message regex, module regex)`` of warnings that the stack
#: prints on every import and that say nothing to a Ra-ICL user. mmcv-lite
#: has no compiled ops by design (docs/stack.md); Ra-ICL uses none.
#: setuptools 80 warns at each import (and mmengine's and mim's reload) of
#: pkg_resources, which they need for `mmaction::` / `raicl_mm::` look-ups.
KNOWN_WARNINGS = (
    (UserWarning, r'Fail to import ``MultiScaleDeformableAttention`` from '
     r'``mmcv\.ops\.multi_scale_deform_attn``', r'mmcv\.cnn\.bricks'),
    (UserWarning, r'pkg_resources is deprecated as an API',
     r'(importlib|pkg_resources|mmengine\.utils|mim\.)'),
)


def filter_known_warnings() -> bool:
    """Ignore exactly :data:`KNOWN_WARNINGS` (each by category, message and
    emitting module; every other warning is untouched). Idempotent: returns
    True when the filters were added by this call."""
    import warnings
    added = False
    for category, message, module in KNOWN_WARNINGS:
        if any(f[0] == 'ignore' and f[2] is category
               and getattr(f[1], 'pattern', None) == message
               for f in warnings.filters):
            continue
        warnings.filterwarnings('ignore', message=message, category=category,
                                module=module)
        added = True
    return added
