"""mmaction2 1.2.0's multimodal models beside transformers >= 5 (seen on a
GPU image with transformers 5.17: every ``import mmaction.models`` failed)."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_works_beside_transformers_5(tmp_path):
    # A transformers 5 as mmaction2 sees it: the distribution's version, and
    # a modeling_utils without apply_chunking_to_forward.
    pkg = tmp_path / 'transformers'
    pkg.mkdir()
    (pkg / '__init__.py').write_text('__version__ = "5.0.0"\n')
    (pkg / 'modeling_utils.py').write_text('class PreTrainedModel: pass\n')
    info = tmp_path / 'transformers-5.0.0.dist-info'
    info.mkdir()
    (info / 'METADATA').write_text('Metadata-Version: 2.1\nName: transformers\n'
                                   'Version: 5.0.0\n')
    code = ('import raicl_mm, mmaction.models, sys; '
            'from mmaction.utils import dependency; '
            'print(raicl_mm.compat.COMPAT_APPLIED["multimodal"] '
            'if hasattr(raicl_mm.compat, "COMPAT_APPLIED") else '
            'raicl_mm.COMPAT_APPLIED["multimodal"], dependency.WITH_MULTIMODAL)')
    env = dict(os.environ, PYTHONPATH=f'{tmp_path}{os.pathsep}{REPO}')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ['True', 'False']
