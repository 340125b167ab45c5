"""raicl_mm as an OpenMMLab package: metadata ranges, pip check, cross-package
configs, and the built wheel installed into a fresh environment, where
`mim train raicl_mm ...` and `_base_ = 'raicl_mm::...'` work from an empty
folder (the wheel ships configs/, tools/ and model-index.yml under
raicl_mm/.mim, as OpenMMLab's packages do)."""
import configparser
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOP_SKIP = {'.venv', '.git', 'work_dirs', 'data', 'cache', 'build', 'dist',
            'benchmarks', 'tests', '.pytest_cache', '.whl'}
ANY_SKIP = shutil.ignore_patterns('__pycache__', '*.egg-info', '.mim',
                                  '*.pth', '*.pyc')


def _skip(folder, names):
    skip = set(ANY_SKIP(folder, names))
    if Path(folder).resolve() == REPO:
        skip |= TOP_SKIP & set(names)
    return skip


def _requirements():
    from packaging.requirements import Requirement
    cfg = configparser.ConfigParser()
    cfg.read(REPO / 'setup.cfg')
    lines = [ln.split('#')[0].strip() for ln in
             cfg['options']['install_requires'].splitlines()]
    return [Requirement(ln) for ln in lines if ln]


def test_installed_stack_lies_in_every_range():
    reqs = _requirements()
    names = {r.name.lower() for r in reqs}
    # either mmcv or mmcv-lite: neither is a requirement (pip cannot say
    # "either"), mmaction2 checks the version when imported
    assert not names & {'mmcv', 'mmcv-lite', 'mmcv-full'}
    assert any(_version(n) for n in ('mmcv', 'mmcv-lite', 'mmcv-full'))
    for req in reqs:
        if req.marker is not None and not req.marker.evaluate():
            continue
        got = _version(req.name)
        assert got is not None, f'{req.name} is not installed'
        assert req.specifier.contains(got, prereleases=True), (req, got)
    # ranges, not pins
    assert not [r for r in reqs if any(s.operator == '==' for s in
                                       r.specifier)]


