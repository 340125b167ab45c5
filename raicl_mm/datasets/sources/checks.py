"""Checks over a parsed dataset: one subject per spelling, one clip once,
and the exclusion list."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from raicl_mm.datasets.records import ClipRecord, ParseReport

from .sheet import SheetRow, require_regular_file


def unify_subjects(rows: Sequence[SheetRow]) -> List[str]:
    """One subject per spelling that differs only in case (changes ``rows``).

    Folder look-up ignores case (``spNo.1`` for ``spNO.1``), so ``S1`` and
    ``s1`` in one sheet name one person: the first spelling in sheet order is
    kept for every row of that subject, so fold keys, the hold-out split and
    the duplicate check see one subject, never two folds holding one clip.

    Args:
        rows: Sheet rows of one dataset (``subject`` rewritten in place).

    Returns:
        A note per respelled row (``'<row>: subject ... is ...'``).
    """
    first: Dict[Tuple[str, str], SheetRow] = {}
    notes = []
    for row in rows:
        kept = first.setdefault((row.dataset, row.subject.casefold()), row)
        if kept.subject != row.subject:
            note = (f'subject {row.subject!r} ({row.source}) is subject '
                    f'{kept.subject!r} ({kept.source}) spelled in another case; '
                    f'read as {kept.subject!r} (one subject, one fold)')
            row.meta['respelled'] = note
            row.subject = kept.subject
            notes.append(note)
    return notes


def _where(record: ClipRecord) -> str:
    source = record.meta.get('source') or '?'
    listed = record.meta.get('cde_source')
    return f'{source}' + (f' (listed at {listed})' if listed else '')


def clip_identity(record: ClipRecord) -> Tuple:
    """What makes a clip one clip: its resolved folder, else its ids ignoring case."""
    folder = record.meta.get('folder')
    if folder:
        return ('folder', os.path.realpath(folder))
    return ('ids', record.dataset, record.subject.casefold(), record.clip_id.casefold())


def check_unique(report: ParseReport) -> None:
    """Refuse one clip reached twice: one sample id twice, one clip folder from
    two subjects (it would sit in two folds: subject leakage), or one folder
    and range twice for one subject (spellings that differ only in case).

    A folder is compared by its resolved path (links and case-insensitive
    matches lead to one folder); several micro-expressions of one subject in
    one whole-video folder (CAS(ME)^3) differ by their range and are kept.

    Args:
        report: The built report.

    Raises:
        ValueError: Naming the clip and both sheet rows.
    """
    seen: Dict[str, ClipRecord] = {}
    for record in report.records:
        first = seen.setdefault(record.sample_id, record)
        if first is not record:
            raise ValueError(f'sample id {record.sample_id!r} appears twice: '
                             f'{_where(first)} and {_where(record)}')
    by_clip: Dict[Tuple, List[ClipRecord]] = {}
    for record in report.records:
        key = clip_identity(record)
        what = (f'clip folder {record.meta["folder"]}' if key[0] == 'folder'
                else f'clip {record.dataset}/{record.subject}/{record.clip_id}')
        for other in by_clip.get(key, []):
            if other.fold_subject != record.fold_subject:
                raise ValueError(
                    f'{what} is reached from two subjects: {other.subject!r} '
                    f'({_where(other)}) and {record.subject!r} ({_where(record)}); '
                    'one clip cannot belong to two subjects (it would be trained and '
                    'tested on): fix the sheet')
            if (other.onset, other.offset) == (record.onset, record.offset) or \
                    other.clip_id.casefold() == record.clip_id.casefold():
                raise ValueError(
                    f'{what} is listed twice: {other.sample_id} ({_where(other)}) and '
                    f'{record.sample_id} ({_where(record)}); remove one row')
        by_clip.setdefault(key, []).append(record)


def read_exclusions(path) -> List[str]:
    """Sample ids listed in an exclusion file.

    One ``dataset/subject/clip_id`` per line; ``#`` starts a comment; blank
    lines are ignored.

    Args:
        path: The text file.

    Returns:
        The ids in file order, without duplicates.

    Raises:
        FileNotFoundError: If the file does not exist.
    """
    path = Path(path)
    require_regular_file(path, 'exclusion list')
    ids: List[str] = []
    for line in path.read_text(encoding='utf-8').splitlines():
        text = line.split('#', 1)[0].strip()
        if text and text not in ids:
            ids.append(text)
    return ids


def apply_exclusions(report: ParseReport, path) -> ParseReport:
    """Move the records listed in an exclusion file to ``skipped``.

    An id that matches neither a record nor an already skipped clip is
    reported in ``flagged``.

    Args:
        report: The built report (changed in place).
        path: The exclusion file.

    Returns:
        ``report``.
    """
    ids = read_exclusions(path)
    wanted = set(ids)
    why = f'excluded by {path}'
    kept = []
    for record in report.records:
        if record.sample_id in wanted:
            report.skipped.append(dict(id=record.sample_id, why=why))
        else:
            kept.append(record)
    known = {r.sample_id for r in report.records} | {s['id'] for s in report.skipped}
    report.records = kept
    report.flagged.extend(dict(id=i, why=f'listed in {path} but matches no sample')
                          for i in ids if i not in known)
    return report
