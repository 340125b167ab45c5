"""What the GPU suite's sections share: the section's JSON (written after every
step, so that a section stopped by its time limit still leaves what it
measured), the device, nvidia-smi, and the projection arithmetic.

Every section writes ``OUTDIR/<section>.json``::

    {"section": str, "status": "pass" | "fail" | "running" | "skipped",
     "device": {"requested": ..., "torch_device": ..., "gpu": name or None,
                "cpu_model": ..., ...},
     "checks": {name: {"ok": bool, "seconds": float, "error": str or None,
                       ...details}},
     "figures": {...}, "notes": [...], "started": iso, "finished": iso,
     "wall_s": float, "budget_s": float, "tiny": bool}

``status`` is ``running`` until the section ends: a file left ``running``
was stopped by run.sh's time limit (``summary.json`` says so too).
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import threading
import time
import traceback
from typing import Any, Callable, Dict, List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from benchmarks import common  # noqa: E402


def parse_args(description: str, argv=None, extra=None):
    """The options every section takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument('--out', required=True, help='the JSON file to write')
    p.add_argument('--tiny', action='store_true',
                   help='a few seconds on CPU: the code paths, not figures')
    p.add_argument('--device', choices=('cuda', 'cpu', 'auto'),
                   default='auto')
    p.add_argument('--budget-s', type=float, default=60.0,
                   help='seconds this section may use (it stops starting '
                   'new measurements past this; run.sh kills it a little '
                   'later)')
    if extra is not None:
        extra(p)
    return p.parse_args(argv)


def resolve_device(requested: str) -> str:
    """'cuda' / 'cpu'; ``auto`` is CUDA when available. ``cuda`` without a
    CUDA device raises RuntimeError (the section then fails: asked for a GPU,
    none was there)."""
    import torch
    if requested == 'cpu':
        return 'cpu'
    if torch.cuda.is_available():
        return 'cuda'
    if requested == 'cuda':
        raise RuntimeError('--device cuda: torch.cuda.is_available() is '
                           'False (torch %s, CUDA build %s)'
                           % (torch.__version__, torch.version.cuda))
    return 'cpu'


def device_info(requested: str, device: Optional[str]) -> Dict[str, Any]:
    info = dict(requested=requested)
    info.update(common.machine(device))
    try:
        import torch
        info['torch_cuda_build'] = torch.version.cuda
        if device == 'cuda':
            props = torch.cuda.get_device_properties(0)
            info['gpu'] = torch.cuda.get_device_name(0)
            info['gpu_memory_gib'] = round(props.total_memory / 2 ** 30, 1)
            info['gpu_capability'] = list(torch.cuda.get_device_capability(0))
            info['bf16_supported'] = bool(torch.cuda.is_bf16_supported())
    except Exception as exc:  # noqa: BLE001 - recorded, never fatal
        info['device_error'] = one_line(exc)
    for mod in ('mmengine', 'mmcv', 'mmaction', 'mmpretrain', 'torchvision'):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001
            info[mod] = None
    try:
        import scipy
        info['scipy'] = ('stub (benchmarks/gpu/stubs)'
                         if getattr(scipy, 'STUB', False) else
                         scipy.__version__)
    except Exception:  # noqa: BLE001
        info['scipy'] = None
    info['nvidia_smi'] = nvidia_smi()
    return info


def one_line(exc: BaseException) -> str:
    text = ' '.join(f'{type(exc).__name__}: {exc}'.split())
    return text[:2000]


