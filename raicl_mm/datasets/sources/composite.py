"""MEGC2019 composite database evaluation (CDE).

The official list ``combined_3class_gt.csv`` (no header; ``dataset, subject,
filename, label`` with label 0 negative, 1 positive, 2 surprise) defines the
442 samples.  Onset/apex/offset come from the CASME II and SAMM sheets and,
for SMIC-HS, from the clip folders.  The list is shipped with the package
(:data:`DEFAULT_CDE_LIST`); a file with a header row whose first cell is
``dataset`` (e.g. HTNet's copy) is accepted too.

Path mapping (DATASETS.md): casme2 ``sub01``/``EP02_01f`` ->
``sub01/EP02_01f``; smic ``s01``/``s01_ne_01`` ->
``s1/micro/negative/s1_ne_01``; samm ``6``/``006_1_2`` -> ``006/006_1_2``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import pandas as pd

from raicl_mm.datasets.records import ParseReport
from raicl_mm.datasets.sources.casme2 import casme2_folder, casme2_subject, read_casme2_sheet
from raicl_mm.datasets.sources.class_maps import CDE_RULE, MEGC_CLASSES
from raicl_mm.datasets.sources.common import (DirCache, SheetRow, build_clip, cell_text,
                                              require_regular_file, require_root)
from raicl_mm.datasets.sources.samm import read_samm_sheet, samm_folder, samm_subject
from raicl_mm.datasets.sources.smic import (index_smic, smic_canonical, smic_expected_path,
                                            smic_row)

#: The official MEGC2019 list shipped with the package.
DEFAULT_CDE_LIST = Path(__file__).resolve().parents[2] / 'data' / 'combined_3class_gt.csv'

CDE_DATASETS = ('casme2', 'samm', 'smic')


@dataclass
class CdeEntry:
    """One line of the composite list, with canonical ids.

    Attributes:
        dataset: ``casme2``, ``samm`` or ``smic``.
        subject: Canonical subject (``'01'``, ``'006'``, ``'s01'``).
        clip_id: Clip id as in the sheets / folders (SMIC canonical).
        label: Class name (``negative``, ``positive``, ``surprise``).
        source: ``'<file>, row <n>'``.
    """

    dataset: str
    subject: str
    clip_id: str
    label: str
    source: str

    @property
    def sample_id(self) -> str:
        return f'{self.dataset}/{self.subject}/{self.clip_id}'


def read_cde_list(path=None) -> List[CdeEntry]:
    """Read the composite list.

    Args:
        path: The csv, or None for :data:`DEFAULT_CDE_LIST`.

    Returns:
        The entries in file order.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: For fewer than 4 columns, an unknown dataset or a label
            other than 0/1/2 (naming file, row and value).
    """
    path = Path(path) if path is not None else DEFAULT_CDE_LIST
    require_regular_file(path, 'CDE list')
    raw = pd.read_csv(path, header=None, dtype=str)
    if raw.shape[1] < 4:
        raise ValueError(f'{path}: expected 4 columns (dataset, subject, filename, '
                         f'label), found {raw.shape[1]}')
    first_row = 1
    if cell_text(raw.iloc[0, 0]).lower() == 'dataset':
        raw, first_row = raw.iloc[1:], 2
    canonical = dict(casme2=casme2_subject, samm=samm_subject, smic=smic_canonical)
    entries = []
    for i, cells in enumerate(raw.itertuples(index=False)):
        source = f'{path}, row {first_row + i}'
        dataset, subject, clip, label = (cell_text(c) for c in cells[:4])
        if dataset.lower() not in CDE_DATASETS:
            raise ValueError(f'{source}: dataset {dataset!r} is not one of '
                             f'{", ".join(CDE_DATASETS)}')
        if label not in ('0', '1', '2'):
            raise ValueError(f'{source}: label {label!r} is outside the CDE class map '
                             '(0 negative, 1 positive, 2 surprise)')
        dataset = dataset.lower()
        if dataset == 'smic':
            clip = smic_canonical(clip)
        entries.append(CdeEntry(dataset, canonical[dataset](subject), clip,
                                MEGC_CLASSES[int(label)], source))
    return entries


def _check_emotion(entry: CdeEntry, row: SheetRow) -> Optional[str]:
    """A note when the sheet emotion disagrees with the list label."""
    rule = CDE_RULE.get(row.emotion.strip().lower(), 'unknown')
    if rule != entry.label:
        return (f'{entry.source} says {entry.label!r} but {row.source} says emotion '
                f'{row.emotion!r}; the list label is used')
    return None


def build_cde(data_roots: Dict, ann_files: Dict, check_frames: bool = True) -> ParseReport:
    """Records of the ``cde`` protocol.

    Args:
        data_roots: Needs ``casme2``, ``samm`` and ``smic`` when
            ``check_frames``.
        ann_files: Needs ``casme2`` and ``samm`` sheets; ``cde`` is the list
            (None or absent: the shipped one).
        check_frames: Read the frame folders.  Without it SMIC clips get
            onset = offset = 0 (SMIC's range lives in its folders).

    Returns:
        The report.  A list entry missing from its sheet or folder tree is
        in ``skipped``; a sheet emotion that disagrees with the list label is
        in ``flagged`` (the list wins).
    """
    ann_files = ann_files or {}
    entries = read_cde_list(ann_files.get('cde'))
    present = {e.dataset for e in entries}
    cache = DirCache()
    sheets: Dict[str, Dict] = {}
    roots: Dict[str, Path] = {}
    readers = dict(casme2=read_casme2_sheet, samm=read_samm_sheet)
    for dataset in ('casme2', 'samm'):
        if dataset in present:
            sheets[dataset] = {(r.subject, r.clip_id): r
                               for r in readers[dataset](ann_files.get(dataset))}
    if check_frames:
        for dataset in CDE_DATASETS:
            if dataset in present:
                roots[dataset] = require_root(data_roots, dataset)
    smic_index = index_smic(roots['smic'], cache) if 'smic' in roots else {}

    report = ParseReport()
    for entry in entries:
        folder, expected, notes = None, '', []
        if entry.dataset == 'smic':
            emotion = entry.label
            if check_frames:
                clip = smic_index.get(entry.clip_id)
                if clip is None:
                    expected = smic_expected_path(roots['smic'], entry.subject,
                                                  entry.clip_id, entry.label)
                    report.skipped.append(dict(id=entry.sample_id,
                                               why=f'clip folder not found: {expected}'))
                    continue
                folder, emotion = clip.folder, clip.emotion
                if clip.emotion.lower() != entry.label:
                    notes.append(f'{entry.source} says {entry.label!r} but the clip lies '
                                 f'in {clip.folder.parent}; the list label is used')
            row = smic_row(entry.subject, entry.clip_id, emotion, folder, cache,
                           f'folder {folder}' if folder else entry.source)
            if row is None:
                report.skipped.append(dict(id=entry.sample_id, why=f'no frame in {folder}'))
                continue
        else:
            row = sheets[entry.dataset].get((entry.subject, entry.clip_id))
            if row is None:
                report.skipped.append(dict(id=entry.sample_id, why=(
                    f'{entry.source}: no row for subject {entry.subject!r}, clip '
                    f'{entry.clip_id!r} in {ann_files.get(entry.dataset)}')))
                continue
            note = _check_emotion(entry, row)
            if note:
                notes.append(note)
            if check_frames:
                find = casme2_folder if entry.dataset == 'casme2' else samm_folder
                folder, expected = find(roots[entry.dataset], row.subject, row.clip_id,
                                        cache)
        record = build_clip(row, entry.label, report, check_frames=check_frames,
                            folder=folder, expected=expected, cache=cache)
        if record is not None:
            record.meta['cde_source'] = entry.source
            record.flags.extend(notes)
            report.flagged.extend(dict(id=record.sample_id, why=n) for n in notes)
    return report
