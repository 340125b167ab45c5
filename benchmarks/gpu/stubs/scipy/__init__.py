"""A stand-in for scipy on the GPU machine, which has no scipy (its wheel is
~35 MiB, more than the 64 MiB that travel with the suite allow beside the
rest). ``benchmarks/gpu/run.sh`` puts ``benchmarks/gpu/stubs`` on the path
only when ``import scipy`` fails there, and records that in
``summary.json``.

What the suite reaches of scipy: ``mmaction.datasets.transforms`` imports
``scipy`` and ``scipy.stats.mode`` at import time (pose transforms, never
used by raicl_mm), and :func:`raicl_mm.protocol.ablation._t_quantile` calls
``scipy.stats.t.ppf``. Those two are implemented (``t.ppf`` exactly, checked
against scipy in ``tests/test_gpu_suite.py``); anything else raises
``ImportError`` naming this stub.
"""
__version__ = '0+raicl-gpu-stub'
STUB = True


def __getattr__(name):
    raise ImportError(f'scipy.{name}: scipy is not installed on this machine; '
                      'benchmarks/gpu/stubs/scipy stands in only for '
                      'scipy.stats.t.ppf and scipy.stats.mode')