def _version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def test_pip_check_is_happy():
    res = subprocess.run([sys.executable, '-m', 'pip', 'check'],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_mmaction_base_inheritance(tmp_path):
    """`_base_ = 'mmaction::...'` needs pkg_resources (setuptools < 81)."""
    cfg = tmp_path / 'child.py'
    cfg.write_text("_base_ = 'mmaction::_base_/default_runtime.py'\n")
    from mmengine.config import Config
    assert Config.fromfile(str(cfg)).default_scope == 'mmaction'


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    """The wheel, built from a copy of the checkout (so the checkout's
    raicl_mm/.mim links stay as they are)."""
    root = tmp_path_factory.mktemp('wheel')
    src = root / 'src'
    shutil.copytree(REPO, src, ignore=_skip, symlinks=True)
    res = subprocess.run(
        [sys.executable, '-m', 'pip', 'wheel', '--no-deps',
         '--no-build-isolation', '-q', '-w', str(root / 'dist'), str(src)],
        capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    wheels = list((root / 'dist').glob('raicl_mm-*.whl'))
    assert len(wheels) == 1
    return wheels[0]


@pytest.mark.slow
def test_wheel_ships_configs_tools_and_model_index(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for must in ('raicl_mm/.mim/configs/raicl_synthetic.py',
                 'raicl_mm/.mim/configs/raicl/raicl_r18-w32_1xb16-30e_'
                 'synthetic-loso-3cls.py',
                 'raicl_mm/.mim/configs/_base_/default_runtime.py',
                 'raicl_mm/.mim/configs/metafile.yml',
                 'raicl_mm/.mim/tools/train.py', 'raicl_mm/.mim/tools/test.py',
                 'raicl_mm/.mim/model-index.yml', 'raicl_mm/data/'
                 'combined_3class_gt.csv'):
        assert must in names, must
    assert any(n.endswith('.dist-info/licenses/LICENSE')
               or n.endswith('.dist-info/LICENSE') for n in names)
    assert not [n for n in names if '__pycache__' in n]


@pytest.fixture(scope='module')
def fresh_env(wheel, tmp_path_factory):
    """A new venv with only the wheel installed in it (not editable); the
    rest of the stack (torch, mmaction2, mim) is reused from this
    environment through a .pth line, to avoid a 5 GB download."""
    root = tmp_path_factory.mktemp('fresh')
    venv = root / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip',
                    str(venv)], check=True, timeout=120)
    py = venv / 'bin' / 'python'
    site = subprocess.run([str(py), '-c', 'import sysconfig; print('
                           'sysconfig.get_paths()["purelib"])'],
                          capture_output=True, text=True, timeout=120,
                          check=True).stdout.strip()
    (Path(site) / '_stack_from_parent.pth').write_text(
        sysconfig.get_paths()['purelib'] + '\n')
    res = subprocess.run([str(py), '-m', 'pip', 'install', '--no-deps', '-q',
                          str(wheel)], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    where = subprocess.run([str(py), '-c', 'import raicl_mm, os; print('
                            'os.path.dirname(raicl_mm.__file__))'],
                           capture_output=True, text=True, cwd=root,
                           timeout=300)
    assert where.stdout.strip().startswith(site), where.stdout + where.stderr
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env.pop('PYTHONPATH', None)
    return py, env, root


def _mim(py, env, cwd, *args):
    return subprocess.run([str(py), '-m', 'mim', *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_mim_finds_the_packaged_config_and_train_script(fresh_env, tmp_path):
    """What `mim train raicl_mm raicl_synthetic.py` resolves from an empty
    folder: the config inside the installed package, found by its name, and
    the package's own tools/train.py (the run itself is the next test's)."""
    pytest.importorskip('mim')
    py, env, _ = fresh_env
    empty = tmp_path / 'empty'
    empty.mkdir()
    code = textwrap.dedent("""
        import os.path as osp
        from mim.utils import get_installed_path, recursively_find
        root = get_installed_path('raicl_mm')
        found = recursively_find(root, 'raicl_synthetic.py', followlinks=True)
        train = osp.join(root, '.mim', 'tools', 'train.py')
        print(root, found, osp.isfile(train))
        print('--cfg-options' in open(train).read())
        """)
    res = subprocess.run([str(py), '-c', code], cwd=empty, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    first, second = res.stdout.strip().splitlines()[-2:]
    root = first.split()[0]
    assert root.endswith('site-packages/raicl_mm') and str(REPO) not in root
    assert "raicl_mm/.mim/configs/raicl_synthetic.py']" in first
    assert first.endswith('True')
    assert second == 'True'


@pytest.mark.slow
def test_mim_train_a_config_inheriting_from_raicl_mm(fresh_env, tmp_path):
    pytest.importorskip('mim')
    py, env, _ = fresh_env
    empty = tmp_path / 'empty2'
    empty.mkdir()
    (empty / 'mine.py').write_text(textwrap.dedent("""\
        _base_ = 'raicl_mm::raicl/raicl_r18-w32_1xb16-30e_synthetic-loso-3cls.py'
        __data = dict(
            synthetic=dict(num_subjects=3, clips_per_subject=3, size=48),
            flow_cfg=dict(method='farneback', size=(32, 32)),
            sampling=dict(num_instances=4), flow_workers=1)
        model = dict(
            backbone=dict(stem_channels=8, base_channels=8),
            mrd_head=dict(embed_dim=16, proj_hidden=16, pred_hidden=16))
        train_dataloader = dict(batch_size=2, dataset=__data)
        val_dataloader = dict(batch_size=2, dataset=__data)
        test_dataloader = dict(batch_size=2, dataset=__data)
        train_cfg = dict(max_epochs=2, val_begin=2, val_interval=2)
        """))
    res = _mim(py, env, empty, 'train', 'raicl_mm', 'mine.py',
               '--work-dir', 'wd', '--cfg-options', 'train_cfg.max_epochs=1',
               'train_cfg.val_begin=1', 'train_cfg.val_interval=1')
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert (empty / 'wd' / 'epoch_1.pth').is_file()
    assert 'Epoch(val) [1]' in out and 'UF1:' in out
    # the run used the installed package, not this checkout
    for mine in ('raicl_mm', 'configs', 'tools'):
        assert str(REPO / mine) not in out


@pytest.mark.slow
def test_installing_the_wheel_keeps_a_full_mmcv(fresh_env, wheel, tmp_path):
    """An environment with full mmcv (here its metadata, as pip sees it) and
    the rest of the stack: resolving the wheel with its dependencies installs
    neither mmcv nor mmcv-lite over it (pip's own resolver, --dry-run)."""
    import json
    py, env, root = fresh_env
    site = Path(subprocess.run(
        [str(py), '-c', 'import sysconfig; print(sysconfig.get_paths()'
         '["purelib"])'], capture_output=True, text=True, timeout=120,
        check=True).stdout.strip())
    dist = site / 'mmcv-2.1.0.dist-info'
    dist.mkdir(exist_ok=True)
    (dist / 'METADATA').write_text('Metadata-Version: 2.1\nName: mmcv\n'
                                   'Version: 2.1.0\n')
    (dist / 'INSTALLER').write_text('pip\n')
    (dist / 'RECORD').write_text('')
    report = tmp_path / 'report.json'
    try:
        res = subprocess.run(
            [str(py), '-m', 'pip', 'install', '--dry-run', '--no-index',
             '--report', str(report), str(wheel)], capture_output=True,
            text=True, timeout=300, env=env)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        # the wheel (already in this venv) and its dependencies resolve
        # against what is installed: nothing to install, no mmcv(-lite)
        names = [i['metadata']['name'].lower()
                 for i in json.loads(report.read_text())['install']]
        assert not {'mmcv', 'mmcv-lite', 'mmcv-full'} & set(names), names
        check = subprocess.run([str(py), '-c', 'from importlib import '
                                'metadata as m; print(m.version("mmcv"))'],
                               capture_output=True, text=True, env=env,
                               timeout=120)
        assert check.stdout.strip() == '2.1.0'
    finally:
        shutil.rmtree(dist)
