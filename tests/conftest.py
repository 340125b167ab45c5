"""Shared fixtures: a tiny synthetic set and a config that trains on it fast."""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _threads() -> int:
    """Intra-op threads for each test process and the tools it starts: the
    cores shared out among the pytest-xdist workers, at most a thread count
    the caller set. OpenMP threads beyond the cores spin-wait and stall every
    process on the machine."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') \
        else (os.cpu_count() or 1)
    workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT') or 1)
    threads = max(1, cores // max(1, workers))
    try:
        threads = min(threads, int(os.environ['RAICL_TEST_THREADS']))
    except (KeyError, ValueError):
        pass
    return threads


#: set before any test module imports torch; every subprocess inherits it
THREADS = _threads()
os.environ['OMP_NUM_THREADS'] = os.environ['MKL_NUM_THREADS'] = str(THREADS)

# The tools and scripts the tests start (about 190 processes) compile the
# package's source once, not once each: where PYTHONDONTWRITEBYTECODE is set,
# their bytecode goes to a cache outside the tree (PYTHONPYCACHEPREFIX), so
# the checkout stays as clean as that setting keeps it.
if os.environ.get('PYTHONDONTWRITEBYTECODE'):
    del os.environ['PYTHONDONTWRITEBYTECODE']
    os.environ.setdefault('PYTHONPYCACHEPREFIX', os.path.join(
        tempfile.gettempdir(), f'raicl_mm_tests_pycache_{os.getuid()}'))

TINY_CONFIG = """
_base_ = [{base!r}]
__data = dict(
    synthetic=dict(out={out!r}, num_subjects=3, clips_per_subject=3, size=48,
                   seed=0),
    data_roots=dict(casme2={out!r} + '/Cropped'),
    ann_files=dict(casme2={out!r} + '/CASME2-coding-synthetic.xlsx'),
    flow_cfg=dict(method='farneback', size=(32, 32)),
    sampling=dict(num_instances=4),
    flow_cache={cache!r},
    flow_workers=1)
model = dict(
    backbone=dict(stem_channels=8, base_channels=8),
    mrd_head=dict(embed_dim=16, proj_hidden=16, pred_hidden=16))
train_dataloader = dict(batch_size=2, dataset=__data)
val_dataloader = dict(batch_size=2, dataset=__data)
test_dataloader = dict(batch_size=2, dataset=__data)
train_cfg = dict(max_epochs=2, val_begin=2, val_interval=2)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3),
                     logger=dict(interval=1))
"""


@pytest.fixture(scope='session')
def tiny_config(tmp_path_factory):
    """Path of a config: 3 subjects x 3 clips, 32 px Farneback flow, a
    ResNet18 of width 8, 2 epochs of 3 iterations."""
    root = tmp_path_factory.mktemp('tiny')
    cfg = root / 'tiny.py'
    cfg.write_text(TINY_CONFIG.format(
        base=str(REPO / 'configs' / 'raicl_synthetic.py'),
        out=str(root / 'synthetic'), cache=str(root / 'cache')))
    return cfg


#: The modules that run minutes of subprocesses (LOSO runs, DDP, Slurm, the
#: GPU suite's CPU run, mmaction2's own tools), longest first: they start
#: first, so that pytest-xdist's file-by-file distribution (setup.cfg) never
#: ends on one of them while the other workers idle. The rest keep their
#: order. Ranked by ``--durations`` on 2 cores, 2 workers, from a fresh clone.
LONG_FIRST = ('test_loso.py', 'test_distributed.py', 'test_tools.py',
              'test_gpu_suite.py', 'test_stock_tools.py', 'test_benchmarks.py',
              'test_ablation.py', 'test_tool_errors.py', 'test_packaging.py',
              'test_configs.py')


@pytest.fixture(autouse=True)
def _registry_scope_restored():
    """Each test leaves MMEngine's current registry scope as it found it: a
    Runner made in a test (``default_scope='mmengine'``) would otherwise turn
    a later ``METRICS.build`` in the same worker to the wrong registry, and
    pytest-xdist runs the modules in any order."""
    module = sys.modules.get('mmengine.registry.default_scope')
    saved = (None if module is None
             else list(module.DefaultScope._instance_dict.items()))
    yield
    if saved is not None:
        instances = module.DefaultScope._instance_dict
        instances.clear()
        instances.update(saved)


def pytest_configure(config):
    """In the controlling process, before pytest-xdist starts its workers:
    build yapf's grammar cache (mmengine.config imports yapf). yapf writes
    that pickle, not atomically, the first time it runs beside a newly
    installed copy of itself; two workers importing mmengine at once in a
    fresh venv then race, and one reads a half-written file ('EOFError: Ran
    out of input' while collecting)."""
    if hasattr(config, 'workerinput'):  # a worker: the controller did it
        return
    try:
        import yapf  # noqa: F401  (loads and caches the grammar)
    except ImportError:
        pass


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def run_tool(tool, *args, timeout=600, cwd=None):
    """Run tools/<tool> in a fresh interpreter; returns CompletedProcess."""
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS))
    return subprocess.run([sys.executable, str(REPO / 'tools' / tool),
                           *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or REPO, env=env)


def run_tool_here(tool, *args, cwd=None):
    """A tool run in this interpreter, for a call that must be REFUSED before
    any work (arguments, config, checkpoint, plan and lock checks).

    ``tool`` is a file of ``tools/`` or the path of another script (e.g.
    mmaction2's own ``train.py``). The file runs as ``__main__`` with
    ``sys.argv`` set, so the entry point is the command line's own
    (``main_guard``, the one-line error, the exit status; an uncaught
    exception gives status 1 and its traceback on stderr, as Python does);
    the working folder, ``sys.path`` and ``os.environ`` are restored after.
    What it saves is the ~5 s of imports a fresh interpreter pays. Runs that
    train, test or write results use :func:`run_tool`. Returns a
    ``CompletedProcess`` as :func:`run_tool` does.
    """
    import contextlib
    import io
    import runpy
    import traceback
    path = str(tool) if os.path.isabs(str(tool)) else str(REPO / 'tools' / tool)
    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    saved = os.getcwd(), sys.argv, list(sys.path), dict(os.environ)
    os.chdir(cwd or REPO)
    sys.argv = [path, *argv]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                runpy.run_path(path, run_name='__main__')
            except SystemExit as exc:
                code = exc.code
            except Exception:  # noqa: BLE001 - what the interpreter prints
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(saved[0])
        sys.argv = saved[1]
        sys.path[:] = saved[2]
        os.environ.clear()
        os.environ.update(saved[3])
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit('message'), as Python does
        err.write(f'{code}\n')
        code = 1
    return subprocess.CompletedProcess([sys.executable, path, *argv], code,
                                       out.getvalue(), err.getvalue())


def write_random_checkpoint(cfg_path, ckpt_path, classes, seed=0, fc_gain=20.0):
    """Save the config's model with random weights as a checkpoint (classes in
    its meta); the FC is scaled so that a random model still tells classes
    and instances apart clearly. Returns the model."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner.checkpoint import save_checkpoint
    from mmaction.registry import MODELS
    import raicl_mm  # noqa: F401

    init_default_scope('mmaction')
    torch.manual_seed(seed)
    model = MODELS.build(Config.fromfile(str(cfg_path)).model)
    with torch.no_grad():
        model.online.fc.weight.mul_(fc_gain)
    save_checkpoint({'state_dict': model.state_dict(),
                     'meta': {'dataset_meta': {'classes': list(classes)}}},
                    str(ckpt_path))
    return model
