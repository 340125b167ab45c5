#!/usr/bin/env bash
# The GPU suite in one call (docs/gpu.md):
#
#   bash benchmarks/gpu/run.sh OUTDIR [--tiny] [--device cuda|cpu]
#
# Installs the wheels of .whl/ that the machine lacks (benchmarks/gpu/
# fetch_wheels.sh made them), then runs the sections one after another, each
# in its own process under its own time limit, each writing OUTDIR/<name>.json
# (a section that fails or runs out of time does not stop the others):
#   smoke     every path of the package on the device   limit 45 s
#   tvl1      batched torch TV-L1: pairs/s, CPU vs device limit 35 s
#   train     bench_train.py: fp32, bf16, 2 workers      limit 40 s
#   protocol  CDE-sized LOSO: flow, folds 8/1/4/2 at once limit 95 s
#   evidence  benchmarks/gpu/evidence.py: the rest of GPU_SUITE_TOTAL_S
# then OUTDIR/summary.json. Total: GPU_SUITE_TOTAL_S seconds (default 420);
# the limits: GPU_LIMIT_SMOKE / _TVL1 / _TRAIN / _PROTOCOL.
# Exit status: 0 when every section that ran passed, 1 otherwise.
# --device defaults to cuda (a section asked for cuda fails without it);
# --tiny: every section a few seconds (the CPU test: --tiny --device cpu).
# PYTHON (default python3) may hold flags, e.g. PYTHON="python -S".
set -u
cd "$(dirname "$0")/../.."
if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
  echo "usage: bash benchmarks/gpu/run.sh OUTDIR [--tiny] [--device cuda|cpu]" >&2
  exit 2
fi
OUT=$1; shift
TINY=""; DEVICE=cuda
while [ $# -gt 0 ]; do
  case "$1" in
    --tiny) TINY=--tiny ;;
    --device) DEVICE=${2:?--device needs cuda or cpu}; shift ;;
    --device=*) DEVICE=${1#--device=} ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
case "$DEVICE" in cuda|cpu) ;; *) echo "run.sh: --device cuda|cpu" >&2; exit 2 ;; esac
read -r -a PY <<< "${PYTHON:-python3}"
mkdir -p "$OUT/logs"
OUT=$(cd "$OUT" && pwd)
T0=$(date +%s)
TOTAL=${GPU_SUITE_TOTAL_S:-420}
ENV_JSON="$OUT/logs/environment.json"
TSV="$OUT/logs/sections.tsv"
: > "$TSV"

# --- 1. the wheels the machine lacks -> /tmp/site --------------------------
WHEEL_NOTE="no .whl/ folder"
SITE=${GPU_SUITE_SITE:-/tmp/site}
if [ -n "${RAICL_GPU_NO_WHEELS:-}" ]; then
  WHEEL_NOTE="RAICL_GPU_NO_WHEELS set: nothing installed"
