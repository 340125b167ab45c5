"""Build raicl_mm with what OpenMMLab packages ship under ``<package>/.mim``.

The metadata is in setup.cfg. This file only adds MIM's extension, as
mmaction2's and mmpretrain's setup.py do: ``configs/``, ``tools/`` and
``model-index.yml`` go into ``raicl_mm/.mim`` (symbolic links for an editable
install, copies for a wheel or an sdist), so that after ``pip install`` of the
wheel ``mim train raicl_mm <config>`` finds ``raicl_mm/.mim/tools/train.py``,
a config found by its name, and ``_base_ = 'raicl_mm::<config>'`` resolves.
"""
import os
import os.path as osp
import shutil
import sys
import warnings

from setuptools import setup

MIM_FILES = ('configs', 'tools', 'model-index.yml')


def add_mim_extension():
    """Put :data:`MIM_FILES` under ``raicl_mm/.mim`` (links or copies)."""
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        mode = 'symlink'  # pip install -e .
    elif any(cmd in sys.argv for cmd in ('sdist', 'bdist_wheel', 'build',
                                          'build_py', 'egg_info')):
        mode = 'copy'  # pip install . / pip wheel . / python -m build
    else:
        return
    repo = osp.dirname(osp.abspath(__file__))
    mim = osp.join(repo, 'raicl_mm', '.mim')
    os.makedirs(mim, exist_ok=True)
    for name in MIM_FILES:
        src = osp.join(repo, name)
        dst = osp.join(mim, name)
        if not osp.exists(src):
            continue
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            try:
                os.symlink(osp.relpath(src, mim), dst)
                continue
            except OSError:  # e.g. Windows without the privilege
                warnings.warn(f'cannot link {dst}; copying {src} instead')
        if osp.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns(
                '__pycache__', '*.pyc'))
        else:
            shutil.copyfile(src, dst)


if __name__ == '__main__':
    add_mim_extension()
    setup()