class Section:
    """One section's JSON, rewritten after every step."""

    def __init__(self, name: str, args, device: Optional[str]):
        self.path = args.out
        self.t0 = time.perf_counter()
        self.budget_s = float(args.budget_s)
        self.data: Dict[str, Any] = dict(
            section=name, status='running', tiny=bool(args.tiny),
            budget_s=self.budget_s, started=common.now_iso(),
            device=dict(requested=args.device), checks={}, figures={},
            notes=[])
        self.failed = False
        os.makedirs(osp.dirname(osp.abspath(self.path)), exist_ok=True)
        self.write()

    # ---------------------------------------------------------------- state
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def remaining(self) -> float:
        return self.budget_s - self.elapsed()

    def note(self, text: str) -> None:
        self.data['notes'].append(text)
        self.write()

    def write(self) -> None:
        self.data['wall_s'] = round(self.elapsed(), 2)
        tmp = self.path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(self.data, f, indent=1, default=common._jsonable)
            f.write('\n')
        os.replace(tmp, self.path)

    # --------------------------------------------------------------- checks
    def check(self, name: str, fn: Callable[[], Optional[Dict]],
              required: bool = True) -> Optional[Dict]:
        """Run ``fn``; record ok/error/seconds and what it returns. A failed
        required check fails the section; the section goes on."""
        t = time.perf_counter()
        rec: Dict[str, Any] = dict(ok=False, error=None)
        out = None
        try:
            out = fn() or {}
            rec.update(out)
            rec['ok'] = bool(out.get('ok', True))
            if not rec['ok'] and not rec.get('error'):
                rec['error'] = 'check returned ok=False'
        except Exception as exc:  # noqa: BLE001 - recorded, the rest goes on
            rec['error'] = one_line(exc)
            rec['traceback'] = traceback.format_exc()[-3000:]
            print(f'[{self.data["section"]}] {name} FAILED: {rec["error"]}',
                  file=sys.stderr)
        rec['seconds'] = round(time.perf_counter() - t, 3)
        if not rec['ok'] and required:
            self.failed = True
        self.data['checks'][name] = rec
        self.write()
        return out if rec['ok'] else None

    def skip(self, name: str, reason: str) -> None:
        """A measurement not taken, and why (never silent)."""
        self.data['checks'][name] = dict(ok=None, skipped=reason)
        self.write()

    def finish(self) -> int:
        self.data['status'] = 'fail' if self.failed else 'pass'
        self.data['finished'] = common.now_iso()
        self.write()
        return 1 if self.failed else 0


def run_section(name: str, args, body: Callable[[Section, str], None]) -> int:
    """Resolve the device, record it, run ``body(section, device)``; any
    exception fails the section with its message."""
    sec = Section(name, args, None)
    device = None
    try:
        device = resolve_device(args.device)
    except Exception as exc:  # noqa: BLE001
        sec.data['checks']['device'] = dict(ok=False, error=one_line(exc))
        sec.failed = True
    try:
        sec.data['device'] = device_info(args.device, device)
    except Exception as exc:  # noqa: BLE001
        sec.data['device']['error'] = one_line(exc)
    sec.write()
    if device is not None:
        try:
            body(sec, device)
        except Exception as exc:  # noqa: BLE001
            sec.data['error'] = one_line(exc)
            sec.data['traceback'] = traceback.format_exc()[-4000:]
            sec.failed = True
            print(f'[{name}] error: {sec.data["error"]}', file=sys.stderr)
    return sec.finish()


def python_cmd() -> list:
    """This interpreter with the flags that change where it finds packages
    (``-S`` when run so: the device-like check of check_env.py), for the
    processes a section starts."""
    return [sys.executable] + (['-S'] if sys.flags.no_site else [])


def sync(device: str) -> None:
    if device == 'cuda':
        import torch
        torch.cuda.synchronize()


# ------------------------------------------------------------- nvidia-smi
SMI_FIELDS = ('name', 'utilization.gpu', 'memory.used', 'memory.total',
              'power.draw', 'temperature.gpu')


def nvidia_smi() -> Dict[str, Any]:
    """One ``nvidia-smi --query-gpu`` reading, or why there is none."""
    exe = shutil.which('nvidia-smi')
    if exe is None:
        return dict(available=False, why='nvidia-smi not on PATH')
    try:
        out = subprocess.run(
            [exe, '--query-gpu=' + ','.join(SMI_FIELDS),
             '--format=csv,noheader,nounits'], capture_output=True,
            text=True, timeout=10)
    except Exception as exc:  # noqa: BLE001
        return dict(available=False, why=one_line(exc))
    if out.returncode != 0:
        return dict(available=False, why=(out.stderr or out.stdout)[-300:])
    rows = [parse_smi_row(line) for line in out.stdout.strip().splitlines()]
    return dict(available=True, gpus=rows)


