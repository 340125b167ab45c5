#!/usr/bin/env bash
# A whole leave-one-subject-out protocol on Slurm: one array task per fold,
# then the pooled report.
#
#   bash tools/slurm_loso.sh CONFIG WORK_DIR [PARTITION] [-- train.py args...]
#
# 1. Here, in the submitting shell (once, before anything is queued): the
#    synthetic set when the config has `synthetic`, every clip's flow
#    instances into the config's flow_cache, and WORK_DIR/loso_plan.json --
#    the same preparation and the same plan (keys, fold order) as
#    tools/loso.py, by calling its own functions.
# 2. sbatch --array=0-(N-1): task i trains fold folds[i] of the plan with
#      tools/train.py CONFIG --fold KEY --work-dir WORK_DIR/fold_KEY [args]
#    A fold that already has predictions.json is skipped, one with a
#    checkpoint resumes (as tools/loso.py does), so resubmitting the same
#    command finishes an interrupted protocol.
# 3. sbatch --dependency=afterany:ARRAY: tools/loso_report.py WORK_DIR (it
#    exits 2 and says which folds are missing if some fold failed).
#
# Arguments after `--` go to every tools/train.py (e.g. --cfg-options ...,
# --amp); their --cfg-options also apply to the preparation and the plan.
#
# Environment:
#   PYTHON         interpreter (default: the checkout's .venv/bin/python,
#                  else python3); compute nodes must see the same path,
#                  the checkout, the data, the flow cache and WORK_DIR.
#   CPUS_PER_TASK  cores per fold (default 2; also OMP_NUM_THREADS)
#   SBATCH_ARGS    extra options for every sbatch, e.g.
#                  "--gres=gpu:1 --time=04:00:00 --mem=16G"
#   MAX_PARALLEL   at most this many folds at once (--array=0-N%MAX_PARALLEL)
#   JOB_NAME       default raicl_loso
# Prints the array and report job ids; they are also in WORK_DIR/slurm/jobs.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG WORK_DIR [PARTITION] [-- train.py args...]" >&2
    exit 2
