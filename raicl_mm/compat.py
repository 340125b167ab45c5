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
   allow-list exactly the types an mmengine checkpoint holds. The two builtins
   such a checkpoint names (``getattr``, ``bytes``) are mapped to stand-ins
   that serve only what mmengine pickles, so no allowed global reaches a
   module, a ``__dict__`` or an arbitrary attribute. A file that needs anything
   else is refused in one line that names the file, the global and the opt-in
   (:func:`trust_checkpoint`, ``--trust-checkpoint`` / ``trust_checkpoint=True``
   / ``RAICL_TRUST_CHECKPOINT``); an empty, truncated or foreign file gets one
   line too (:class:`CheckpointError`).
3. :func:`require_optflow` -- mmengine/mmcv-lite pull in ``opencv-python``
   which overwrites the ``cv2`` of ``opencv-contrib-python-headless``; TV-L1
   lives in ``cv2.optflow`` (contrib only). Flow extraction asks for it
   through this function and gets a message naming the package to reinstall.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import os.path as osp
import pickle
import re
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


# --------------------------------------------------------------------------
# 4. known third-party warnings, filtered once by message
# --------------------------------------------------------------------------
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


# --------------------------------------------------------------------------
# 5. `_base_ = 'raicl_mm::...'`
# --------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------
# mmaction2 1.2.0's multimodal models with transformers >= 5
# ---------------------------------------------------------------------------
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


def apply_all() -> dict:
    """Apply every fix; returns which ones were needed (for logs and tests)."""
    return dict(warnings=filter_known_warnings(), drn=patch_mmaction_drn(),
                multimodal=patch_mmaction_multimodal(),
                checkpoint=patch_checkpoint_loading(),
                config_package=register_config_package())


def mark_trusted(paths: Iterable[str]) -> None:
    for p in paths:
        if p:
            trust_checkpoint(p)


__all__ = [
    'apply_all', 'patch_mmaction_drn', 'patch_mmaction_multimodal',
    'patch_checkpoint_loading',
    'load_checkpoint_file', 'trust_checkpoint', 'is_trusted', 'TRUST_ENV',
    'require_optflow', 'checkpoint_safe_globals', 'filter_known_warnings',
    'register_config_package',
    'KNOWN_WARNINGS', 'CheckpointError',
    'MissingCheckpointError', 'CorruptCheckpointError',
    'UntrustedCheckpointError', 'HISTORY_BUFFER_STATISTICS', 'OPTFLOW_FIX'
]