elif ls .whl/*.whl >/dev/null 2>&1; then
  MISSING=$("${PY[@]}" - .whl <<'PYEOF'
import glob, importlib.metadata as md, os, re, sys
for w in sorted(glob.glob(os.path.join(sys.argv[1], '*.whl'))):
    dist = re.sub(r'[-_.]+', '-', os.path.basename(w).split('-')[0]).lower()
    try:
        md.version(dist)
    except md.PackageNotFoundError:
        print(w)
PYEOF
)
  if [ -n "$MISSING" ]; then
    # shellcheck disable=SC2086
    if "${PY[@]}" -m pip install -q --no-index --no-deps --no-compile \
        --no-cache-dir --upgrade --target "$SITE" $MISSING \
        > "$OUT/logs/wheels.log" 2>&1; then
      WHEEL_NOTE="pip installed into $SITE: $(echo $MISSING | xargs -n1 basename | tr '\n' ' ')"
    else
      # No pip: a wheel is a zip of its files.
      "${PY[@]}" - "$SITE" $MISSING >> "$OUT/logs/wheels.log" 2>&1 <<'PYEOF'
import sys, zipfile
for w in sys.argv[2:]:
    zipfile.ZipFile(w).extractall(sys.argv[1])
PYEOF
      WHEEL_NOTE="pip failed (logs/wheels.log); unzipped into $SITE: $(echo $MISSING | xargs -n1 basename | tr '\n' ' ')"
    fi
    export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
  else
    WHEEL_NOTE="every wheel's distribution already installed"
  fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
SCIPY=installed
if "${PY[@]}" -c 'import scipy, sys; sys.exit(0 if getattr(scipy, "STUB", False) else 1)' >/dev/null 2>&1; then
  SCIPY="stub: benchmarks/gpu/stubs/scipy, already on PYTHONPATH"
elif ! "${PY[@]}" -c 'import scipy' >/dev/null 2>&1; then
  export PYTHONPATH="$PYTHONPATH:$PWD/benchmarks/gpu/stubs"
  SCIPY="stub: benchmarks/gpu/stubs/scipy (t.ppf, stats.mode)"
fi
DISTUTILS=available
if ! "${PY[@]}" -c 'from distutils import errors' >/dev/null 2>&1; then
  export PYTHONPATH="$PYTHONPATH:$PWD/benchmarks/gpu/stubs_distutils"
  DISTUTILS="stub: benchmarks/gpu/stubs_distutils (errors only)"
fi
"${PY[@]}" - "$ENV_JSON" "$WHEEL_NOTE" "$SCIPY" "$DEVICE" "$TINY" "$DISTUTILS" <<'PYEOF' \
  > "$OUT/logs/environment.log" 2>&1
import json, os, platform, sys, time
out, wheels, scipy, device, tiny, distutils = sys.argv[1:7]
env = dict(python=platform.python_version(), executable=sys.executable,
           wheels=wheels, scipy=scipy, distutils=distutils,
           device_requested=device,
           tiny=bool(tiny), pythonpath=os.environ.get('PYTHONPATH', ''),
           date=time.strftime('%Y-%m-%dT%H:%M:%S%z'))
try:
    import raicl_mm, torch
    env['import_raicl_mm'] = 'ok'
    env['torch'] = torch.__version__
    env['cuda_available'] = torch.cuda.is_available()
    if torch.cuda.is_available():
        env['gpu'] = torch.cuda.get_device_name(0)
except Exception as exc:  # noqa: BLE001
    env['import_raicl_mm'] = f'{type(exc).__name__}: {exc}'
with open(out, 'w') as f:
    json.dump(env, f, indent=1)
print(json.dumps(env))
PYEOF
sed 's/^/env: /' "$OUT/logs/environment.log" | cut -c1-400

# --- 2. the sections --------------------------------------------------------
elapsed() { echo $(( $(date +%s) - T0 )); }
# seconds since a $(date +%s%N) stamp, to the millisecond
since() { local ms=$(( ($(date +%s%N) - $1) / 1000000 )); printf '%d.%03d' $((ms / 1000)) $((ms % 1000)); }

# run_section NAME LIMIT_S BUDGET_S: python -m benchmarks.gpu.NAME
run_section() {
  local name=$1 limit=$2 budget=$3 t rc
  echo "== $name (limit ${limit} s, at $(elapsed) s)"
  t=$(date +%s%N)
  timeout -k 5 "$limit" "${PY[@]}" -m "benchmarks.gpu.$name" \
    --out "$OUT/$name.json" --device "$DEVICE" $TINY --budget-s "$budget" \
    > "$OUT/logs/$name.log" 2>&1
  rc=$?
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$rc" \
    "$(since "$t")" "$limit" "" >> "$TSV"
  echo "   rc $rc"
}

if [ -n "$TINY" ]; then
  # tiny: the code paths on CPU; limits only catch a hang.
  run_section smoke 240 60
  run_section tvl1 240 60
  run_section train 300 120
  run_section protocol 300 120
else
  # Hard limits (s); a section stops starting measurements 6 s before.
  L_SMOKE=${GPU_LIMIT_SMOKE:-45}; L_TVL1=${GPU_LIMIT_TVL1:-35}
  L_TRAIN=${GPU_LIMIT_TRAIN:-40}; L_PROTOCOL=${GPU_LIMIT_PROTOCOL:-95}
  run_section smoke "$L_SMOKE" $((L_SMOKE - 6))
  run_section tvl1 "$L_TVL1" $((L_TVL1 - 6))
  run_section train "$L_TRAIN" $((L_TRAIN - 6))
  run_section protocol "$L_PROTOCOL" $((L_PROTOCOL - 6))
fi

# evidence: owned elsewhere; it gets what is left of the total.
LEFT=$(( TOTAL - $(elapsed) - 10 ))
if [ "$LEFT" -lt 30 ]; then LEFT=30; fi
EV_LIMIT=$(( LEFT + 15 ))
# tiny: the budget only stops a grid that would outlive the hang limit (a
# busy machine, e.g. a parallel test run, must not cut rows off the tiny grid)
[ -n "$TINY" ] && LEFT=380 && EV_LIMIT=400
if [ -f benchmarks/gpu/evidence.py ]; then
  echo "== evidence (budget ${LEFT} s, at $(elapsed) s)"
  t=$(date +%s%N)
  mkdir -p "$OUT/evidence"
  timeout -k 5 "$EV_LIMIT" "${PY[@]}" benchmarks/gpu/evidence.py \
    --out "$OUT/evidence" $TINY --device "$DEVICE" --budget-s "$LEFT" \
    > "$OUT/logs/evidence.log" 2>&1
  rc=$?
  "${PY[@]}" - "$OUT" "$rc" <<'PYEOF'
import json, os, sys
out, rc = sys.argv[1], int(sys.argv[2])
files = sorted(os.path.relpath(os.path.join(d, f), out)
               for d, _, fs in os.walk(os.path.join(out, 'evidence'))
               for f in fs)
status = 'pass' if rc == 0 else 'fail'
with open(os.path.join(out, 'evidence.json'), 'w') as f:
    json.dump(dict(section='evidence', status=status, rc=rc, files=files,
                   checks={}, figures={},
                   note='benchmarks/gpu/evidence.py writes its own files '
                        'under evidence/'), f, indent=1)
PYEOF
  printf '%s\t%s\t%s\t%s\t%s\n' evidence "$rc" \
    "$(since "$t")" "$EV_LIMIT" "" >> "$TSV"
  echo "   rc $rc"
else
  printf '%s\t\t\t\t%s\n' evidence \
    "skipped: benchmarks/gpu/evidence.py missing" >> "$TSV"
  echo "== evidence skipped: benchmarks/gpu/evidence.py missing"
fi

echo "total $(elapsed) s"
"${PY[@]}" -m benchmarks.gpu.summarize "$OUT" "$TSV" "$ENV_JSON"
