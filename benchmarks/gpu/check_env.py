"""Import test of the GPU suite in a device-like environment (CPU machine).

    python -m benchmarks.gpu.check_env --wheels .whl [--run-tiny OUTDIR]

The GPU machine has Python 3.12 with torch, numpy, opencv-python-headless,
pandas, matplotlib and tensorboard (and what they depend on), and nothing of
OpenMMLab. This builds that environment from the current interpreter's
site-packages: a folder of links to exactly those distributions and their
dependencies (``Requires-Dist``, transitively, extras left out), then installs
into a second folder the wheels of ``--wheels`` whose distribution is not
already there, as ``benchmarks/gpu/run.sh`` does on the device. Binary cp312
wheels cannot be installed under another Python: for those (torchvision,
PyYAML) the current interpreter's copy of the same distribution is linked
instead and named in the output. Then ``python -S`` (no site-packages) with
``PYTHONPATH`` = wheels : device-like : repository imports raicl_mm, builds
the synthetic model and runs one loss; ``--run-tiny`` also runs the whole
suite at tiny size in that environment.

Exit status 0 when everything imports; the output lists the distributions
that the wheels had to supply, and any import error in one line.
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import tempfile

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

#: What the GPU machine has installed (its image), by distribution name.
DEVICE_ROOTS = ('torch', 'numpy', 'opencv-python-headless', 'pandas',
                'matplotlib', 'tensorboard', 'pip', 'setuptools')
#: Stand-ins: a distribution of the device missing here under that name.
ALIASES = {'opencv-python-headless': ('opencv-python-headless',
                                      'opencv-contrib-python-headless',
                                      'opencv-python')}


def norm(name: str) -> str:
    return re.sub(r'[-_.]+', '-', name).lower()


def _dist(name):
    for alias in ALIASES.get(norm(name), (name,)):
        try:
            return md.distribution(alias)
        except md.PackageNotFoundError:
            continue
    return None


def closure(roots):
    """Distributions of ``roots`` and their non-extra requirements."""
    seen, todo = {}, list(roots)
    while todo:
        name = todo.pop()
        d = _dist(name)
        if d is None or norm(d.metadata['Name']) in seen:
            continue
        seen[norm(d.metadata['Name'])] = d
        for req in d.requires or ():
            if 'extra ==' in req or 'extra==' in req:
                continue
            marker = req.split(';', 1)
            if len(marker) == 2 and not _marker_true(marker[1]):
                continue
            todo.append(re.split(r'[\s<>=!~\[;(]', req.strip(), 1)[0])
    return seen


def _marker_true(marker: str) -> bool:
    try:
        from packaging.markers import Marker
        return Marker(marker).evaluate()
    except Exception:  # noqa: BLE001 - keep the requirement when unsure
        return True


def top_entries(dist):
    """Top-level files/folders of a distribution in its site-packages."""
    base = str(dist.locate_file(''))
    tops = set()
    for f in dist.files or ():
        first = str(f).split('/')[0]
        if first in ('..', '') or first.endswith('.pth'):
            continue
        tops.add(first)
    return base, sorted(tops)


def link_dists(dists, dest):
    for d in dists.values():
        base, tops = top_entries(d)
        for t in tops:
            src, dst = osp.join(base, t), osp.join(dest, t)
            if osp.exists(src) and not osp.lexists(dst):
                os.symlink(src, dst)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--wheels', default=osp.join(REPO, '.whl'))
    ap.add_argument('--run-tiny', metavar='OUTDIR',
                    help='also run benchmarks/gpu/run.sh OUTDIR --tiny '
                    '--device cpu in that environment')
    ap.add_argument('--keep', help='build the environment here (kept)')
    args = ap.parse_args(argv)
    tmp = args.keep or tempfile.mkdtemp(prefix='gpu_env_')
    device_site = osp.join(tmp, 'device_site')
    wheel_site = osp.join(tmp, 'wheel_site')
    for d in (device_site, wheel_site):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    base = closure(DEVICE_ROOTS)
    link_dists(base, device_site)
    print('device-like environment:', ', '.join(sorted(base)))
    supplied, linked = [], []
    wheels = sorted(f for f in os.listdir(args.wheels) if f.endswith('.whl'))
    pure = []
    for w in wheels:
        name = norm(w.split('-')[0])
        if name in base:
            continue
        supplied.append(name)
        if w.endswith('-none-any.whl'):
            pure.append(osp.join(args.wheels, w))
        else:
            d = _dist(name)
            if d is None:
                print(f'error: {w} is binary and {name} is not installed '
                      'here to stand in for it', file=sys.stderr)
                return 1
            link_dists({name: d}, wheel_site)
            linked.append(f'{name} {d.version} (this interpreter\'s, for '
                          f'{w})')
    if pure:
        subprocess.run([sys.executable, '-m', 'pip', 'install', '-q',
                        '--no-index', '--no-deps', '--no-compile',
                        '--no-cache-dir', '--upgrade', '--target',
                        wheel_site, *pure], check=True)
    print('supplied by the wheels:', ', '.join(supplied))
    if linked:
        print('binary wheels stood in for by:', '; '.join(linked))
    path = [wheel_site, device_site, REPO]
    if 'scipy' not in base:  # as run.sh: the stand-in when scipy is missing
        path.append(osp.join(REPO, 'benchmarks', 'gpu', 'stubs'))
        print('scipy: benchmarks/gpu/stubs/scipy stands in')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path),
               PYTHONNOUSERSITE='1')
    env.pop('PYTHONHOME', None)
    probe = (
        'import sys, raicl_mm, torch\n'
        'from mmengine.config import Config\n'
        'from mmaction.registry import MODELS\n'
        'from mmaction.structures import ActionDataSample\n'
        'from mmengine.registry import init_default_scope\n'
        "cfg = Config.fromfile('configs/raicl_synthetic.py')\n"
        "init_default_scope('mmaction')\n"
        'm = MODELS.build(cfg.model)\n'
        'x = torch.randn(2, 2, 3, 64, 64)\n'
        's = [ActionDataSample().set_gt_label(i) for i in range(2)]\n'
        "loss = m.parse_losses(m(x, s, mode='loss'))[0]\n"
        'loss.backward()\n'
        'import raicl_mm.flow.tvl1_torch, raicl_mm.flow.batched\n'
        'bad = [n for n, mod in list(sys.modules.items()) if getattr(mod, '
        "'__file__', None) and 'site-packages' in mod.__file__ and not "
        'mod.__file__.startswith(tuple(sys.path[:2]))]\n'
        "print('probe ok: loss', float(loss), 'outside the environment:', "
        'bad[:5])\n'
        'sys.exit(1 if bad else 0)\n')
    res = subprocess.run([sys.executable, '-S', '-c', probe], cwd=REPO,
                         env=env, capture_output=True, text=True)
    tail = (res.stdout + res.stderr).strip().splitlines()
    print('\n'.join(tail[-12:]))
    if res.returncode != 0:
        print('error: the import probe failed in the device-like '
              'environment', file=sys.stderr)
        return 1
    if args.run_tiny:
        env['PYTHON'] = f'{sys.executable} -S'
        env['RAICL_GPU_NO_WHEELS'] = '1'  # already on PYTHONPATH
        res = subprocess.run(['bash', 'benchmarks/gpu/run.sh', args.run_tiny,
                              '--tiny', '--device', 'cpu'], cwd=REPO, env=env)
        print(f'run.sh --tiny in the device-like environment: rc '
              f'{res.returncode}')
        return res.returncode
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
