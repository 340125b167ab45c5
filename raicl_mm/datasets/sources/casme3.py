"""CAS(ME)^3 part A: the ``label`` sheet plus clip or whole-video frames.

Sheet ``cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx``, worksheet ``label``,
header on row 1: ``Subject, Filename, Onset, Apex, Offset, AU, Objective
class, emotion``.  Several micro-expressions share a video, so the clip id is
``{filename}_{onset}`` (filename lower-cased: one row writes ``J``).

Two frame layouts are accepted under ``data_roots['casme3']``, folder names
matched ignoring case (``spNo.1`` for ``spNO.1``):

* distributed clips: ``[frame/]{Subject}_{Filename}_{Onset}/`` holding the
  frames numbered as in the video;
* whole videos: ``{Subject}/{filename}/color/{N}.jpg``.

Rows whose offset lies before the onset (``spNO.40 e`` has offset 0 twice,
``spNO.216 d`` onset 3647 after offset 2694) have no defined clip and go to
``skipped``; an apex outside the clip is flagged and set to None.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

from raicl_mm.datasets.records import ParseReport
from raicl_mm.datasets.sources.common import (build_from_rows, row_from_cells, DirCache, SheetRow, cell_text,
                                              parse_frame, read_sheet)

DATASET = 'casme3'
SHEET_NAMES = ('label',)


def read_casme3_sheet(ann_file) -> List[SheetRow]:
    """Rows of the CAS(ME)^3 part A sheet.

    Args:
        ann_file: The xlsx (or csv) file.

    Returns:
        One :class:`SheetRow` per micro-expression; ``meta`` holds
        ``action_units``, ``objective_class`` (when present) and ``video``
        (the lower-cased filename letter).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: For a missing column or a bad frame number (file, row).
    """
    sheet = read_sheet(ann_file, SHEET_NAMES, what='CAS(ME)^3')
    cols = dict(subject=sheet.column('Subject'), filename=sheet.column('Filename'),
                onset=sheet.column('Onset', 'Onset Frame'),
                apex=sheet.column('Apex', 'Apex Frame'),
                offset=sheet.column('Offset', 'Offset Frame'),
                emotion=sheet.column('emotion', 'Estimated Emotion'))
    au_col = sheet.optional_column('AU', 'Action Units')
    obj_col = sheet.optional_column('Objective class', 'Objective Classes')
    rows = []
    for i, cells in enumerate(sheet.frame.to_dict('records')):
        source = sheet.source(i)
        raw_name = cell_text(cells[cols['filename']])
        video = raw_name.lower()
        onset = parse_frame(cells[cols['onset']], source, cols['onset'])
        meta = dict(video=video)
        if au_col:
            meta['action_units'] = cell_text(cells[au_col])
        if obj_col:
            meta['objective_class'] = cell_text(cells[obj_col])
        if raw_name != video:
            meta['sheet_filename'] = raw_name
        rows.append(row_from_cells(
            DATASET, cell_text(cells[cols['subject']]), f'{video}_{onset}',
            cells, cols, source, meta, onset=onset))
    return rows


def casme3_folder(root: Path, row: SheetRow, cache: DirCache) -> Tuple[Optional[Path], str]:
    """Find a clip's frame folder in either layout.

    Args:
        root: ``data_roots['casme3']``.
        row: The sheet row.
        cache: Folder-listing cache.

    Returns:
        ``(folder or None, the paths looked for as text)``.
    """
    video = row.meta['video']
    clip_name = f'{row.subject}_{video}_{row.onset}'
    frame_dir = cache.child(root, 'frame')
    for base in ([frame_dir] if frame_dir else []) + [root]:
        folder = cache.child(base, clip_name)
        if folder is not None:
            return folder, str(folder)
    sub_dir = cache.child(root, row.subject)
    video_dir = cache.child(sub_dir, video) if sub_dir else None
    folder = cache.child(video_dir, 'color') if video_dir else None
    expected = (f'{(frame_dir or root) / clip_name} or '
                f'{root / row.subject / video / "color"}')
    return folder, expected


def build_casme3(protocol: str, data_roots: Dict, ann_files: Dict,
                 check_frames: bool = True) -> ParseReport:
    """Records of ``casme3_3cls``, ``casme3_4cls`` or ``casme3_7cls``.

    Args:
        protocol: One of the three CAS(ME)^3 protocols.
        data_roots: Needs ``casme3`` when ``check_frames``.
        ann_files: Needs ``casme3`` (the part A sheet).
        check_frames: Read the frame folders.

    Returns:
        The report; emotions the protocol drops are in ``skipped``.
    """
    def flag_lowered(row, record, report):
        if 'sheet_filename' in row.meta:
            why = (f'Filename {row.meta["sheet_filename"]!r} lower-cased to '
                   f'{row.meta["video"]!r} ({row.source})')
            record.flags.append(why)
            report.flagged.append(dict(id=record.sample_id, why=why))

    return build_from_rows(
        read_casme3_sheet((ann_files or {}).get(DATASET)), protocol, data_roots,
        DATASET, casme3_folder, check_frames, on_record=flag_lowered)
