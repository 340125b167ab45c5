"""raicl_mm: Ra-ICL (Region-aware Instance Consistency Learning) for mmaction2.

Importing the package first applies the stack fixes of :mod:`raicl_mm.compat`
(before anything imports ``mmaction.models``), then imports every registered
part so that configs can load the plugin with
``custom_imports = dict(imports=['raicl_mm'], allow_failed_imports=False)``.
"""
from . import compat

COMPAT_APPLIED = compat.apply_all()

from . import datasets, engine, evaluation, models  # noqa: E402,F401
from . import registry  # noqa: E402,F401  (the raicl_mm:: config scope)

__version__ = '0.1.0'
__all__ = ['compat', 'datasets', 'engine', 'evaluation', 'models', 'registry',
           '__version__']