def parse_smi_row(line: str) -> Dict[str, Any]:
    """A ``--format=csv,noheader,nounits`` line -> {field: number or str}."""
    vals = [v.strip() for v in line.split(',')]
    row: Dict[str, Any] = {}
    for key, val in zip(SMI_FIELDS, vals):
        try:
            row[key] = float(val)
        except ValueError:
            row[key] = val  # name, or '[N/A]'
    return row


class UtilSampler:
    """nvidia-smi utilisation and memory every ``period`` s in a thread, for
    the length of a ``with`` block (GPU 0)."""

    def __init__(self, period: float = 0.5):
        self.period = period
        self.samples: List[Dict[str, Any]] = []
        self.why: Optional[str] = None
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self) -> 'UtilSampler':
        if shutil.which('nvidia-smi') is None:
            self.why = 'nvidia-smi not on PATH'
            return self
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            r = nvidia_smi()
            if not r.get('available'):
                self.why = r.get('why')
                return
            self.samples.append(r['gpus'][0])
            self._stop.wait(self.period)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def summary(self) -> Dict[str, Any]:
        return summarise_util(self.samples, self.why)


def summarise_util(samples: Sequence[Dict[str, Any]],
                   why: Optional[str] = None) -> Dict[str, Any]:
    """Mean / max GPU utilisation (%) and max memory used (MiB) of
    nvidia-smi samples; ``why`` when there are none."""
    util = [s['utilization.gpu'] for s in samples
            if isinstance(s.get('utilization.gpu'), float)]
    mem = [s['memory.used'] for s in samples
           if isinstance(s.get('memory.used'), float)]
    if not util:
        return dict(samples=0, why=why or 'no nvidia-smi sample')
    return dict(samples=len(util), util_mean_pct=round(sum(util) / len(util),
                                                       1),
                util_max_pct=max(util),
                mem_used_max_mib=max(mem) if mem else None)


# ------------------------------------------------------------- projection
def project_fold_s(overhead_s: float, s_per_step: float, steps: int) -> float:
    """A fold's wall time at ``steps`` training steps: its fixed overhead
    (process start, imports, data, Runner, checkpoints, scoring) plus the
    steps at the measured step time."""
    return overhead_s + steps * s_per_step


def project_protocol_s(fold_s: Sequence[float], concurrent: int,
                       flow_s: float = 0.0) -> float:
    """Wall time of a LOSO protocol whose folds take ``fold_s`` each (as
    measured with ``concurrent`` folds sharing the GPU) when ``concurrent``
    run at a time: greedy longest-first onto ``concurrent`` slots (what a
    pool does when every fold takes its measured time), plus the flow."""
    if concurrent < 1:
        raise ValueError('concurrent must be >= 1')
    slots = [0.0] * concurrent
    for s in sorted(fold_s, reverse=True):
        i = slots.index(min(slots))
        slots[i] += s
    return flow_s + max(slots)


def cde_steps_per_epoch(batch: int = 32, drop_last: bool = True
                        ) -> List[int]:
    """Training steps an epoch of every CDE fold (68 folds of the shipped
    official list: floor((442 - n_k) / batch))."""
    import csv
    import collections
    import math
    path = osp.join(REPO, 'raicl_mm', 'data', 'combined_3class_gt.csv')
    counts = collections.Counter()
    with open(path, newline='') as f:
        for row in csv.reader(f):
            if row:
                counts[(row[0], row[1])] += 1
    total = sum(counts.values())
    return [((total - n) // batch) if drop_last
            else math.ceil((total - n) / batch) for n in counts.values()]
