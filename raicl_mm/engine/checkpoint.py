"""Read a checkpoint safely and refuse one that does not fit the model.

mmengine loads weights with ``strict=False`` and only logs "size mismatch"
lines, so a 5-class checkpoint in a 3-class config scores with a random head
and exits 0. These functions make the mismatch an error
naming the keys, and keep loading part of a checkpoint possible on purpose:

* :func:`read_checkpoint` -- the safe, allow-listed load of
  :func:`raicl_mm.compat.load_checkpoint_file` (one-line
  :class:`~raicl_mm.compat.CheckpointError` for untrusted, empty, truncated
  and foreign files), plus "is this a checkpoint dict at all".
* :func:`check_matches` -- compare the checkpoint's ``state_dict`` with the
  model's; a shape difference, a missing or an unexpected key is an error,
  except under the prefixes the caller names (``allow_missing_prefixes``),
  whose keys are left at the model's own initialisation.
* :func:`partial_prefixes` -- the config setting ``partial_checkpoint`` that
  asks for such a partial load (``load_from`` of a backbone-only or
  other-head checkpoint), validated.
* :func:`load_checked` -- all three, then mmengine's own
  ``_load_checkpoint_to_model``; for a Runner's ``load_checkpoint`` /
  ``resume`` and for the inference API.

No tool or Runner code lives here, so any of them can call these.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Iterable, List, Mapping, Optional, Sequence, Tuple

from ..compat import CheckpointError, load_checkpoint_file

#: mmengine's ``revise_keys`` default: ``DistributedDataParallel`` saves its
#: wrapped model's keys as ``module.<name>``.
DDP_PREFIX = re.compile(r'^module\.')

#: The config key that asks for a partial load (see :func:`partial_prefixes`).
PARTIAL_KEY = 'partial_checkpoint'

_SHOWN = 4  # keys listed per kind in a message; the rest are counted


class CheckpointMismatchError(CheckpointError):
    """The checkpoint's weights do not fit the model (one-line message)."""


@dataclass
class CheckpointMatch:
    """How a checkpoint's state dict lines up with a model's.

    Attributes:
        matched: Keys present in both with the same shape (these load).
        missing: Model keys the checkpoint lacks.
        unexpected: Checkpoint keys the model lacks.
        mismatched: ``(key, checkpoint shape, model shape)`` of keys in both
            whose shapes differ.
        allowed: The keys of ``missing``/``unexpected``/``mismatched`` that
            fall under ``allow_missing_prefixes`` (they keep the model's
            initialisation and are not errors).
    """

    matched: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[Tuple[str, tuple, tuple]] = field(default_factory=list)
    allowed: List[str] = field(default_factory=list)


def read_checkpoint(path: str, map_location='cpu') -> dict:
    """Load a checkpoint with the allow-list; it must be a dict of weights.

    Args:
        path: The checkpoint file.
        map_location: As for :func:`torch.load` (default ``'cpu'``).

    Returns:
        dict: The checkpoint (mmengine's ``{'state_dict': ..., 'meta': ...}``
        or a bare state dict).

    Raises:
        CheckpointError: One line naming the file: missing, empty, truncated,
            not a checkpoint, needs globals outside the allow-list, or holds
            something other than a dict.
    """
    ckpt = load_checkpoint_file(path, map_location=map_location)
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(
            f'checkpoint {path} holds a {type(ckpt).__name__}, not a dict of '
            'weights (expected a state dict or {"state_dict": ...})')
    return ckpt


def checkpoint_state_dict(checkpoint: Mapping, path: str = '<checkpoint>'
                          ) -> dict:
    """The checkpoint's state dict with the DDP ``module.`` prefix removed.

    Same rules as mmengine's ``_load_checkpoint_to_model``: the
    ``state_dict`` entry if present, else the dict itself.

    Raises:
        CheckpointError: The state dict is not a dict of tensors.
    """
    import torch
    sd = checkpoint.get('state_dict', checkpoint)
    if not isinstance(sd, Mapping):
        raise CheckpointError(
            f'checkpoint {path}: state_dict is a {type(sd).__name__}, not a '
            'dict of tensors')
    out = OrderedDict()
    for key, value in sd.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            if sd is checkpoint:  # a bare dict may carry meta entries
                continue
            raise CheckpointError(
                f'checkpoint {path}: state_dict entry {str(key)[:80]!r} is a '
                f'{type(value).__name__}, not a tensor')
        out[DDP_PREFIX.sub('', key)] = value
    # torch's per-module versions (e.g. BatchNorm's), keyed like the weights
    meta = getattr(sd, '_metadata', None)
    if isinstance(meta, Mapping):
        out._metadata = OrderedDict(
            (DDP_PREFIX.sub('', k) if k != 'module' else '', v)
            for k, v in meta.items())
    return out


