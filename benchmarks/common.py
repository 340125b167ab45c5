"""Shared helpers of the benchmarks: one JSON object on stdout, the machine,
the load average and a timer.

Every benchmark prints exactly ONE JSON object on stdout::

    {"what": str, "input": {...}, "device": {...}, "figures": {...},
     "baseline": {...}, "ratio": float, "goal": str, "date": str, ...}

``figures`` and ``baseline`` hold numbers only (their meaning is in the key
names and in ``input``/``notes``). Anything else a library prints (mmengine's
logger writes to stdout) is moved to stderr by :func:`json_stdout`, so the
object can be parsed with ``json.loads(stdout)``.

The machines these run on are often shared: every figure is reported next to
the 1/5/15-minute load average measured with it (``os.getloadavg()``).
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import sys
import time
from typing import Any, Dict, Iterable, List, Optional, TextIO

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

#: Keys every benchmark's JSON object has (tests/test_benchmarks.py).
RESULT_KEYS = ('what', 'input', 'device', 'figures', 'baseline', 'ratio',
               'goal', 'date')


def json_stdout() -> TextIO:
    """Keep stdout for the JSON object only.

    Duplicates the real stdout into a private file object, then points file
    descriptor 1 (and ``sys.stdout``) at stderr, so that whatever else gets
    printed -- mmengine's logger, subprocesses, C libraries -- ends up on
    stderr. Call it first thing in ``main``.

    Returns:
        The file object to write the JSON result to (see :func:`emit`).
    """
    sys.stdout.flush()
    real = os.fdopen(os.dup(1), 'w')
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return real


def emit(result: Dict[str, Any], out: Optional[TextIO] = None) -> None:
    """Print ``result`` as one JSON object (one line) on ``out``."""
    missing = [k for k in RESULT_KEYS if k not in result]
    if missing:
        raise KeyError(f'benchmark result lacks {missing}')
    out = out or sys.stdout
    out.write(json.dumps(result, default=_jsonable) + '\n')
    out.flush()


def _jsonable(obj):
    try:
        import numpy as np
        if isinstance(obj, np.generic):
            return obj.item()
    except ImportError:  # pragma: no cover
        pass
    return str(obj)


def now_iso() -> str:
    """Local date and time with the UTC offset, to the second."""
    return datetime.datetime.now().astimezone().isoformat(timespec='seconds')


def loadavg() -> List[float]:
    """``os.getloadavg()`` rounded: the 1, 5 and 15 minute load averages."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on every platform
        return [-1.0, -1.0, -1.0]


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.lower().startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or 'unknown'


def usable_cores() -> int:
    """Cores this process may run on (affinity), else ``os.cpu_count()``."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover
        return os.cpu_count() or 1


def machine(torch_device: Optional[str] = None) -> Dict[str, Any]:
    """What the figures were measured on.

    Args:
        torch_device: The torch device used (``'cpu'``/``'cuda'``); None for
            benchmarks that do not use torch (torch is then not imported).

    Returns:
        CPU model, logical cores, usable cores, load average now, Python and
        library versions, and the GPU name (None when there is no GPU).
    """
    info: Dict[str, Any] = dict(
        cpu_model=cpu_model(), cpu_count=os.cpu_count(),
        usable_cores=usable_cores(), load_avg=loadavg(),
        platform=platform.platform(), python=platform.python_version(),
        gpu=None)
    try:
        import cv2
        info['opencv'] = cv2.__version__
    except ImportError:  # pragma: no cover
        pass
    if torch_device is not None or 'torch' in sys.modules:
        import torch
        info['torch'] = torch.__version__
        info['torch_threads'] = torch.get_num_threads()
        info['torch_device'] = torch_device or 'cpu'
        if torch.cuda.is_available():
            info['gpu'] = torch.cuda.get_device_name(0)
            info['gpu_count'] = torch.cuda.device_count()
    return info


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds`` (perf_counter), plus
    the load average when the block ended (``t.load``).

    Args:
        sync: A callable run before reading the clock at both ends (e.g.
            ``torch.cuda.synchronize`` so that GPU work is counted).
    """

    def __init__(self, sync=None):
        self.sync = sync
        self.seconds = 0.0
        self.load: List[float] = []

    def __enter__(self) -> 'Timer':
        if self.sync is not None:
            self.sync()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        if self.sync is not None:
            self.sync()
        self.seconds = time.perf_counter() - self._t0
        self.load = loadavg()


def median(values: Iterable[float]) -> float:
    values = list(values)
    return float(statistics.median(values)) if values else float('nan')


def result(what: str, inputs: Dict[str, Any], device: Dict[str, Any],
           figures: Dict[str, float], baseline: Dict[str, float],
           ratio: float, goal: str, **extra) -> Dict[str, Any]:
    """The benchmark's JSON object (``extra`` keys are added at the end)."""
    out = dict(what=what, input=inputs, device=device,
               figures={k: _num(v) for k, v in figures.items()},
               baseline={k: _num(v) for k, v in baseline.items()},
               ratio=_num(ratio), goal=goal, date=now_iso())
    out.update(extra)
    return out


def _num(v):
    if v is None:
        return None
    return round(float(v), 4)
