#!/usr/bin/env bash
# A whole leave-one-subject-out protocol on Slurm: one array task per fold,
# then the pooled report.
#
#   bash tools/slurm_loso.sh CONFIG WORK_DIR [PARTITION] [-- train.py args...]
#
# 1. Here, in the submitting shell (once, before anything is queued):
#      tools/loso.py CONFIG --work-dir WORK_DIR --plan-only [args]
#    the synthetic set when the config has `synthetic`, every clip's flow
#    instances into the config's flow_cache, and WORK_DIR/loso_plan.json
#    (folds, the samples of every fold, clips whose flow failed, settings).
# 2. sbatch --array=0-(N-1): task i runs
#      tools/loso.py CONFIG --work-dir WORK_DIR --task i [args]
#    fold folds[i] exactly as tools/loso.py does (skipped when finished,
#    tested from a final checkpoint, resumed from an earlier one, in a
#    process group that dies with the task, locked per fold), so
#    resubmitting the same command finishes an interrupted protocol.
# 3. sbatch --dependency=afterany:ARRAY: tools/loso_report.py WORK_DIR (exit
#    2 naming the folds and samples not scored).
#
# Arguments after `--` are tools/loso.py's run options: --cfg-options ...,
# --amp (they reach every fold's tools/train.py and are recorded in the plan;
# a resubmission with other ones is refused), and --new-plan.
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
# tools/loso.py --plan-only: locks the work dir while planning, refuses a plan
# made with other settings (pass --new-plan after `--` to archive it), and
# prints the number of folds on its last line.
N=$("$PYTHON" "$ROOT/tools/loso.py" "$CONFIG" --work-dir "$WORK_DIR" --plan-only \
    "${TRAIN_ARGS[@]}" | tail -n 1)
case "$N" in
    ''|*[!0-9]*) echo "error: no plan was written for $CONFIG" >&2; exit 2 ;;
esac
[ "$N" -gt 0 ] || { echo "error: the config gives no folds (no samples?)" >&2; exit 2; }
# --new-plan is for the plan only; the array tasks check the new plan.
TASK_ARGS=()
for a in "${TRAIN_ARGS[@]}"; do
    [ "$a" = --new-plan ] || TASK_ARGS+=("$a")
done

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
echo "task \$SLURM_ARRAY_TASK_ID on \$(hostname)"
# The fold of the plan: skipped when finished, tested from its final
# checkpoint, resumed from an earlier one, else trained; locked per fold.
exec $(q "$PYTHON" "$ROOT/tools/loso.py" "$CONFIG") --work-dir $(q "$WORK_DIR") --task "\$SLURM_ARRAY_TASK_ID" $(q "${TASK_ARGS[@]}")
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
