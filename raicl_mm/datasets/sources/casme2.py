"""CASME II: the coding sheet plus ``subXX/<clip>/`` frame folders.

Sheet (``CASME2-coding-2014xxxx.xlsx`` / ``-20190701.xlsx``, first worksheet,
header on row 1): ``Subject, Filename, <blank>, OnsetFrame, ApexFrame,
OffsetFrame, <blank>, Action Units, Estimated Emotion[, Objective Classes]``.
Frames: ``<root>/sub01/EP02_01f/reg_img46.jpg`` (cropped) or ``img46.jpg``
(raw); the number is the last integer of the name.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from raicl_mm.datasets.records import ParseReport
from raicl_mm.datasets.sources.common import (build_from_rows, row_from_cells, DirCache, SheetRow, cell_text,
                                              read_sheet)

DATASET = 'casme2'


def casme2_subject(text: str) -> str:
    """Canonical CASME II subject: two digits (``'1'``, ``'sub01'`` -> ``'01'``)."""
    text = cell_text(text)
    match = re.fullmatch(r'(?:sub)?0*(\d+)', text, flags=re.IGNORECASE)
    return match.group(1).zfill(2) if match else text


def read_casme2_sheet(ann_file) -> List[SheetRow]:
    """Rows of a CASME II coding sheet.

    Args:
        ann_file: The xlsx (or csv) file.

    Returns:
        One :class:`SheetRow` per clip, ``meta`` holding ``action_units`` and,
        when present, ``objective_class``.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: For a missing column or a bad frame number (file, row).
    """
    sheet = read_sheet(ann_file, what='CASME II')
    cols = dict(subject=sheet.column('Subject'), filename=sheet.column('Filename'),
                onset=sheet.column('OnsetFrame', 'Onset Frame', 'Onset'),
                apex=sheet.column('ApexFrame', 'Apex Frame', 'Apex'),
                offset=sheet.column('OffsetFrame', 'Offset Frame', 'Offset'),
                emotion=sheet.column('Estimated Emotion', 'Emotion'))
    au_col = sheet.optional_column('Action Units', 'AU')
    obj_col = sheet.optional_column('Objective Classes', 'Objective Class')
    rows = []
    for i, cells in enumerate(sheet.frame.to_dict('records')):
        source = sheet.source(i)
        meta = {}
        if au_col:
            meta['action_units'] = cell_text(cells[au_col])
        if obj_col:
            meta['objective_class'] = cell_text(cells[obj_col])
        rows.append(row_from_cells(
            DATASET, casme2_subject(cells[cols['subject']]),
            cell_text(cells[cols['filename']]), cells, cols, source, meta))
    return rows


def casme2_folder(root: Path, subject: str, clip_id: str,
                  cache: DirCache) -> Tuple[Optional[Path], str]:
    """Find ``<root>/sub<subject>/<clip_id>`` (names matched ignoring case).

    Args:
        root: Folder holding the ``subXX`` folders.
        subject: Two-digit subject.
        clip_id: Sheet Filename.
        cache: Folder-listing cache.

    Returns:
        ``(folder or None, expected path as text)``.
    """
    expected = root / f'sub{subject}' / clip_id
    sub_dir = cache.child(root, f'sub{subject}')
    folder = cache.child(sub_dir, clip_id) if sub_dir else None
    return folder, str(expected)


def build_casme2(protocol: str, data_roots: Dict, ann_files: Dict,
                 check_frames: bool = True) -> ParseReport:
    """Records of the ``casme2`` (5-class) or ``casme2_3cls`` protocol.

    Args:
        protocol: ``'casme2'`` or ``'casme2_3cls'``.
        data_roots: Needs ``casme2`` when ``check_frames``.
        ann_files: Needs ``casme2`` (the coding sheet).
        check_frames: Read the frame folders.

    Returns:
        The report; emotions the protocol drops are in ``skipped``.
    """
    return build_from_rows(
        read_casme2_sheet((ann_files or {}).get(DATASET)), protocol, data_roots,
        DATASET, lambda root, row, cache: casme2_folder(root, row.subject,
                                                        row.clip_id, cache),
        check_frames)
