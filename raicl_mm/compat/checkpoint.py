"""Weights-only checkpoint loading with an allow-list of mmengine's types.

Upstream problem: torch >= 2.6 loads with ``weights_only=True`` and mmengine
0.10.7 cannot read its own checkpoints (``Unsupported global: HistoryBuffer``).
Rather than a blanket ``weights_only=False`` (a checkpoint is a pickle: that
would let a downloaded file run code) we keep ``weights_only=True`` and
allow-list exactly the types an mmengine checkpoint holds
(:func:`checkpoint_safe_globals`). The two builtins such a checkpoint names
(``getattr``, ``bytes``) are mapped to stand-ins that serve only what mmengine
pickles, so no allowed global reaches a module, a ``__dict__`` or an arbitrary
attribute. A file that needs anything else is refused in one line that names
the file, the global and the opt-in (:func:`trust_checkpoint`,
``--trust-checkpoint`` / ``trust_checkpoint=True`` /
``RAICL_TRUST_CHECKPOINT``); an empty, truncated or foreign file gets one line
too (:class:`CheckpointError`). :func:`patch_checkpoint_loading` routes
mmengine's local ``CheckpointLoader`` scheme through
:func:`load_checkpoint_file`.
"""
from __future__ import annotations

import os
import os.path as osp
import pickle
import re
import types
from typing import Iterable, List, Set

import torch

#: Environment variable with checkpoint paths (``os.pathsep``-separated) that
#: may be unpickled in full; read at every load, so it also reaches mmaction2's
#: own tools and ``init_recognizer`` (they load through mmengine's
#: ``CheckpointLoader``, which :func:`patch_checkpoint_loading` routes here).
TRUST_ENV = 'RAICL_TRUST_CHECKPOINT'

#: The statistics methods that ``HistoryBuffer._set_default_statistics``
#: registers. ``HistoryBuffer.__getstate__`` pickles them, and pickle protocol
#: 2 (torch.save's default) writes a method ``HistoryBuffer.min`` as the call
#: ``getattr(HistoryBuffer, 'min')``. These four are all that ``getattr`` may
#: resolve while a checkpoint is read.
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')

_TRUSTED: Set[str] = set()


class CheckpointError(ValueError):
    """A checkpoint cannot be used; ``str(err)`` is one line naming the file.

    Tools print ``error: <str(err)>`` and exit with status 2.
    """

    def __init__(self, message: str):
        super().__init__(' '.join(str(message).split()))


class MissingCheckpointError(CheckpointError, FileNotFoundError):
    """The checkpoint file does not exist (or is not a file)."""


class CorruptCheckpointError(CheckpointError):
    """The file is empty, truncated, damaged or not a PyTorch checkpoint."""


class UntrustedCheckpointError(CheckpointError, pickle.UnpicklingError):
    """A checkpoint needs more than the allow-list of mmengine's types."""


def _describe(obj) -> str:
    """A short, side-effect-free name of an object met while unpickling."""
    if obj is _history_buffer_getattr:
        return 'builtins.getattr'
    if isinstance(obj, types.ModuleType):
        return f'module {obj.__name__}'
    if isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType,
                        types.MethodType, types.MethodWrapperType,
                        types.WrapperDescriptorType,
                        types.MethodDescriptorType)):
        mod = getattr(obj, '__module__', None)
        name = getattr(obj, '__qualname__', '?')
        return f'{mod}.{name}' if isinstance(mod, str) else str(name)
    return f'a {type(obj).__module__}.{type(obj).__qualname__}'


