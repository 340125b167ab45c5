"""Leave-one-subject-out folds: one fold per subject (MEGC2019 protocol)."""
from __future__ import annotations

import re
from typing import Iterable, List, Sequence, Union


def _natural(key: str):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r'(\d+)', key)]


def list_folds(records: Iterable) -> List[str]:
    """Fold keys (``ClipRecord.fold_subject``: ``<dataset>_<subject>``), sorted
    by dataset then subject in natural order; fold index i is the i-th key."""
    return sorted({r.fold_subject for r in records}, key=_natural)


def resolve_fold(fold: Union[int, str], folds: Sequence[str]) -> str:
    """Turn ``--fold`` (an index, a fold key or a bare subject id) into a key.

    ``3`` is an index; ``casme2_01``, ``01``, ``sub01``, ``006``, ``s01`` name
    a subject (a number with a leading zero is a subject id, as the sheets
    write them).

    Raises:
        ValueError: Unknown or ambiguous fold, with the valid choices.
    """
    if not folds:
        raise ValueError('no folds: the dataset has no samples')
    text = str(fold).strip()
    # '3' is an index; '03' / '006' (leading zero) are subject ids.
    if re.fullmatch(r'-?(0|[1-9]\d*)', text) and text not in folds:
        idx = int(text)
        if not 0 <= idx < len(folds):
            raise ValueError(f'--fold {fold}: index out of range, the protocol '
                             f'has {len(folds)} folds (0..{len(folds) - 1})')
        return folds[idx]
    if text in folds:
        return text
    lowered = text.lower()
    # a bare subject id ('006', 'spNO.1'), or CASME II's folder name 'sub01'
    hits = [f for f in folds if f.lower() == lowered
            or f.split('_', 1)[-1].lower() in (lowered, lowered[3:] if
                                               lowered.startswith('sub') else None)]
    if len(hits) == 1:
        return hits[0]
    shown = ', '.join(folds[:12]) + (' ...' if len(folds) > 12 else '')
    if hits:
        raise ValueError(f'--fold {fold} is ambiguous: {", ".join(hits)}')
    raise ValueError(f'--fold {fold}: no such subject; folds are {shown} '
                     f'(or an index 0..{len(folds) - 1})')
