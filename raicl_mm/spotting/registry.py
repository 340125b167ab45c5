"""The registry of spotters: ``SPOTTERS.build(dict(type='FlowPeakSpotter', ...))``.

An MMEngine :class:`~mmengine.registry.Registry` of its own (a spotter is not
an mmaction2 model: it returns intervals, not ``ActionDataSample``s), so a
config chooses a spotter by name as it chooses any OpenMMLab component.
"""
from __future__ import annotations

from mmengine.registry import Registry

SPOTTERS = Registry('spotter', scope='raicl_mm')


def build_spotter(cfg):
    """Build a spotter from a config dict (``type`` = a registered name)."""
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise ValueError(f'a spotter config is a dict with a type, got {cfg!r}')
    return SPOTTERS.build(dict(cfg))
