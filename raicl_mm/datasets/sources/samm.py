"""SAMM: the FACS-code sheet plus ``<subject>/<clip>/`` frame folders.

Sheet ``SAMM_Micro_FACS_Codes_v2.xlsx``, worksheet ``MICRO_ONLY``: notes on
the first rows, the header is the row whose first cell is ``Subject`` (Excel
row 14 in v2).  Columns used: ``Subject, Filename, Onset Frame, Apex Frame,
Offset Frame, Action Units, Estimated Emotion`` (``Objective Classes``,
``Notes`` kept in ``meta`` when present).  Frames:
``<root>/006/006_1_2/006_05562.jpg``, padding varies by subject.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from raicl_mm.datasets.records import ParseReport
from raicl_mm.datasets.sources.common import (build_from_rows, row_from_cells, DirCache, SheetRow, cell_text,
                                              read_sheet)

DATASET = 'samm'
SHEET_NAMES = ('MICRO_ONLY',)


def samm_subject(text) -> str:
    """Canonical SAMM subject: three digits (``'6'`` -> ``'006'``)."""
    text = cell_text(text)
    return text.zfill(3) if re.fullmatch(r'\d+', text) else text


def read_samm_sheet(ann_file) -> List[SheetRow]:
    """Rows of the SAMM sheet.

    Args:
        ann_file: The xlsx (or csv) file.

    Returns:
        One :class:`SheetRow` per clip; ``meta`` holds ``action_units`` and,
        when present, ``objective_class`` and ``notes``.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: For a missing header/column or a bad frame number.
    """
    sheet = read_sheet(ann_file, SHEET_NAMES, what='SAMM')
    cols = dict(subject=sheet.column('Subject'), filename=sheet.column('Filename'),
                onset=sheet.column('Onset Frame', 'Onset'),
                apex=sheet.column('Apex Frame', 'Apex'),
                offset=sheet.column('Offset Frame', 'Offset'),
                emotion=sheet.column('Estimated Emotion', 'Emotion'))
    extra = dict(action_units=sheet.optional_column('Action Units', 'AU'),
                 objective_class=sheet.optional_column('Objective Classes',
                                                       'Objective Class'),
                 notes=sheet.optional_column('Notes'))
    rows = []
    for i, cells in enumerate(sheet.frame.to_dict('records')):
        source = sheet.source(i)
        meta = {key: cell_text(cells[col]) for key, col in extra.items() if col}
        rows.append(row_from_cells(
            DATASET, samm_subject(cells[cols['subject']]),
            cell_text(cells[cols['filename']]), cells, cols, source, meta))
    return rows


def samm_folder(root: Path, subject: str, clip_id: str,
                cache: DirCache) -> Tuple[Optional[Path], str]:
    """Find ``<root>/<subject>/<clip_id>`` (unpadded subject folder accepted).

    Args:
        root: Folder holding the subject folders.
        subject: Three-digit subject.
        clip_id: Sheet Filename.
        cache: Folder-listing cache.

    Returns:
        ``(folder or None, expected path as text)``.
    """
    expected = root / subject / clip_id
    sub_dir = cache.child(root, subject, subject.lstrip('0') or '0')
    folder = cache.child(sub_dir, clip_id) if sub_dir else None
    return folder, str(expected)


def build_samm(protocol: str, data_roots: Dict, ann_files: Dict,
               check_frames: bool = True) -> ParseReport:
    """Records of the ``samm`` (5-class) protocol.

    Args:
        protocol: ``'samm'``.
        data_roots: Needs ``samm`` when ``check_frames``.
        ann_files: Needs ``samm`` (the FACS-code sheet).
        check_frames: Read the frame folders.

    Returns:
        The report; emotions the protocol drops are in ``skipped``.
    """
    return build_from_rows(
        read_samm_sheet((ann_files or {}).get(DATASET)), protocol, data_roots,
        DATASET, lambda root, row, cache: samm_folder(root, row.subject,
                                                      row.clip_id, cache),
        check_frames)