def _model_state(model) -> dict:
    from mmengine.model import is_model_wrapper
    if is_model_wrapper(model):
        model = model.module
    return model.state_dict()


def _under(key: str, prefixes: Sequence[str]) -> bool:
    return any(key.startswith(p) for p in prefixes)


def _shape(t) -> tuple:
    return tuple(t.shape)


def match(model, checkpoint: Mapping, allow_missing_prefixes: Iterable[str]
          = (), path: str = '<checkpoint>') -> CheckpointMatch:
    """Line up ``checkpoint``'s weights with ``model``'s (no error raised).

    Args:
        model: An ``nn.Module`` (a DDP/MMDDP wrapper is unwrapped).
        checkpoint: As returned by :func:`read_checkpoint`.
        allow_missing_prefixes: Key prefixes (model names, e.g. ``'online.fc.'``)
            whose keys may be missing, unexpected or of another shape.
        path: The file, for messages.

    Returns:
        CheckpointMatch
    """
    prefixes = tuple(allow_missing_prefixes)
    ours = _model_state(model)
    theirs = checkpoint_state_dict(checkpoint, path)
    res = CheckpointMatch()
    for key, value in ours.items():
        if key not in theirs:
            res.missing.append(key)
        elif _shape(theirs[key]) != _shape(value):
            res.mismatched.append((key, _shape(theirs[key]), _shape(value)))
        else:
            res.matched.append(key)
    res.unexpected = [k for k in theirs if k not in ours]
    res.allowed = [k for k in res.missing + res.unexpected
                   + [m[0] for m in res.mismatched] if _under(k, prefixes)]
    return res


def _grouped(keys: List[str], universe: Iterable[str]) -> List[str]:
    """Name whole submodules: ``online.region.* (57)`` instead of 57 keys.

    A key is shown under its shortest dotted prefix all of whose keys (in
    model and checkpoint together) are in ``keys``.
    """
    chosen = set(keys)
    universe = list(universe)
    groups = OrderedDict()
    for key in keys:
        parts = key.split('.')
        for n in range(1, len(parts)):
            prefix = '.'.join(parts[:n]) + '.'
            if all(k in chosen for k in universe if k.startswith(prefix)):
                groups.setdefault(prefix + '*', []).append(key)
                break
        else:
            groups.setdefault(key, []).append(key)
    return [name if len(v) == 1 and name == v[0] else f'{name} ({len(v)})'
            for name, v in groups.items()]


def _listed(items: List[str]) -> str:
    more = len(items) - _SHOWN
    return ', '.join(items[:_SHOWN]) + (f' (+{more} more)' if more > 0 else '')


