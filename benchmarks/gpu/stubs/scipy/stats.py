"""``scipy.stats.t`` (``ppf``, ``cdf``) and ``scipy.stats.mode`` for the
GPU suite's stand-in (see ``__init__``)."""
import math
from types import SimpleNamespace

import numpy as np


def _betacf(a, b, x, itmax=300, eps=3e-16):
    """Continued fraction of the incomplete beta (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, itmax + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        de = d * c
        h *= de
        if abs(de - 1.0) < eps:
            break
    return h


def _betainc(a, b, x):
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
           + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * _betacf(b, a, 1.0 - x) / b


def _t_cdf(x, df):
    df = float(df)
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + x * x))
    return 1.0 - tail if x >= 0 else tail


def _t_ppf(q, df):
    q = float(q)
    if not 0.0 < q < 1.0:
        return {0.0: -math.inf, 1.0: math.inf}.get(q, math.nan)
    if q == 0.5:
        return 0.0
    if q < 0.5:
        return -_t_ppf(1.0 - q, df)
    lo, hi = 0.0, 1.0
    while _t_cdf(hi, df) < q:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_cdf(mid, df) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def _vec(fn):
    def call(x, df):
        out = np.vectorize(fn, otypes=[float])(x, df)
        return float(out) if out.ndim == 0 else out
    return call


t = SimpleNamespace(ppf=_vec(_t_ppf), cdf=_vec(_t_cdf))


def mode(a, axis=0, keepdims=False):
    """The most frequent value along ``axis`` (smallest on ties) and its
    count, as ``scipy.stats.mode``."""
    a = np.asarray(a)
    a = np.moveaxis(a, axis, -1)
    flat = a.reshape(-1, a.shape[-1])
    vals, counts = [], []
    for row in flat:
        u, c = np.unique(row, return_counts=True)
        k = int(np.argmax(c))
        vals.append(u[k])
        counts.append(c[k])
    shape = a.shape[:-1] + ((1,) if keepdims else ())
    return SimpleNamespace(mode=np.asarray(vals).reshape(shape),
                           count=np.asarray(counts).reshape(shape))
