"""Evaluation splits: leave-one-subject-out folds (MEGC2019 protocol), and a
hold-out protocol with fixed train / validation / test subjects (the "Modeling the evolution dynamics to enhance micro-expression recognition"'s
CCAC 2024 split of DFME)."""
from __future__ import annotations

import re
from typing import Dict, Iterable, List, Mapping, Sequence, Union

import numpy as np


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


# --------------------------------------------------------------------------
# hold-out protocol ("Modeling the evolution dynamics to enhance micro-expression recognition", CCAC 2024): fixed train / validation / test
# --------------------------------------------------------------------------
HOLDOUT_SPLITS = ('train', 'val', 'test')
HOLDOUT_KEYS = ('by', 'train', 'val', 'test', 'val_fraction', 'seed')


def check_holdout(holdout: Mapping) -> Dict:
    """Validate a hold-out spec and fill its defaults.

    A spec is ``dict(by='column', train=['train'], test=['test_A'], val=None,
    val_fraction=0.2, seed=0)``: with ``by='column'`` the lists hold values
    of the sheet's split column (``ClipRecord.meta['split']``); with
    ``by='subjects'`` they hold subject ids (fold keys ``dfme_s01`` or bare
    ids ``s01``). ``val=None`` holds out ``val_fraction`` of the training
    subjects (seeded shuffle; the "Modeling the evolution dynamics to enhance micro-expression recognition"'s 4:1 split is 0.2), so validation and
    training never share a subject.

    Raises:
        ValueError: One line naming the ``holdout.<key>`` at fault.
    """
    if not isinstance(holdout, Mapping):
        raise ValueError(f'holdout must be a dict, got {holdout!r}')
    unknown = sorted(set(holdout) - set(HOLDOUT_KEYS))
    if unknown:
        raise ValueError(f'holdout: unknown key(s) {", ".join(unknown)}; valid: '
                         f'{", ".join(HOLDOUT_KEYS)}')
    out = dict(by='column', val=None, val_fraction=0.2, seed=0)
    out.update(dict(holdout))
    if out['by'] not in ('column', 'subjects'):
        raise ValueError(f"holdout.by must be 'column' (the sheet's split column) or "
                         f"'subjects', got {out['by']!r}")
    for key in HOLDOUT_SPLITS:
        value = out.get(key)
        if value is None and key == 'val':
            continue
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, Sequence) or not value or \
                not all(isinstance(v, str) and v.strip() for v in value):
            raise ValueError(f'holdout.{key} must be a non-empty list of '
                             f'{"split names" if out["by"] == "column" else "subject ids"}'
                             f', got {out.get(key)!r}')
        out[key] = [v.strip() for v in value]
    frac = out['val_fraction']
    if out['val'] is None and (isinstance(frac, bool) or not isinstance(frac, (int, float))
                               or not 0 < frac < 1):
        raise ValueError(f'holdout.val_fraction must be in (0, 1) when holdout.val is '
                         f'not given, got {frac!r}')
    named = [(k, v) for k in HOLDOUT_SPLITS for v in (out[k] or [])]
    seen: Dict[str, str] = {}
    for key, value in named:
        if value.lower() in seen and seen[value.lower()] != key:
            raise ValueError(f'holdout: {value!r} is listed in both holdout.'
                             f'{seen[value.lower()]} and holdout.{key}')
        seen[value.lower()] = key
    return out


def _subject_matches(record, name: str) -> bool:
    lowered = name.lower()
    return lowered in (record.fold_subject.lower(), str(record.subject).lower())


def holdout_split(records: Sequence, holdout: Mapping) -> Dict[str, List]:
    """Records of each split of a hold-out protocol.

    Args:
        records: The protocol's records.
        holdout: A spec (see :func:`check_holdout`).

    Returns:
        ``dict(train=[...], val=[...], test=[...], unused=[...])`` in record
        order; ``unused`` holds records of no split (e.g. ``test_B`` when only
        ``test_A`` is scored).

    Raises:
        ValueError: A split with no record, a name that matches no record, a
            record without the split column, or a subject found in two splits.
    """
    spec = check_holdout(holdout)
    by_column = spec['by'] == 'column'
    out: Dict[str, List] = {k: [] for k in HOLDOUT_SPLITS + ('unused',)}
    used_names = set()
    for record in records:
        where = 'unused'
        if by_column:
            value = (record.meta or {}).get('split')
            if value is None:
                raise ValueError(f"{record.sample_id}: holdout.by='column' but the record "
                                 'has no split value (map the sheet column with '
                                 'protocol.columns.split)')
            for key in HOLDOUT_SPLITS:
                hit = [v for v in (spec[key] or []) if v.lower() == str(value).lower()]
                if hit:
                    where = key
                    used_names.update(hit)
        else:
            found = {}
            for key in HOLDOUT_SPLITS:
                hit = [v for v in (spec[key] or []) if _subject_matches(record, v)]
                if hit:
                    found[key] = hit
                    where = key
                    used_names.update(hit)
            if len(found) > 1:
                named = ' and '.join(f'holdout.{k} ({", ".join(map(repr, v))})'
                                     for k, v in found.items())
                raise ValueError(f'holdout: subject {record.fold_subject} is named in '
                                 f'{named}; a subject belongs to one split')
        out[where].append(record)
    listed = [v for k in HOLDOUT_SPLITS for v in (spec[k] or [])]
    unmatched = [v for v in listed if v not in used_names]
    if unmatched:
        what = 'split value' if by_column else 'subject'
        raise ValueError(f'holdout: {what}(s) {", ".join(unmatched)} match no sample')
    if spec['val'] is None:
        train_subjects = list_folds(out['train'])
        k = int(round(len(train_subjects) * float(spec['val_fraction'])))
        if not 0 < k < len(train_subjects):
            raise ValueError(f'holdout.val_fraction={spec["val_fraction"]} of '
                             f'{len(train_subjects)} training subjects leaves no '
                             'validation or no training subject')
        rng = np.random.default_rng(int(spec['seed']))
        held = set(rng.permutation(train_subjects)[:k].tolist())
        out['val'] = [r for r in out['train'] if r.fold_subject in held]
        out['train'] = [r for r in out['train'] if r.fold_subject not in held]
    owner: Dict[str, str] = {}
    for key in HOLDOUT_SPLITS:
        if not out[key]:
            raise ValueError(f'holdout: split {key!r} has no sample')
        for record in out[key]:
            first = owner.setdefault(record.fold_subject, key)
            if first != key:
                raise ValueError(f'holdout: subject {record.fold_subject} is in both '
                                 f'{first!r} and {key!r} (e.g. {record.sample_id}); '
                                 'a hold-out split must keep subjects apart')
    return out
