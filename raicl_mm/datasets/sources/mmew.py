"""MMEW: the micro-expression sheet plus ``<emotion>/<Filename>/`` frame folders.

Layout as distributed (DATASETS.md; the public MEB loader reads the real
sheet the same way): ``MMEW_Micro_Exp.xlsx``, first worksheet, header on row
1: ``Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame, Estimated Emotion,
Action Units, remarks``. Frames: ``<root>/<emotion>/<Filename>/<n>.jpg`` where
``<emotion>`` is the sheet's Estimated Emotion (folder names matched ignoring
case) and ``<root>`` is the ``Micro_Expression`` folder (or the folder that
holds it). MMEW is recorded at 90 fps.

Corrections (:data:`MEB_CORRECTIONS`): the MEB loader overwrites the apex and
offset of 16 rows with values it estimated by optical flow. The real sheet is
not available here, so which clips those rows hold cannot be checked; a
correction is therefore applied **only when the sheet's own values are
inconsistent** on that row (apex missing or outside ``[onset, offset]``, or
offset before onset) **and** the corrected values are consistent with the
row's onset. A consistent annotation is never overwritten; every applied
correction is flagged on the record, naming the row.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from raicl_mm.datasets.records import ParseReport
from raicl_mm.datasets.sources.common import (DirCache, SheetRow, build_from_rows, cell_text,
                                              read_sheet, row_from_cells)

DATASET = 'mmew'

#: Excel row -> (apex, offset) from MEB (tvaranka/meb, MMEW loader): its
#: 0-based data-frame index i is Excel row i + 2 (header on row 1). Values
#: are MEB's optical-flow estimates, not verified here (no real sheet).
MEB_CORRECTIONS: Dict[int, Tuple[int, int]] = {
    35: (40, 75),    # MEB index 33
    37: (15, 54),    # MEB index 35
    38: (46, 59),    # MEB index 36
    39: (20, 98),    # MEB index 37
    40: (25, 80),    # MEB index 38
    41: (20, 93),    # MEB index 39
    42: (23, 58),    # MEB index 40
    43: (28, 61),    # MEB index 41
    44: (32, 68),    # MEB index 42
    144: (56, 88),   # MEB index 142
    145: (32, 80),   # MEB index 143
    147: (27, 85),   # MEB index 145
    148: (22, 61),   # MEB index 146
    150: (29, 108),  # MEB index 148
    156: (31, 72),   # MEB index 154
    158: (38, 106),  # MEB index 156
}


def mmew_subject(text) -> str:
    """Canonical MMEW subject: a bare number gets two digits (``'1'`` -> ``'01'``)."""
    text = cell_text(text)
    return text.zfill(2) if re.fullmatch(r'\d+', text) else text


def _inconsistent(row: SheetRow) -> bool:
    return (row.offset < row.onset or row.apex is None
            or not row.onset <= row.apex <= row.offset)


def apply_corrections(row: SheetRow, excel_row: int) -> Optional[str]:
    """Apply :data:`MEB_CORRECTIONS` to a row when justified (module docstring).

    Args:
        row: The parsed row (changed in place).
        excel_row: Its Excel row number.

    Returns:
        The flag text when a correction was applied, else None.
    """
    fix = MEB_CORRECTIONS.get(excel_row)
    if fix is None or not _inconsistent(row):
        return None
    apex, offset = fix
    if not row.onset <= apex <= offset:
        return None
    note = (f'apex/offset {row.apex_raw or None}/{row.offset} in {row.source} are '
            f'inconsistent; corrected to {apex}/{offset} (MEB optical-flow estimate)')
    row.apex, row.offset, row.apex_raw = apex, offset, str(apex)
    return note


def read_mmew_sheet(ann_file) -> List[SheetRow]:
    """Rows of the MMEW micro-expression sheet.

    Args:
        ann_file: The xlsx (or csv) file.

    Returns:
        One :class:`SheetRow` per clip; ``meta`` holds ``action_units``,
        ``remarks`` (when present) and ``corrected`` (the flag of an applied
        correction).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: For a missing column or a bad cell (file, row, column).
    """
    sheet = read_sheet(ann_file, what='MMEW')
    cols = dict(subject=sheet.column('Subject'), filename=sheet.column('Filename'),
                onset=sheet.column('OnsetFrame', 'Onset Frame', 'Onset'),
                apex=sheet.column('ApexFrame', 'Apex Frame', 'Apex'),
                offset=sheet.column('OffsetFrame', 'Offset Frame', 'Offset'),
                emotion=sheet.column('Estimated Emotion', 'Emotion'))
    extra = dict(action_units=sheet.optional_column('Action Units', 'AU'),
                 remarks=sheet.optional_column('remarks', 'Remark'))
    rows = []
    for i, cells in enumerate(sheet.frame.to_dict('records')):
        source = sheet.source(i)
        meta = {key: cell_text(cells[col]) for key, col in extra.items() if col}
        row = row_from_cells(DATASET, mmew_subject(cells[cols['subject']]),
                             cell_text(cells[cols['filename']]), cells, cols, source, meta)
        note = apply_corrections(row, sheet.rows[i])
        if note:
            row.meta['corrected'] = note
        rows.append(row)
    return rows


def mmew_folder(root: Path, row: SheetRow, cache: DirCache) -> Tuple[Optional[Path], str]:
    """Find ``<root>[/Micro_Expression]/<emotion>/<Filename>`` (ignoring case).

    Args:
        root: ``data_roots['mmew']``.
        row: The sheet row.
        cache: Folder-listing cache.

    Returns:
        ``(folder or None, expected path as text)``.
    """
    base = cache.child(root, 'Micro_Expression') or root
    expected = base / row.emotion / row.clip_id
    emotion_dir = cache.child(base, row.emotion) if row.emotion else None
    folder = cache.child(emotion_dir, row.clip_id) if emotion_dir else None
    return folder, str(expected)


def _flag_correction(row: SheetRow, record, report: ParseReport) -> None:
    note = row.meta.get('corrected')
    if note:
        record.flags.append(note)
        report.flagged.append(dict(id=record.sample_id, why=note))


def build_mmew(protocol: str, data_roots: Dict, ann_files: Dict,
               check_frames: bool = True) -> ParseReport:
    """Records of the ``mmew_3cls`` or ``mmew_5cls`` protocol.

    Args:
        protocol: ``'mmew_3cls'`` or ``'mmew_5cls'``.
        data_roots: Needs ``mmew`` when ``check_frames``.
        ann_files: Needs ``mmew`` (the sheet).
        check_frames: Read the frame folders.

    Returns:
        The report; emotions the protocol drops are in ``skipped``.
    """
    return build_from_rows(read_mmew_sheet((ann_files or {}).get(DATASET)), protocol,
                           data_roots, DATASET, mmew_folder, check_frames,
                           on_record=_flag_correction)
