#!/usr/bin/env bash
# Distributed (data-parallel) training with torchrun, like mmaction2's
# tools/dist_train.sh:
#
#   bash tools/dist_train.sh CONFIG GPUS [tools/train.py args...]
#
# GPUS processes on this node (one per GPU; on a CPU-only host, GPUS CPU
# processes). Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every
# node. Each process gets batch_size samples per step, so the global batch is
# GPUS * NNODES * train_dataloader.batch_size.
#
# Backend: the configs say env_cfg.dist_cfg.backend='nccl' (GPUs). When torch
# sees no CUDA device this script switches to gloo and wraps the model in DDP
# with device_ids=None (what DDP needs for a CPU module), by prepending
#   --cfg-options env_cfg.dist_cfg.backend=gloo model_wrapper_cfg.type=...
# Options given after CONFIG GPUS are parsed later and win. DIST_BACKEND=gloo
# or DIST_BACKEND=nccl forces a backend (DIST_BACKEND=config: leave the config
# alone).
#
# PYTHON selects the interpreter; default: the checkout's .venv/bin/python
# when it exists, else the python of the current environment.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG GPUS [train.py args...]" >&2
    exit 2
fi
CONFIG=$1
GPUS=$2
shift 2

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then
        PYTHON="$ROOT/.venv/bin/python"
    else
        PYTHON="$(command -v python3 || command -v python)"
    fi
fi

NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}

BACKEND=${DIST_BACKEND:-}
if [ -z "$BACKEND" ]; then
    if "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
        BACKEND=config
    else
        BACKEND=gloo
    fi
fi
EXTRA=()
case "$BACKEND" in
    config) ;;
    gloo)
        EXTRA=(--cfg-options env_cfg.dist_cfg.backend=gloo)
        if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
            # mmengine passes device_ids=[LOCAL_RANK] to DDP, which torch
            # refuses for a CPU module; an explicit wrapper config does not.
            EXTRA+=(model_wrapper_cfg.type=MMDistributedDataParallel
                    model_wrapper_cfg.device_ids=None
                    model_wrapper_cfg.broadcast_buffers=False
                    model_wrapper_cfg.find_unused_parameters=False)
        fi
        ;;
    *) EXTRA=(--cfg-options "env_cfg.dist_cfg.backend=$BACKEND") ;;
esac

export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

# Data preparation, once, before the workers start: the synthetic set (when
# the config has `synthetic`) and every clip's flow instances in the cache,
# exactly as tools/loso.py does it (raicl_mm.protocol.plan.prepare_data).
# Without it every rank would generate and extract the same files at the
# same time (the synthetic generator clears its folder first: concurrent
# ranks corrupt each other). PREPARE=auto (default):
# on single-node runs; PREPARE=1: always (multi-node: only with a node-local
# cache, or on one node first); PREPARE=0: never (prepare it yourself with
# tools/extract_flows.py / tools/loso.py).
PREPARE=${PREPARE:-auto}
if [ "$PREPARE" = 1 ] || { [ "$PREPARE" = auto ] && [ "$NNODES" = 1 ]; }; then
    RAICL_ROOT="$ROOT" "$PYTHON" - "$CONFIG" "$@" <<'PY'
import os, os.path as osp, sys
root = os.environ['RAICL_ROOT']
sys.path[:0] = [root, osp.join(root, 'tools')]
import raicl_mm  # noqa: F401  (stack fixes)
import train
from raicl_mm.engine.cli import one_line, user_errors
from raicl_mm.protocol.loso import load_run_config
from raicl_mm.protocol.plan import prepare_data
args = train.parse_args(sys.argv[1:])
try:
    prepare_data(load_run_config(args.config, args.cfg_options))
except user_errors() + (ValueError, OSError) as err:
    sys.exit(f'error: {one_line(err)}')
PY
fi

# mmengine 0.10's init_dist('pytorch') calls torch.cuda.set_device(LOCAL_RANK)
# whatever the backend, which raises on a host without a CUDA driver. Each
# worker therefore starts through this shim: on such a host it makes
# set_device a no-op (there is no device to select), then runs train.py as
# __main__. At the end it destroys the process group: a gloo worker that
# exits with the group alive aborts ("terminate called without an active
# exception", exit -6), and torchrun then kills the other ranks.
SHIM='import runpy, sys, torch
import torch.distributed as dist
if not torch.cuda.is_available():
    torch.cuda.set_device = lambda *args, **kwargs: None
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()'

exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    --no-python \
    "$PYTHON" -c "$SHIM" \
    "$ROOT/tools/train.py" \
    "$CONFIG" \
    --launcher pytorch "${EXTRA[@]}" "$@"
