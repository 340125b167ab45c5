"""A stand-in for ``distutils`` (removed from Python 3.12) for the GPU suite:
mmengine's ``collect_env`` (run by every Runner) does
``from distutils import errors`` and catches
``errors.DistutilsPlatformError``. run.sh puts this folder on the path only
when that import fails (no setuptools shim on the machine) and records it."""
STUB = True
