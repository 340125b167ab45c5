"""The embedded synthetic set a dataset dict asks for (``dataset.synthetic``)."""
from __future__ import annotations

import fcntl
import os


def prepare_synthetic(spec: dict) -> dict:
    """Generate (or reuse) the embedded synthetic set described by ``spec``.

    Several fold processes may build their datasets at once: an exclusive
    lock next to the output folder lets one generate while the others wait
    and then reuse it.
    """
    from raicl_mm.synthetic import SyntheticConfig, generate
    spec = dict(spec)
    out = spec.pop('out', None)
    if not out:
        raise ValueError('dataset.synthetic needs out=<folder>')
    try:
        cfg = SyntheticConfig(**spec)
    except TypeError as err:
        raise ValueError(f'dataset.synthetic: {err}') from None
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    with open(os.path.abspath(out).rstrip('/') + '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return generate(out, cfg)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