def check_matches(model, checkpoint: Mapping, path: str,
                  allow_missing_prefixes: Iterable[str] = ()
                  ) -> CheckpointMatch:
    """Refuse a checkpoint whose weights do not fit ``model``.

    Every model key must be in the checkpoint with the model's shape and the
    checkpoint may hold no other key (after removing the DDP ``module.``
    prefix), except keys under ``allow_missing_prefixes``, which keep the
    model's initialisation: pass e.g. ``('online.fc.', 'target.module.fc.')``
    to load a checkpoint of another class count into everything but the
    classifiers, or ``('',)`` for mmengine's ``strict=False``. Even then at
    least one tensor must load.

    Args:
        model: An ``nn.Module`` (a DDP/MMDDP wrapper is unwrapped).
        checkpoint: As returned by :func:`read_checkpoint`.
        path: The checkpoint file, named in the message.
        allow_missing_prefixes: See above.

    Returns:
        CheckpointMatch: What loads and what is left at initialisation
        (``allowed``), for the caller's log.

    Raises:
        CheckpointMismatchError: One line naming the file and the mismatched
            keys (shapes in the checkpoint vs the model), the missing and
            the unexpected ones, and the opt-in.
    """
    prefixes = tuple(allow_missing_prefixes)
    res = match(model, checkpoint, prefixes, path)
    bad_shape = [m for m in res.mismatched if not _under(m[0], prefixes)]
    missing = [k for k in res.missing if not _under(k, prefixes)]
    unexpected = [k for k in res.unexpected if not _under(k, prefixes)]
    parts = []
    if bad_shape:
        parts.append('shape differs for ' + _listed([
            f'{k} {list(a)} in the checkpoint vs {list(b)} in the model'
            for k, a, b in bad_shape]))
    universe = set(_model_state(model)) | set(
        checkpoint_state_dict(checkpoint, path))
    if missing:
        parts.append(f'{len(missing)} model keys missing from it: '
                     + _listed(_grouped(missing, universe)))
    if unexpected:
        parts.append(f'{len(unexpected)} keys the model does not have: '
                     + _listed(_grouped(unexpected, universe)))
    if parts:
        raise CheckpointMismatchError(
            f'checkpoint {path} does not fit the model (was it saved from '
            f'another config?): {"; ".join(parts)}. To load only the parts '
            f'that fit on purpose, set {PARTIAL_KEY}=[<key prefixes left at '
            'initialisation>] in the config')
    if not res.matched:
        raise CheckpointMismatchError(
            f'checkpoint {path}: none of its {len(res.unexpected)} tensors '
            f'fits the model ({PARTIAL_KEY}={list(prefixes)} leaves every '
            'weight at initialisation)')
    return res


def partial_prefixes(value, option: str = PARTIAL_KEY) -> Tuple[str, ...]:
    """Validate the ``partial_checkpoint`` setting into key prefixes.

    ``None``/``False``/``[]``: strict (the default). A string or a list of
    strings: the model-key prefixes that may be missing, unexpected or of
    another shape, e.g. ``partial_checkpoint=['online.fc.',
    'target.module.fc.', 'mrd_head.']`` to fine-tune a checkpoint of another
    class count, or ``['']`` for anything that fits.

    Raises:
        CheckpointError: ``value`` is something else (names ``option``).
    """
    if value is None or value is False:
        return ()
    if isinstance(value, str):
        value = [value]
    if (not isinstance(value, (list, tuple))
            or not all(isinstance(p, str) for p in value)):
        raise CheckpointError(
            f'{option} must be a list of key prefixes (e.g. '
            f"['online.fc.']) or None, got {value!r}")
    return tuple(value)


def load_checked(model, path: str, allow_missing_prefixes: Iterable[str] = (),
                 map_location='cpu', logger=None,
                 checkpoint: Optional[Mapping] = None) -> dict:
    """Read ``path`` safely, check it fits, load its weights into ``model``.

    Args:
        model: The model (a wrapper is unwrapped by mmengine).
        path: The checkpoint file.
        allow_missing_prefixes: See :func:`check_matches`.
        map_location: As for :func:`torch.load`.
        logger: Where mmengine logs what was left at initialisation.
        checkpoint: An already read checkpoint of ``path`` (not read again).

    Returns:
        dict: The checkpoint (for ``meta``, optimizer state, ...).

    Raises:
        CheckpointError: See :func:`read_checkpoint` and
            :func:`check_matches`.
    """
    from mmengine.runner.checkpoint import _load_checkpoint_to_model
    prefixes = tuple(allow_missing_prefixes)
    ckpt = read_checkpoint(path, map_location) if checkpoint is None \
        else checkpoint
    res = check_matches(model, ckpt, path, prefixes)
    state = dict(ckpt)
    # only what fits is handed over; mmengine would log each skipped key
    sd = checkpoint_state_dict(ckpt, path)
    fits = OrderedDict((k, sd[k]) for k in res.matched)
    fits._metadata = getattr(sd, '_metadata', OrderedDict())
    state['state_dict'] = fits
    _load_checkpoint_to_model(model, state, strict=not prefixes,
                              logger=logger, revise_keys=[])
    if res.allowed and logger is not None:
        logger.warning(
            f'checkpoint {path}: {len(res.allowed)} keys under '
            f'{list(prefixes)} left at initialisation: '
            f'{_listed(res.allowed)}')
    return ckpt


__all__ = ['read_checkpoint', 'check_matches', 'match', 'load_checked',
           'partial_prefixes', 'checkpoint_state_dict', 'CheckpointMatch',
           'CheckpointMismatchError', 'PARTIAL_KEY']
