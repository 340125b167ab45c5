"""Checkpoints are hostile input: no crafted file runs code, every real
mmengine checkpoint loads (raicl_mm.compat, docs/stack.md "Checkpoints").

The hostile files cover each door a weights-only unpickler with an allow-list
can leave open: a plain ``__reduce__`` to ``os.system``; the
getattr -> ``builtins.__dict__`` -> SETITEM gadget (written opcode by opcode);
``getattr`` on a numpy array; ``bytes(huge)``; poisoning the class-level
``HistoryBuffer._statistics_methods``; each in the zip and the legacy format
and nested inside a state dict. After each, ``builtins`` must be untouched and
no marker file may exist.
"""
import builtins
import io
import itertools
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from raicl_mm import compat

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ helpers
@pytest.fixture(autouse=True)
def builtins_untouched():
    """Fail (and repair) if a test changed anything in ``builtins``."""
    before = dict(vars(builtins))
    yield
    changed = _restore_builtins(before)
    assert builtins.type is type
    assert not changed, f'builtins changed: {changed}'


def _save_zip(obj, path):
    torch.save(obj, path)
    return path


def _save_legacy(obj, path):
    torch.save(obj, path, _use_new_zipfile_serialization=False)
    return path


SAVERS = {'zip': _save_zip, 'legacy': _save_legacy}


def _zip_with_pickle(payload: bytes, path):
    """A zip checkpoint whose data.pkl is ``payload`` (torch.save's layout)."""
    tmp = io.BytesIO()
    torch.save({}, tmp)
    with zipfile.ZipFile(io.BytesIO(tmp.getvalue())) as src, \
            zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith('/data.pkl'):
                data = payload
            dst.writestr(info.filename, data)
    return path


def _legacy_with_pickle(payload: bytes, path):
    """A legacy checkpoint: torch's magic number, protocol and sys-info
    pickles (as torch.serialization._legacy_save writes them), then
    ``payload`` as the object pickle."""
    head = b''.join(pickle.dumps(x, protocol=2) for x in (
        0x1950a86a20f9469cfc6c, 1001,
        dict(protocol_version=1001, little_endian=True,
             type_sizes=dict(short=2, int=4, long=4))))
    Path(path).write_bytes(head + payload + pickle.dumps([], protocol=2))
    return path


WRAPPERS = {'zip': _zip_with_pickle, 'legacy': _legacy_with_pickle}


def _unicode(s: str) -> bytes:
    b = s.encode()
    return b'X' + struct.pack('<I', len(b)) + b


def builtins_dict_gadget(code: str) -> bytes:
    """The gadget of issue 10, opcode by opcode (pickle protocol 2).

    With the real ``builtins.getattr`` allowed it does::

        m = getattr(getattr, '__self__')          # the builtins module
        getattr(m, '__dict__')['type'] = getattr(m, 'eval')   # SETITEM
        {code: ...}                                # SETITEM on a str target:
                                                   # the unpickler's type
                                                   # check now evals `code`
    """
    g, put, get = b'c', b'q', b'h'
    tuple2, reduce, setitem = b'\x86', b'R', b's'
    return b''.join([
        b'\x80\x02',                                   # PROTO 2
        g + b'builtins\ngetattr\n', put + b'\x00',     # memo0 = getattr
        get + b'\x00', get + b'\x00', _unicode('__self__'), tuple2, reduce,
        put + b'\x01',                                 # memo1 = builtins
        get + b'\x00', get + b'\x01', _unicode('__dict__'), tuple2, reduce,
        _unicode('type'),
        get + b'\x00', get + b'\x01', _unicode('eval'), tuple2, reduce,
        setitem,                                       # builtins.type = eval
        _unicode(code), _unicode('k'), _unicode('v'), setitem,
        b'.',                                          # STOP
    ])


def _marker_code(marker) -> str:
    return f'open({str(marker)!r}, "w").close()'


class RunsShell:
    """Unpickling it with the full unpickler runs ``touch marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


class BoundToFile:
    """``getattr(<ndarray>, 'tofile')(marker)``: a bound method call."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (np.zeros(1).tofile, (self.marker, ))