fi
CONFIG=$1
WORK_DIR=$2
shift 2
PARTITION=
if [ $# -gt 0 ] && [ "$1" != -- ]; then
    PARTITION=$1
    shift
fi
if [ $# -gt 0 ] && [ "$1" = -- ]; then
    shift
fi
TRAIN_ARGS=("$@")

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then
        PYTHON="$ROOT/.venv/bin/python"
    else
        PYTHON="$(command -v python3 || command -v python)"
    fi
fi
command -v sbatch >/dev/null || { echo "error: sbatch not found" >&2; exit 2; }
[ -f "$CONFIG" ] || { echo "error: config file $CONFIG does not exist" >&2; exit 2; }
CONFIG="$(cd "$(dirname "$CONFIG")" && pwd)/$(basename "$CONFIG")"
mkdir -p "$WORK_DIR/slurm"
WORK_DIR="$(cd "$WORK_DIR" && pwd)"
CPUS_PER_TASK=${CPUS_PER_TASK:-2}
JOB_NAME=${JOB_NAME:-raicl_loso}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

# ---- 1. prepare the data and write the plan (as tools/loso.py does) --------
RAICL_ROOT="$ROOT" "$PYTHON" - "$CONFIG" "$WORK_DIR" "${TRAIN_ARGS[@]}" <<'PY'
import os, os.path as osp, sys
root = os.environ['RAICL_ROOT']
sys.path[:0] = [root, osp.join(root, 'tools')]
import raicl_mm  # noqa: F401  (stack fixes)
import loso, train
from raicl_mm.datasets.folds import list_folds
from raicl_mm.datasets.sources import get_classes
from raicl_mm.runner_setup import ToolError, load_config
config, work_dir = sys.argv[1], sys.argv[2]
args = train.parse_args([config] + sys.argv[3:])
cfg_options = args.cfg_options or {}
try:
    cfg = load_config(config, cfg_options)
except ToolError as err:
    sys.exit(f'error: {err}')
report, _ = loso.prepare(cfg)
folds = list_folds(report.records)
if not folds:
    sys.exit('error: the config gives no folds (no samples?)')
# Same file, same keys as tools/loso.py writes (loso_report.py reads it).
loso._atomic_json(osp.join(work_dir, 'loso_plan.json'), dict(
    config=config,
    cfg_options=cfg_options, protocol=cfg.protocol,
    classes=list(get_classes(cfg.protocol)), folds=folds,
    samples=len(report.records),
    flow=dict(cfg.flow_cfg), sampling=dict(cfg.sampling)))
print(f'LOSO plan: {len(folds)} folds -> {osp.join(work_dir, "loso_plan.json")}',
      file=sys.stderr)
PY
N=$("$PYTHON" -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["folds"]))' \
    "$WORK_DIR/loso_plan.json")

SB=(--parsable --chdir="$ROOT" --export=ALL)
[ -n "$PARTITION" ] && SB+=(--partition="$PARTITION")
# shellcheck disable=SC2206  # SBATCH_ARGS is a list of options on purpose
[ -n "${SBATCH_ARGS:-}" ] && SB+=(${SBATCH_ARGS})
ARRAY="0-$((N - 1))"
[ -n "${MAX_PARALLEL:-}" ] && ARRAY="$ARRAY%$MAX_PARALLEL"

# Shell-quote each argument, joined by single spaces (nothing for none).
q() {
    local out=() a
    for a in "$@"; do out+=("$(printf '%q' "$a")"); done
    printf '%s' "${out[*]}"
}

# ---- 2. one array task per fold --------------------------------------------
ARRAY_ID=$(sbatch "${SB[@]}" --job-name="$JOB_NAME" --array="$ARRAY" \
    --ntasks=1 --cpus-per-task="$CPUS_PER_TASK" \
    --output="$WORK_DIR/slurm/fold_%a.out" <<EOF
#!/usr/bin/env bash
set -euo pipefail
export OMP_NUM_THREADS=\${SLURM_CPUS_PER_TASK:-$CPUS_PER_TASK}
export MKL_NUM_THREADS=\$OMP_NUM_THREADS
KEY=\$($(q "$PYTHON") -c 'import json, sys; print(json.load(open(sys.argv[1]))["folds"][int(sys.argv[2])])' $(q "$WORK_DIR/loso_plan.json") "\$SLURM_ARRAY_TASK_ID")
FOLD_DIR=$(q "$WORK_DIR")/fold_\$KEY
mkdir -p "\$FOLD_DIR"
if [ -f "\$FOLD_DIR/predictions.json" ]; then
    echo "fold \$KEY: finished before, skipped"
    exit 0
fi
RESUME=()
[ -f "\$FOLD_DIR/last_checkpoint" ] && RESUME=(--resume)
echo "fold \$KEY (task \$SLURM_ARRAY_TASK_ID) on \$(hostname)"
exec $(q "$PYTHON" "$ROOT/tools/train.py" "$CONFIG") --fold "\$KEY" --work-dir "\$FOLD_DIR" "\${RESUME[@]}" $(q "${TRAIN_ARGS[@]}")
EOF
)
ARRAY_ID=${ARRAY_ID%%;*}

# ---- 3. the pooled report once every fold has ended ------------------------
REPORT_ID=$(sbatch "${SB[@]}" --job-name="${JOB_NAME}_report" \
    --dependency="afterany:$ARRAY_ID" --ntasks=1 --cpus-per-task=1 \
    --output="$WORK_DIR/slurm/report.out" <<EOF
#!/usr/bin/env bash
exec $(q "$PYTHON" "$ROOT/tools/loso_report.py" "$WORK_DIR")
EOF
)
REPORT_ID=${REPORT_ID%%;*}

printf 'array=%s\nreport=%s\nfolds=%s\n' "$ARRAY_ID" "$REPORT_ID" "$N" \
    > "$WORK_DIR/slurm/jobs"
echo "submitted: fold array $ARRAY_ID ($N tasks, --array=$ARRAY), report $REPORT_ID"
echo "  logs: $WORK_DIR/slurm/fold_<i>.out, report: $WORK_DIR/report/report.md"
