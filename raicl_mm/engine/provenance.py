"""What a checkpoint was trained on, and a warning when that does not fit.

Training records it: :class:`raicl_mm.engine.hooks.TrainDataProvenanceHook`
(in every config's ``custom_hooks``) writes ``meta['raicl_train_data']`` into
each checkpoint: ``'synthetic'`` when the training set is the project's
generated synthetic set (the dataset's ``synthetic`` spec, or data roots in a
folder the generator wrote), else ``'real'``.

Inference checks it: :func:`warn_if_synthetic` warns (once per checkpoint and
process, :class:`SyntheticCheckpointWarning`) when a checkpoint trained only
on the synthetic set is used on real frames: its scores say nothing about
real faces (the synthetic set is a rendered, exaggerated stand-in for the
licensed datasets).

    >>> meta = checkpoint_meta('epoch_30.pth')
    >>> warn_if_synthetic(meta, 'epoch_30.pth')   # a user's clip: real frames
"""
from __future__ import annotations

import os.path as osp
import warnings
from typing import Any, Dict, Iterable, Optional

#: Key of ``checkpoint['meta']`` that names the training data.
TRAIN_DATA_KEY = 'raicl_train_data'
SYNTHETIC = 'synthetic'
REAL = 'real'

_WARNED = set()


class SyntheticCheckpointWarning(UserWarning):
    """A checkpoint trained only on synthetic data meets real frames."""


def _roots(dataset_cfg: Dict[str, Any]) -> Iterable[str]:
    roots = dataset_cfg.get('data_roots') or {}
    if isinstance(roots, dict):
        return [str(v) for v in roots.values() if v]
    return [str(roots)]


def _generated_folder(path: str) -> bool:
    from raicl_mm.synthetic.generator import MANIFEST_NAME, MARKER_NAME
    here = osp.abspath(path)
    for folder in (here, osp.dirname(here)):
        if osp.isfile(osp.join(folder, MARKER_NAME)) or osp.isfile(
                osp.join(folder, MANIFEST_NAME)):
            return True
    return False


def is_synthetic_data(cfg_or_dataset, split: str = 'train') -> bool:
    """Whether a config's ``<split>_dataloader.dataset`` (or a dataset dict)
    is the generated synthetic set."""
    ds = cfg_or_dataset
    loader = f'{split}_dataloader'
    if hasattr(ds, 'get') and ds.get(loader) is not None:
        ds = (ds.get(loader) or {}).get('dataset') or {}
    if not hasattr(ds, 'get'):
        return False
    if ds.get('synthetic'):
        return True
    roots = list(_roots(ds))
    return bool(roots) and all(_generated_folder(r) for r in roots)


def train_data_kind(cfg) -> str:
    """``'synthetic'`` or ``'real'`` for a config's training set."""
    return SYNTHETIC if is_synthetic_data(cfg, 'train') else REAL


def checkpoint_meta(path: str) -> Dict[str, Any]:
    """``meta`` of a checkpoint, read by the project's checkpoint policy
    (:func:`raicl_mm.compat.load_checkpoint_file`); ``{}`` if unreadable."""
    from raicl_mm import compat
    try:
        ckpt = compat.load_checkpoint_file(path, map_location='cpu')
    except (OSError, ValueError):
        return {}
    return dict(ckpt.get('meta') or {}) if isinstance(ckpt, dict) else {}


def warn_if_synthetic(meta: Optional[Dict[str, Any]], checkpoint: str = '',
                      real_data: bool = True) -> bool:
    """Warn when a checkpoint trained only on synthetic data meets real frames.

    Args:
        meta: The checkpoint's ``meta`` dict (``checkpoint['meta']``).
        checkpoint: Its path, for the message (and the once-only memory).
        real_data: Whether the frames it meets are real (a user's clip: yes;
            the synthetic set itself: no warning).

    Returns:
        True when the checkpoint is synthetic-only and the data real (warned
        the first time for this checkpoint in the process).
    """
    kind = (meta or {}).get(TRAIN_DATA_KEY)
    if kind != SYNTHETIC or not real_data:
        return False
    key = osp.realpath(checkpoint) if checkpoint else id(meta)
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(SyntheticCheckpointWarning(
            f'checkpoint {checkpoint or "(in memory)"} was trained only on '
            'the synthetic set (meta raicl_train_data=synthetic): its scores '
            'on real faces are not meaningful; train on a real dataset '
            '(configs/raicl_cde.py, docs/data.md) for real clips'),
            stacklevel=2)
    return True


__all__ = ['TRAIN_DATA_KEY', 'SYNTHETIC', 'REAL',
           'SyntheticCheckpointWarning', 'is_synthetic_data',
           'train_data_kind', 'checkpoint_meta', 'warn_if_synthetic']