class UnboundToFile:
    """``getattr(ndarray, 'tofile')(array, marker)``: the class attribute."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (np.ndarray.tofile, (np.zeros(1), self.marker))


def _restore_builtins(before: dict) -> list:
    """Put ``builtins`` back as ``before``; return the names that differed."""
    after = vars(builtins)
    changed = sorted(k for k in set(before) | set(after)
                     if k not in before or k not in after
                     or after[k] is not before[k])
    for k in changed:
        if k in before:
            setattr(builtins, k, before[k])
        else:
            delattr(builtins, k)
    return changed


def _refused(path, *names):
    """Load ``path``: it must be refused in one line naming the file, the
    opt-in and ``names``, and leave ``builtins`` as it was. The builtins are
    repaired right after the load, before anything else runs, so that a
    gadget that did work fails this test instead of breaking pytest."""
    before = dict(vars(builtins))
    try:
        compat.load_checkpoint_file(str(path))
        err = None
    except Exception as e:  # noqa: BLE001 - checked below
        err = e
    finally:
        changed = _restore_builtins(before)
    assert not changed, f'the load changed builtins: {changed}'
    assert isinstance(err, compat.UntrustedCheckpointError), repr(err)
    msg = str(err)
    assert '\n' not in msg and str(path) in msg
    assert '--trust-checkpoint' in msg and compat.TRUST_ENV in msg
    for name in names:
        assert name in msg, msg
    return msg


# ------------------------------------------------------- hostile checkpoints
@pytest.mark.parametrize('fmt', ['zip', 'legacy'])
def test_reduce_to_os_system_is_refused(tmp_path, fmt):
    marker = tmp_path / 'marker'
    path = SAVERS[fmt]({'state_dict': {}, 'x': RunsShell(marker)},
                       tmp_path / 'evil.pth')
    _refused(path, f'{os.system.__module__}.system')
    assert not marker.exists()


@pytest.mark.parametrize('fmt', ['zip', 'legacy'])
def test_builtins_dict_gadget_is_refused(tmp_path, fmt):
    marker = tmp_path / 'marker'
    payload = builtins_dict_gadget(_marker_code(marker))
    path = WRAPPERS[fmt](payload, tmp_path / 'epoch_9.pth')
    _refused(path, "getattr(builtins.getattr, '__self__')")
    assert not marker.exists()
    assert builtins.type is type


def test_the_gadget_is_real_with_the_real_getattr(tmp_path):
    """What the mapped getattr closes: allow-listing the real builtin (the
    previous policy) lets the same bytes run code. In a child process, as
    it breaks ``builtins.type`` there."""
    marker = tmp_path / 'marker'
    path = _zip_with_pickle(builtins_dict_gadget(_marker_code(marker)),
                            tmp_path / 'gadget.pth')
    assert 200 < path.stat().st_size and len(
        builtins_dict_gadget(_marker_code(marker))) < 400
    code = textwrap.dedent(f"""
        import torch
        try:
            with torch.serialization.safe_globals([getattr]):
                torch.load({str(path)!r}, weights_only=True)
        except Exception:
            pass
        """)
    subprocess.run([sys.executable, '-c', code], timeout=120,
                   capture_output=True)
    assert marker.exists()


@pytest.mark.parametrize('fmt', ['zip', 'legacy'])
@pytest.mark.parametrize('cls', [BoundToFile, UnboundToFile])
def test_getattr_on_ndarray_is_refused(tmp_path, fmt, cls):
    marker = tmp_path / 'marker'
    path = SAVERS[fmt]({'x': cls(marker)}, tmp_path / 'evil.pth')
    _refused(path, 'getattr(', 'tofile')
    assert not marker.exists()


@pytest.mark.parametrize('fmt', ['zip', 'legacy'])
def test_pickle_nested_in_a_state_dict_is_refused(tmp_path, fmt):
    marker = tmp_path / 'marker'
    ckpt = _real_checkpoint(tmp_path / 'work', epochs=1)
    ckpt['state_dict']['backbone.evil'] = RunsShell(marker)
    path = SAVERS[fmt](ckpt, tmp_path / 'nested.pth')
    _refused(path, 'system')
    assert not marker.exists()


@pytest.mark.parametrize('attr', ['__init__', 'statistics', '__dict__',
                                  '__class__', 'register_statistics'])
def test_getattr_resolves_only_history_buffer_statistics(tmp_path, attr):
    """``getattr(HistoryBuffer, name)`` is served for min/max/current/mean
    only, not for any other attribute of the allowed class."""
    payload = b''.join([
        b'\x80\x02', b'cbuiltins\ngetattr\n',
        b'cmmengine.logging.history_buffer\nHistoryBuffer\n',
        _unicode(attr), b'\x86R.'])
    path = _zip_with_pickle(payload, tmp_path / 'attr.pth')
    _refused(path, f"getattr(mmengine.logging.history_buffer.HistoryBuffer, "
             f"'{attr}')")
    ok = _zip_with_pickle(payload.replace(_unicode(attr), _unicode('mean')),
                          tmp_path / 'mean.pth')
    from mmengine.logging.history_buffer import HistoryBuffer
    assert compat.load_checkpoint_file(str(ok)) is HistoryBuffer.mean


def test_bytes_with_an_argument_is_refused(tmp_path):
    # bytes(10**12) would allocate a terabyte; only bytes() is served.
    payload = (b'\x80\x02cbuiltins\nbytes\n\x8a\x05' +
               (10**12).to_bytes(5, 'little') + b'\x85R.')
    path = _zip_with_pickle(payload, tmp_path / 'big.pth')
    _refused(path, 'bytes() called with arguments')


def test_statistics_methods_cannot_be_poisoned(tmp_path):
    """``HistoryBuffer.__setstate__`` writes the file's statistics methods
    into a class-level dict; another callable there is refused and undone."""
    from mmengine.logging.history_buffer import HistoryBuffer
    buf = HistoryBuffer([1.0, 2.0], [1, 1])
    methods = HistoryBuffer._statistics_methods
    saved = dict(methods)
    try:
        methods['mean'] = HistoryBuffer.max  # a wrong but allowed callable
        torch.save({'buf': buf}, tmp_path / 'poison.pth')
    finally:
        methods.clear()
        methods.update(saved)
    _refused(tmp_path / 'poison.pth', "'mean'")
    assert HistoryBuffer._statistics_methods == saved
    assert float(HistoryBuffer([1.0, 3.0], [1, 1]).mean()) == 2.0


def test_a_process_wide_real_getattr_is_refused(tmp_path):
    path = _save_zip({'w': torch.ones(1)}, tmp_path / 'ok.pth')
    torch.serialization.add_safe_globals([getattr])
    try:
        with pytest.raises(compat.CheckpointError,
                           match='builtins.getattr was allow-listed'):
            compat.load_checkpoint_file(str(path))
    finally:
        torch.serialization.clear_safe_globals()
    assert torch.equal(compat.load_checkpoint_file(str(path))['w'],
                       torch.ones(1))


def test_blocked_global_is_refused(tmp_path):
    payload = b'\x80\x02cbuiltins\neval\n' + _unicode('1') + b'\x85R.'
    _refused(_zip_with_pickle(payload, tmp_path / 'eval.pth'),
             'builtins.eval')


def test_trusted_file_loads_in_full_and_only_that_file(tmp_path,
                                                       monkeypatch):
    from argparse import Namespace
    a = _save_zip({'x': Namespace(a=1)}, tmp_path / 'a.pth')
    b = _save_zip({'x': Namespace(b=2)}, tmp_path / 'b.pth')
    monkeypatch.setattr(compat.checkpoint, '_TRUSTED', set())
    monkeypatch.setenv(compat.TRUST_ENV, os.pathsep.join(
        [str(tmp_path / 'x.pth'), str(a)]))
    assert compat.load_checkpoint_file(str(a))['x'] == Namespace(a=1)
    _refused(b, 'argparse.Namespace')
    compat.trust_checkpoint(str(b))
    assert compat.load_checkpoint_file(str(b))['x'] == Namespace(b=2)


def test_env_opt_in_reaches_mmengine_load_checkpoint(tmp_path, monkeypatch):
    """mmaction2's tools and init_recognizer load through mmengine's
    ``load_checkpoint``; the environment variable opts a file in there."""
    from argparse import Namespace

    from mmengine.runner import load_checkpoint
    compat.apply_all()
    model = nn.Linear(2, 2)
    path = _save_zip({'state_dict': model.state_dict(),
                      'meta': {'x': Namespace(a=1)}}, tmp_path / 'm.pth')
    monkeypatch.setattr(compat.checkpoint, '_TRUSTED', set())
    monkeypatch.delenv(compat.TRUST_ENV, raising=False)
    with pytest.raises(compat.UntrustedCheckpointError):
        load_checkpoint(model, str(path))
    monkeypatch.setenv(compat.TRUST_ENV, str(path))
    assert load_checkpoint(model, str(path))['meta']['x'] == Namespace(a=1)


# ------------------------------------------------ damaged, empty, foreign
def _zip_bytes(tmp_path):
    return _save_zip({'state_dict': {'w': torch.arange(64.)}},
                     tmp_path / 'ok.pth').read_bytes()


def _legacy_bytes(tmp_path):
    return _save_legacy({'state_dict': {'w': torch.arange(64.)}},
                        tmp_path / 'ok_legacy.pth').read_bytes()


DAMAGED = {
    'empty': lambda tp: b'',
    'zip_third': lambda tp: _zip_bytes(tp)[:len(_zip_bytes(tp)) // 3],
    'zip_minus_10': lambda tp: _zip_bytes(tp)[:-10],
    'legacy_third': lambda tp: _legacy_bytes(tp)[:len(_legacy_bytes(tp)) // 3],
    'legacy_minus_5': lambda tp: _legacy_bytes(tp)[:-5],
    'text': lambda tp: b'epoch: 3\nloss: 0.1\n',
    'npy': lambda tp: b'\x93NUMPY\x01\x00' + b' ' * 60,
    'jpeg': lambda tp: b'\xff\xd8\xff\xe0' + bytes(100),
    'other_zip': lambda tp: _other_zip(),
    'pickle_garbage': lambda tp: b'\x80\x02' + bytes(range(30, 90)),
}


def _other_zip():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as z:
        z.writestr('notes.txt', 'hello')
    return buf.getvalue()


@pytest.mark.parametrize('kind', sorted(DAMAGED))
def test_damaged_files_get_one_line(tmp_path, kind):
    path = tmp_path / f'{kind}.pth'
    path.write_bytes(DAMAGED[kind](tmp_path))
    for trusted in (False, True):
        if trusted:
            compat.trust_checkpoint(str(path))
        with pytest.raises(compat.CorruptCheckpointError) as err:
            compat.load_checkpoint_file(str(path))
        msg = str(err.value)
        assert '\n' not in msg and f'checkpoint {path} ' in msg, msg
        assert 'PytorchStreamReader' not in msg and len(msg) < 300, msg
        assert isinstance(err.value, ValueError)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(compat.MissingCheckpointError,
                       match='checkpoint .*nope.pth does not exist'):
        compat.load_checkpoint_file(str(tmp_path / 'nope.pth'))
    with pytest.raises(FileNotFoundError):  # still a FileNotFoundError
        compat.load_checkpoint_file(str(tmp_path / 'nope.pth'))
    with pytest.raises(compat.MissingCheckpointError):
        compat.load_checkpoint_file(str(tmp_path))  # a folder


# ----------------------------------------------- real mmengine checkpoints
def _model():
    from mmengine.model import BaseModel

    class Tiny(BaseModel):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Linear(4, 3)
            self.bn = nn.BatchNorm1d(3)
            self.cls_head = nn.Linear(3, 2)

        def forward(self, inputs, labels=None, mode='tensor'):
            x = self.cls_head(self.bn(self.backbone(inputs)))
            if mode == 'loss':
                return dict(loss=nn.functional.cross_entropy(x, labels))
            return x

    return Tiny()


class _Pairs(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return dict(inputs=torch.randn(4, generator=g),
                    labels=torch.tensor(i % 2))


_RUNS = itertools.count()


def _runner(work, epochs, amp=False, resume_from=None, empty_buffer=False):
    """A tiny mmengine Runner on CPU: 2 iterations an epoch."""
    from mmengine.hooks import Hook
    from mmengine.logging.history_buffer import HistoryBuffer
    from mmengine.runner import Runner

    class EmptyBuffer(Hook):
        # mmengine keeps a buffer per logged key; one with no entries yet
        # (pickled with bytes()) is what issue 10 item 2 found refused.
        def before_save_checkpoint(self, runner, checkpoint):
            checkpoint['message_hub']['log_scalars']['val/empty'] = \
                HistoryBuffer()

    optim = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9))
    if amp:
        optim.update(type='AmpOptimWrapper', loss_scale='dynamic',
                     dtype=torch.bfloat16)
    return Runner(
        model=_model(), work_dir=str(work),
        train_dataloader=dict(
            dataset=_Pairs(), batch_size=4, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=True, max_epochs=epochs),
        optim_wrapper=optim,
        param_scheduler=dict(type='MultiStepLR', milestones=[1]),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[EmptyBuffer()] if empty_buffer else None,
        log_processor=dict(window_size=1), randomness=dict(seed=0),
        load_from=resume_from, resume=resume_from is not None,
        default_scope='mmengine', visualizer=dict(type='Visualizer'),
        experiment_name=f'ckpt_{next(_RUNS)}',  # instances are per name
        log_level='WARNING')


def _real_checkpoint(work, epochs=1, **kwargs):
    _runner(work, epochs, **kwargs).train()
    return compat.load_checkpoint_file(str(work / f'epoch_{epochs}.pth'))


def _globals(path):
    return set(torch.serialization.get_unsafe_globals_in_checkpoint(
        str(path)))


@pytest.fixture
def cpu_amp(monkeypatch):
    """AmpOptimWrapper on CPU: mmengine asserts a GPU and builds a CUDA
    GradScaler; torch.amp.GradScaler('cpu') keeps the same state_dict."""
    from mmengine.optim.optimizer import amp_optimizer_wrapper as amp
    monkeypatch.setattr(amp, 'is_cuda_available', lambda: True)
    monkeypatch.setattr(amp, 'GradScaler',
                        lambda **kw: torch.amp.GradScaler('cpu', **kw))


def test_fresh_checkpoint_with_full_buffers_loads(tmp_path):
    work = tmp_path / 'w'
    ckpt = _real_checkpoint(work, epochs=1)
    assert 'builtins.getattr' in _globals(work / 'epoch_1.pth')
    hub = ckpt['message_hub']
    assert hub['log_scalars']['train/loss'].data[0].size > 0
    assert ckpt['meta']['epoch'] == 1 and ckpt['meta']['iter'] == 2
    assert set(ckpt) >= {'state_dict', 'optimizer', 'param_schedulers'}


def test_checkpoint_with_an_empty_buffer_loads(tmp_path):
    work = tmp_path / 'w'
    ckpt = _real_checkpoint(work, epochs=1, empty_buffer=True)
    assert 'builtins.bytes' in _globals(work / 'epoch_1.pth')
    empty = ckpt['message_hub']['log_scalars']['val/empty']
    assert len(empty.data[0]) == 0


def test_resumed_run_writes_checkpoints_that_load(tmp_path):
    work = tmp_path / 'w'
    _real_checkpoint(work, epochs=1, empty_buffer=True)
    runner = _runner(work, 2, resume_from=str(work / 'epoch_1.pth'))
    runner.train()  # mmengine's resume reads epoch_1 through compat
    assert runner.epoch == 2 and runner.iter == 4
    ckpt = compat.load_checkpoint_file(str(work / 'epoch_2.pth'))
    assert ckpt['meta']['epoch'] == 2
    assert 'resumed_keys' in ckpt['message_hub']


def test_amp_checkpoint_loads_and_resumes(tmp_path, cpu_amp):
    work = tmp_path / 'w'
    ckpt = _real_checkpoint(work, epochs=1, amp=True)
    scaler = ckpt['optimizer']['loss_scaler']
    assert scaler['scale'] > 0 and 'growth_factor' in scaler
    runner = _runner(work, 2, amp=True, resume_from=str(work / 'epoch_1.pth'))
    runner.train()
    assert runner.iter == 4
    assert 'loss_scaler' in compat.load_checkpoint_file(
        str(work / 'epoch_2.pth'))['optimizer']


@pytest.mark.parametrize('fmt', ['zip', 'legacy'])
def test_ddp_style_checkpoint_loads_into_the_model(tmp_path, fmt):
    """A state dict saved from a DistributedDataParallel wrapper has keys
    ``module.<name>``; it loads and mmengine strips the prefix."""
    from mmengine.runner import load_checkpoint
    compat.apply_all()
    work = tmp_path / 'w'
    ckpt = _real_checkpoint(work, epochs=1)
    ckpt['state_dict'] = OrderedDict(
        (f'module.{k}', v) for k, v in ckpt['state_dict'].items())
    path = SAVERS[fmt](ckpt, tmp_path / 'ddp.pth')
    model = _model()
    load_checkpoint(model, str(path), strict=True)
    assert torch.equal(model.backbone.weight,
                       ckpt['state_dict']['module.backbone.weight'])


def test_numpy1_module_names_load(tmp_path):
    """Checkpoints written under numpy 1.x spell ``numpy.core.multiarray``."""
    work = tmp_path / 'w'
    _real_checkpoint(work, epochs=1)
    src = work / 'epoch_1.pth'
    old = tmp_path / 'numpy1.pth'
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(old, 'w') as out:
        for info in z.infolist():
            data = z.read(info)
            if info.filename.endswith('/data.pkl'):
                assert b'numpy._core.multiarray' in data
                data = data.replace(b'numpy._core.multiarray',
                                    b'numpy.core.multiarray')
            out.writestr(info, data)
    ckpt = compat.load_checkpoint_file(str(old))
    assert ckpt['message_hub']['log_scalars']['train/loss'].data[0].size > 0
