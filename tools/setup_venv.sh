#!/usr/bin/env bash
# Set up raicl_mm on a fresh machine: a .venv in the checkout with the stack
# that works together (docs/stack.md). Safe to run again: it only installs
# what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# no look-up of a newer pip at each of the installs below
export PIP_DISABLE_PIP_VERSION_CHECK=1
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# One resolution for everything: torch/torchvision pinned (so that nothing
# resolves a different build); the package (editable; setup.py links
# configs/, tools/ and model-index.yml into raicl_mm/.mim as OpenMMLab packages
# do), the tests and OpenMMLab's `mim` (its resolution keeps setuptools in
# raicl_mm's range, >=77.0.3,<81, which still ships pkg_resources for
# mmengine's `mmaction::` look-ups).
# mmcv: keep a full mmcv if the environment has one (found, not imported: it
# may need what is installed here); otherwise mmcv-lite (the `lite` extra: no
# compiled ops; Ra-ICL needs none). Never one over the other.
EXTRAS=tests,mim
if ! .venv/bin/python -c "import importlib.util as u, sys; sys.exit(0 if u.find_spec('mmcv') else 1)"; then
  EXTRAS=$EXTRAS,lite
fi
.venv/bin/python -m pip install -q 'torch==2.14.1' 'torchvision==0.29.1' -e ".[$EXTRAS]"
# mmengine and mmcv-lite pull in opencv-python, which overwrites the cv2 of
# opencv-contrib-python-headless; TV-L1 (cv2.optflow) is contrib-only, so the
# contrib build is put back last.
if ! .venv/bin/python -c "import cv2, sys; sys.exit(0 if hasattr(cv2, 'optflow') else 1)" 2>/dev/null; then
  .venv/bin/python -m pip install -q --force-reinstall --no-deps opencv-contrib-python-headless
fi
.venv/bin/python -m pip check
# what is installed, read from the packages' metadata (importing torch and the
# stack here would cost seconds that the next command pays again)
.venv/bin/python -c "from importlib.metadata import version as v; import cv2; cv2.optflow; print('raicl_mm', v('raicl_mm'), '| torch', v('torch'), '| cv2', cv2.__version__, 'with optflow')"
