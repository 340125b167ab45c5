#!/usr/bin/env bash
# Download the wheels that benchmarks/gpu/run.sh installs on a GPU machine
# that has Python 3.12, torch, opencv-python-headless, pandas, matplotlib and
# tensorboard but no OpenMMLab package and no registry (docs/gpu.md).
#
#   bash benchmarks/gpu/fetch_wheels.sh            # -> .whl/ (git-ignored)
#   bash benchmarks/gpu/fetch_wheels.sh --check    # + import test in a
#                                                  #   device-like environment
#
# Every wheel is cp312 manylinux x86_64 or pure Python (py3-none-any);
# run.sh installs only the distributions the machine does not already have
# (so a torchvision that matches the machine's torch is never shadowed).
# The whole tree plus .whl/ travels in 64 MiB: this script refuses a set
# over 40 MiB.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
DEST=.whl
mkdir -p "$DEST"

# The OpenMMLab stack (pinned as setup.cfg), torchvision for torch 2.11 (the
# device's torch; installed there only if it has no torchvision), and the
# pure-Python dependencies that the stack and raicl_mm import and that the
# device image lacks (found with --check: import test without them).
WHEELS=(
  mmengine==0.10.7 mmcv-lite==2.1.0 mmaction2==1.2.0 mmpretrain==1.2.0
  torchvision==0.26.0
  addict==2.4.0 yapf==0.43.0 platformdirs==4.14.9 termcolor==3.3.0
  rich==15.0.0 markdown-it-py==4.3.0 mdurl==0.1.2 pygments==2.21.0
  einops==0.8.2 mat4py==0.6.0 modelindex==0.0.2 model-index==0.1.11
  ordered-set==4.1.0 click==8.5.1
  importlib-metadata==10.2.0 zipp==4.1.2 lazy-importer==0.1.0
  PyYAML==6.0.4 openpyxl==3.1.5 et-xmlfile==2.0.0
)
"$PY" -m pip download -q --no-deps --only-binary=:all: \
  --python-version 3.12 --implementation cp --abi cp312 \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux_2_17_x86_64 --platform any \
  -d "$DEST" "${WHEELS[@]}"

# Only the pinned set: an older download of another version is removed.
"$PY" - "$DEST" "${WHEELS[@]}" <<'PYEOF'
import os, re, sys
dest, specs = sys.argv[1], sys.argv[2:]
norm = lambda s: re.sub(r'[-_.]+', '-', s).lower()
want = {norm(s.split('==')[0]): s.split('==')[1] for s in specs}
for f in sorted(os.listdir(dest)):
    if not f.endswith('.whl'):
        continue
    name, ver = f.split('-')[:2]
    if want.get(norm(name)) != ver:
        os.remove(os.path.join(dest, f))
        print(f'removed {f} (not in the pinned set)')
PYEOF

total=$(du -sb "$DEST" | cut -f1)
echo "wheels: $(ls "$DEST"/*.whl | wc -l) files, $((total / 1024 / 1024)) MiB ($total bytes) in $DEST/"
tracked=$(git ls-files -z | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
echo "git-tracked tree: $((tracked / 1024 / 1024)) MiB ($tracked bytes); together $(((total + tracked) / 1024 / 1024)) MiB of the 64 MiB that travel"
if [ "$total" -gt $((40 * 1024 * 1024)) ]; then
  echo "error: the wheels exceed 40 MiB" >&2
  exit 1
fi
if [ "${1:-}" = "--check" ]; then
  exec "$PY" -m benchmarks.gpu.check_env --wheels "$DEST"
fi
