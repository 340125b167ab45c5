"""Each stack fix of raicl_mm.compat, and what happens without it (STACK.md)."""
import os
import pickle
import subprocess
import sys
import textwrap
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
import torch

from raicl_mm import compat

REPO = Path(__file__).resolve().parents[1]


def _python(code, **env):
    full_env = dict(os.environ, **env)
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                          capture_output=True, text=True, cwd=REPO,
                          env=full_env, timeout=300)


# ---------------------------------------------------------------- 1. drn
def test_mmaction_models_breaks_without_the_shim():
    res = _python('import mmaction.models')
    assert res.returncode != 0
    assert "No module named 'mmaction.models.localizers.drn'" in res.stderr


def test_mmaction_models_imports_with_the_shim():
    res = _python("""
        import raicl_mm, mmaction.models
        from mmaction.models.localizers import DRN
        try:
            DRN()
        except ImportError as e:
            print('refused:', e)
        """)
    assert res.returncode == 0, res.stderr
    assert 'refused:' in res.stdout and '2714' in res.stdout


def test_drn_shim_is_a_noop_when_mmaction_ships_drn(tmp_path):
    # A fake mmaction that has the folder: the shim must not install itself.
    drn = tmp_path / 'mmaction' / 'models' / 'localizers' / 'drn'
    drn.mkdir(parents=True)
    (tmp_path / 'mmaction' / '__init__.py').write_text('')
    (drn / 'drn.py').write_text('DRN = 1\n')
    res = _python("""
        import importlib.util, sys
        # compat/drn.py alone: the package __init__ would import the fake
        # mmaction
        spec = importlib.util.spec_from_file_location(
            'c', 'raicl_mm/compat/drn.py')
        c = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(c)
        print(c._mmaction_has_drn(), c.patch_mmaction_drn(),
              'mmaction.models.localizers.drn' in sys.modules)
        """, PYTHONPATH=str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ['True', 'False', 'False']


# ---------------------------------------------------------- 2. checkpoints
def _mmengine_like_checkpoint(path):
    """What mmengine's CheckpointHook saves: weights + message hub state."""
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance(f'compat_test_hub_{path.parent.name}')
    for i in range(3):
        hub.update_scalar('train/loss', float(i))
    hub.update_info('iter', 3)
    ckpt = dict(meta=dict(epoch=1, iter=3, seed=0),
                state_dict={'w': torch.ones(2)},
                message_hub=hub.state_dict())
    torch.save(ckpt, path)
    return ckpt


def test_plain_torch_load_refuses_mmengine_checkpoints(tmp_path):
    path = tmp_path / 'epoch_1.pth'
    _mmengine_like_checkpoint(path)
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        torch.load(path)  # torch >= 2.6 default: weights_only=True


def test_allowlist_loads_mmengine_checkpoints(tmp_path):
    path = tmp_path / 'epoch_1.pth'
    _mmengine_like_checkpoint(path)
    ckpt = compat.load_checkpoint_file(str(path))
    hist = ckpt['message_hub']['log_scalars']['train/loss']
    assert [float(v) for v in hist.data[0]] == [0.0, 1.0, 2.0]
    assert torch.equal(ckpt['state_dict']['w'], torch.ones(2))


def test_mmengine_loader_goes_through_the_allowlist(tmp_path):
    from mmengine.runner.checkpoint import CheckpointLoader
    compat.apply_all()
    path = tmp_path / 'ok.pth'
    _mmengine_like_checkpoint(path)
    assert CheckpointLoader.load_checkpoint(str(path))['meta']['iter'] == 3
    bad = tmp_path / 'bad.pth'
    torch.save({'state_dict': {}, 'extra': Namespace(a=1)}, bad)
    with pytest.raises(compat.UntrustedCheckpointError):
        CheckpointLoader.load_checkpoint(str(bad))


def test_foreign_object_is_refused_with_the_opt_in_named(tmp_path):
    path = tmp_path / 'foreign.pth'
    torch.save({'state_dict': {}, 'extra': Namespace(a=1)}, path)
    with pytest.raises(compat.UntrustedCheckpointError) as err:
        compat.load_checkpoint_file(str(path))
    msg = str(err.value)
    assert 'argparse.Namespace' in msg and '--trust-checkpoint' in msg
    assert 'trust_checkpoint=True' in msg
    compat.trust_checkpoint(str(path))
    assert compat.load_checkpoint_file(str(path))['extra'] == Namespace(a=1)


class _WritesAFile:
    """A pickle that, if unpickled, calls ndarray.tofile(path) via getattr."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (np.zeros(1).tofile, (self.path, ))


def test_getattr_allowlist_does_not_run_code(tmp_path):
    target = tmp_path / 'pwned.bin'
    path = tmp_path / 'evil.pth'
    torch.save({'x': _WritesAFile(str(target))}, path)
    with pytest.raises(pickle.UnpicklingError, match=r"getattr\(a numpy"):
        compat.load_checkpoint_file(str(path))
    assert not target.exists()


def test_no_builtin_is_allow_listed_as_itself():
    """``builtins.getattr``/``bytes`` resolve to stand-ins, and nothing else
    from builtins (modules, __dict__, eval, ...) is reachable by name; the
    full hostile suite is tests/test_checkpoint_security.py."""
    import builtins
    allowed = compat.checkpoint_safe_globals()
    real = [g for g in allowed if not isinstance(g, tuple)]
    assert not [g for g in real if getattr(g, '__module__', '') == 'builtins'
                or any(g is v for v in vars(builtins).values())]
    mapped = {name: g for g, name in (t for t in allowed
                                      if isinstance(t, tuple))}
    assert mapped['builtins.getattr'] is not getattr
    assert mapped['builtins.bytes'] is not bytes and mapped['builtins.bytes']() == b''
    from mmengine.logging.history_buffer import HistoryBuffer
    assert mapped['builtins.getattr'](HistoryBuffer, 'min') is HistoryBuffer.min
    with pytest.raises(pickle.UnpicklingError):
        mapped['builtins.getattr'](getattr, '__self__')


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        compat.load_checkpoint_file(str(tmp_path / 'nope.pth'))


# --------------------------------------------------------------- 3. optflow
def test_optflow_is_present_after_setup():
    assert hasattr(compat.require_optflow(), 'DualTVL1OpticalFlow_create')


def test_missing_optflow_names_the_package(monkeypatch):
    import cv2
    monkeypatch.delattr(cv2, 'optflow')
    with pytest.raises(RuntimeError, match='opencv-contrib-python-headless'):
        compat.require_optflow()


def test_flow_extraction_without_optflow_stops_but_farneback_works(
        monkeypatch):
    import cv2

    from raicl_mm.flow import compute_flow
    rng = np.random.default_rng(0)
    a = cv2.GaussianBlur((rng.random((48, 48)) * 255).astype(np.uint8),
                         (5, 5), 1.5)
    b = np.roll(a, 1, axis=1)
    monkeypatch.delattr(cv2, 'optflow')
    # an earlier test in this process may have made the process's TV-L1
    # object (raicl_mm.flow.tvl1._TVL1), which would hide the missing module
    from raicl_mm.flow import tvl1
    monkeypatch.setattr(tvl1, '_TVL1', {})
    with pytest.raises(RuntimeError, match='opencv-contrib-python-headless'):
        compute_flow(a, b, 'tvl1')
    flow = compute_flow(a, b, 'farneback')
    assert flow.shape == (48, 48, 2)


def test_local_loader_keeps_mmengines_registered_name():
    """The allow-list loader replaces what mmengine's local scheme does, not
    its name: mmengine logs it (and its tests look it up) as load_from_local."""
    from mmengine.runner.checkpoint import CheckpointLoader
    compat.apply_all()
    loader = CheckpointLoader._schemes['']
    assert loader is compat.checkpoint._load_from_local
    assert loader.__name__ == 'load_from_local'
    assert loader.__qualname__ == 'load_from_local'


# ------------------------------------------------- 4. third-party warnings
def test_known_warning_is_filtered_by_message_only():
    res = _python("""
        import warnings
        warnings.simplefilter('default')
        import raicl_mm  # noqa: F401
        import mmcv.cnn.bricks.transformer  # noqa: F401
        warnings.warn('another user warning stays')
        warnings.warn_explicit(
            'Fail to import ``MultiScaleDeformableAttention`` from '
            '``mmcv.ops.multi_scale_deform_attn``, elsewhere', UserWarning,
            'x.py', 1, module='other.module')
    """)
    assert res.returncode == 0, res.stderr
    assert 'Fail to import ``MultiScaleDeformableAttention``' not in \
        res.stderr.replace('elsewhere', '').split('x.py')[0]
    assert 'another user warning stays' in res.stderr
    # the same text from another module is not filtered: by message AND
    # emitting module, never globally
    assert 'elsewhere' in res.stderr
    # without raicl_mm the warning is there (the filter is what removes it)
    plain = _python("""
        import warnings
        warnings.simplefilter('default')
        import mmcv.cnn.bricks.transformer  # noqa: F401
    """)
    assert 'MultiScaleDeformableAttention' in plain.stderr


def test_filter_known_warnings_is_idempotent():
    import warnings
    compat.filter_known_warnings()
    before = len(warnings.filters)
    assert compat.filter_known_warnings() is False
    assert len(warnings.filters) == before