def _history_buffer_getattr(obj, name, *default):
    """Stands in for ``builtins.getattr`` while a checkpoint is unpickled.

    The real ``getattr`` would hand a pickle any attribute of any object it can
    reach: ``getattr(getattr, '__self__')`` is the ``builtins`` module, its
    ``__dict__`` a plain dict that the allowed SETITEM can write (e.g.
    ``builtins.type = eval``, which torch's unpickler then calls on data from
    the file). This replacement resolves only the statistics methods mmengine
    pickles (``getattr(HistoryBuffer, 'min')``) and refuses everything else.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    if (obj is HistoryBuffer and not default and type(name) is str
            and name in HISTORY_BUFFER_STATISTICS):
        return HistoryBuffer.__dict__[name]
    shown = repr(name) if type(name) is str else _describe(name)
    raise pickle.UnpicklingError(
        f'getattr({_describe(obj)}, {shown[:60]}) is not one of the '
        'HistoryBuffer statistics methods that mmengine pickles')


def _empty_bytes(*args):
    """Stands in for ``builtins.bytes``: pickle protocol 2 writes ``b''`` as
    the call ``bytes()`` (an empty ``HistoryBuffer`` holds empty arrays);
    non-empty bytes come through torch's allowed ``_codecs.encode``. Only the
    argument-less call is served, so a file cannot ask for ``bytes(10**12)``.
    """
    if args:
        raise pickle.UnpicklingError(
            'bytes() called with arguments (mmengine checkpoints only hold '
            "b'' written as bytes())")
    return b''


def checkpoint_safe_globals() -> List:
    """Exactly the non-tensor globals that mmengine's own checkpoints contain.

    Measured with ``torch.serialization.get_unsafe_globals_in_checkpoint`` on
    checkpoints saved by the Runner (tests/test_checkpoint_security.py): the
    message hub's ``HistoryBuffer``, numpy arrays/dtypes/scalars in its
    statistics, ``builtins.getattr`` (bound statistics methods) and
    ``builtins.bytes`` (empty buffers). The two builtins are *mapped* entries
    ``(replacement, 'builtins.name')``: the name in the file resolves to
    :func:`_history_buffer_getattr` / :func:`_empty_bytes`, never to the real
    builtin. numpy 1.x spells ``numpy._core`` as ``numpy.core``; both names
    resolve to the same two functions.
    """
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    allowed = [HistoryBuffer, np.ndarray, np.dtype, multiarray._reconstruct,
               multiarray.scalar,
               (_history_buffer_getattr, 'builtins.getattr'),
               (_empty_bytes, 'builtins.bytes'),
               (multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
               (multiarray.scalar, 'numpy.core.multiarray.scalar')]
    # numpy >= 1.25 pickles dtypes through their concrete classes.
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [getattr(dtypes, n) for n in dir(dtypes)
                    if n.endswith('DType') and isinstance(getattr(dtypes, n), type)]
    return allowed


def _allowed_names() -> Set[str]:
    names = set()
    for g in checkpoint_safe_globals():
        if isinstance(g, tuple):
            names.add(g[1])
        else:
            names.add(f'{g.__module__}.{g.__qualname__}')
    return names


def _key(path: str) -> str:
    return osp.realpath(osp.expanduser(path))


def trust_checkpoint(path: str) -> None:
    """Opt in to a full (unsafe) unpickling of ONE checkpoint file you trust.

    The same opt-in from outside Python: ``RAICL_TRUST_CHECKPOINT=<path>``
    (several paths separated by ``os.pathsep``), see :data:`TRUST_ENV`.
    """
    _TRUSTED.add(_key(path))


def is_trusted(path: str) -> bool:
    """Whether ``path`` was opted in (:func:`trust_checkpoint` or the env)."""
    key = _key(path)
    if key in _TRUSTED:
        return True
    env = os.environ.get(TRUST_ENV, '')
    return any(p and _key(p) == key for p in env.split(os.pathsep))


def _refusal(filename: str, what: str) -> UntrustedCheckpointError:
    return UntrustedCheckpointError(
        f'refusing to load checkpoint {filename}: it needs {what}, which is '
        'outside the allow-list of what mmengine checkpoints hold '
        '(unpickling it could run code from the file); only if you trust '
        'this file, pass --trust-checkpoint (tools/train.py, tools/test.py), '
        'set trust_checkpoint=True in the config, or set the environment '
        f'variable {TRUST_ENV}={filename} (any tool, also mmaction2\'s '
        'tools and init_recognizer)')


# What torch's weights-only unpickler says when a file needs more than the
# allow-list (the file is well-formed but asks for something refused).
_REFUSED = (
    (r'GLOBAL (\S+) was not an allowed global', '{}'),
    (r'GLOBAL (\S+) whose module \S+ is blocked', '{} (a blocked module)'),
    (r'(getattr\(.*?\)) is not one of the HistoryBuffer', '{}'),
    (r'(bytes\(\) called with arguments)', '{}'),
    (r'Trying to call reduce for unrecognized function (.+?)'
     r'(?: which belongs to .*)?$', 'a call of {}'),
    (r'Can only build .*but got (.+)$', 'setting the state of {}'),
    (r'Can only create new object .*but got (.+)$', 'creating {}'),
    (r'Can only append to lists, but got (.+)$', 'appending to {}'),
    (r'Can only (SETITEMS?) for dict.*but got (.+)$', '{} on {}'),
    (r'((?:Only )?persistent_load .+)$', '{}'),
)


def _clean(text: str) -> str:
    """``<class 'argparse.Namespace'>`` -> ``argparse.Namespace``."""
    return re.sub(r"<class '([^']+)'>", r'\1', text.strip()).rstrip('.')


def _refused_thing(message: str):
    """The global/type a weights-only refusal names, or None if the error
    is not a refusal (then the file is damaged or not a checkpoint)."""
    for line in message.splitlines():
        for pattern, fmt in _REFUSED:
            m = re.search(pattern, line.strip())
            if m:
                return fmt.format(*(_clean(g) for g in m.groups()))
    return None


def _corrupt(filename: str, err: BaseException) -> CorruptCheckpointError:
    text = str(err)
    # torch wraps the unpickler's own message between advice paragraphs
    text = text.split('WeightsUnpickler error:')[-1]
    text = text.split('Check the documentation of torch.load')[0]
    text = next((ln for ln in text.splitlines() if ln.strip()), '')
    text = re.sub(r'^\s*\[enforce fail at [^\]]*\] \.? ?', '', text)
    text = text.replace('PytorchStreamReader failed reading zip archive: ', '')
    text = re.split(r'(?<=[a-z0-9)])\. ', text.strip())[0].rstrip('.')
    kind = type(err).__name__
    if type(err).__module__ not in ('builtins', '_pickle', 'pickle'):
        kind = f'{type(err).__module__}.{kind}'  # struct.error, ...
    detail = f'{kind}: {text}' if text else kind
    return CorruptCheckpointError(
        f'checkpoint {filename} is not a readable PyTorch checkpoint '
        f'({detail[:160]}); it is truncated, damaged or another kind of file')


def _sniff(filename: str) -> None:
    """Refuse, before torch reads it, a file that cannot be a checkpoint."""
    try:
        size = os.path.getsize(filename)
        with open(filename, 'rb') as f:
            head = f.read(4)
    except OSError as err:
        raise CheckpointError(
            f'cannot read checkpoint {filename}: {err.strerror}') from None
    if size == 0:
        raise CorruptCheckpointError(
            f'checkpoint {filename} is empty (0 bytes); it was not written '
            'completely')
    # torch.save writes a zip archive (PK\x03\x04), or with
    # _use_new_zipfile_serialization=False a pickle (PROTO opcode \x80).
    if not (head.startswith(b'PK\x03\x04') or head[:1] == b'\x80'):
        raise CorruptCheckpointError(
            f'checkpoint {filename} is not a PyTorch checkpoint (neither a '
            f'zip archive nor a pickle: it starts with {head!r})')


def _statistics_snapshot():
    from mmengine.logging.history_buffer import HistoryBuffer
    return dict(HistoryBuffer._statistics_methods)


def _restore_statistics(filename: str, before: dict) -> None:
    """``HistoryBuffer.__setstate__`` merges the file's ``statistics_methods``
    into a class-level dict shared by every buffer of the process. Only
    HistoryBuffer's own methods under their own names may come from a file;
    anything else is undone and refused."""
    from mmengine.logging.history_buffer import HistoryBuffer
    methods = HistoryBuffer._statistics_methods
    bad = [k for k, v in methods.items()
           if (k in before and v is not before[k]) or (
               k not in before and not (
                   k in HISTORY_BUFFER_STATISTICS
                   and v is HistoryBuffer.__dict__[k]))]
    if bad:
        methods.clear()
        methods.update(before)
        raise _refusal(filename, f'HistoryBuffer statistics method {bad[0]!r} '
                       'set to something other than HistoryBuffer\'s own')


def load_checkpoint_file(filename: str, map_location=None):
    """Load a local checkpoint with ``weights_only=True`` and the allow-list.

    Args:
        filename: Path of the checkpoint.
        map_location: As for :func:`torch.load`.

    Returns:
        The loaded checkpoint object.

    Raises:
        MissingCheckpointError: The file does not exist.
        CorruptCheckpointError: Empty, truncated, damaged, or not a
            checkpoint.
        UntrustedCheckpointError: The file needs a global outside the
            allow-list and was not opted in (:func:`trust_checkpoint`,
            ``RAICL_TRUST_CHECKPOINT``).
        CheckpointError: Any of the above (their common base); ``str`` is one
            line naming the file.
    """
    filename = osp.expanduser(str(filename))
    if not osp.isfile(filename):
        raise MissingCheckpointError(f'checkpoint {filename} does not exist')
    _sniff(filename)
    if is_trusted(filename):
        try:
            return torch.load(filename, map_location=map_location,
                              weights_only=False)
        except Exception as err:  # noqa: BLE001 - any reader error
            raise _corrupt(filename, err) from None
    _refuse_competing_globals()
    before = _statistics_snapshot()
    try:
        with torch.serialization.safe_globals(checkpoint_safe_globals()):
            ckpt = torch.load(filename, map_location=map_location,
                              weights_only=True)
    except pickle.UnpicklingError as err:
        _restore_statistics_quietly(before)
        what = _refused_thing(str(err))
        if what is None:
            raise _corrupt(filename, err) from None
        raise _refusal(filename, _with_others(filename, what)) from None
    except Exception as err:  # noqa: BLE001 - any reader error
        _restore_statistics_quietly(before)
        raise _corrupt(filename, err) from None
    _restore_statistics(filename, before)
    return ckpt


def _refuse_competing_globals() -> None:
    """torch resolves a name through a set of allow-listed entries; if other
    code allow-listed the real ``getattr``/``bytes`` (or another entry for
    those names) process-wide, our stand-ins might not be the ones used."""
    ours = {'builtins.getattr': _history_buffer_getattr,
            'builtins.bytes': _empty_bytes}
    for g in torch.serialization.get_safe_globals():
        name, value = (g[1], g[0]) if isinstance(g, tuple) else (
            f'{getattr(g, "__module__", "")}.{getattr(g, "__qualname__", "")}',
            g)
        if name in ours and value is not ours[name]:
            raise CheckpointError(
                f'{name} was allow-listed process-wide (torch.serialization.'
                'add_safe_globals) by other code; raicl_mm refuses to read '
                'checkpoints with it, as it lets a pickle reach any attribute')


def _restore_statistics_quietly(before: dict) -> None:
    from mmengine.logging.history_buffer import HistoryBuffer
    HistoryBuffer._statistics_methods.clear()
    HistoryBuffer._statistics_methods.update(before)


def _with_others(filename: str, what: str) -> str:
    """Add the other unsafe globals of a zip checkpoint to the first one."""
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
    except Exception:  # noqa: BLE001 - legacy format or damaged: first only
        return what
    allowed = _allowed_names()
    others = sorted(g for g in found if g not in allowed
                    and not re.search(rf'(^|\W){re.escape(g)}(\W|$)', what))
    return ', '.join([what] + others[:5]) + (
        f' (+{len(others) - 5} more)' if len(others) > 5 else '')


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
    """Load checkpoint by local file path (mmengine's ``load_from_local``,
    through :func:`load_checkpoint_file`'s allow-list)."""
    return load_checkpoint_file(filename, map_location)


# mmengine logs the loader by its name (``load_from_local`` -> 'local') and its
# own tests look the scheme up by that name: keep mmengine's registered name,
# so that the fix changes what the loader does and nothing else.
_load_from_local.__name__ = 'load_from_local'
_load_from_local.__qualname__ = 'load_from_local'



def mark_trusted(paths: Iterable[str]) -> None:
    """:func:`trust_checkpoint` each non-empty path of ``paths``."""
    for p in paths:
        if p:
            trust_checkpoint(p)
