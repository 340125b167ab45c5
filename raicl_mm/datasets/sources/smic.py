"""SMIC-HS: no label sheet, the folders are the labels.

Layout: ``<HS>/s1/micro/{negative,positive,surprise}/s1_ne_01/image000123.bmp``
(cropped set: ``reg_image000123.bmp``).  Onset = first frame of the folder,
offset = last, no apex; ``non_micro/`` is ignored.  Subject folders are
unpadded (``s1``) while the MEGC2019 list writes ``s01``/``s01_ne_01``:
subjects and clip ids are canonicalised to the list's spelling (two digits)
in every protocol, so sample ids (and exclusion lists) agree between ``smic``
and ``cde``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

from raicl_mm.datasets.records import ParseReport
from raicl_mm.datasets.sources.class_maps import get_class_map
from raicl_mm.datasets.sources.common import (DirCache, SheetRow, build_clip, map_emotion,
                                              require_root, skip_dropped)

DATASET = 'smic'
_ID_RE = re.compile(r'^s0*(\d+)(_.*)?$', re.IGNORECASE)


def smic_canonical(name: str) -> str:
    """``'s1'`` -> ``'s01'``, ``'s1_ne_01'`` -> ``'s01_ne_01'`` (others unchanged)."""
    match = _ID_RE.match(name.strip())
    if not match:
        return name.strip()
    return f's{int(match.group(1)):02d}{match.group(2) or ""}'


def smic_expected_path(root: Path, subject: str, clip_id: str, emotion: str) -> Path:
    """Where a clip of the MEGC2019 list should lie (``s01`` -> ``s1``)."""
    number = _ID_RE.match(subject)
    sub = f's{int(number.group(1))}' if number else subject
    clip = _ID_RE.match(clip_id)
    name = f'{sub}{clip.group(2) or ""}' if clip else clip_id
    return root / sub / 'micro' / emotion / name


@dataclass
class SmicClip:
    """A clip folder found in the SMIC-HS tree.

    Attributes:
        subject: Canonical subject (``'s01'``).
        clip_id: Canonical clip id (``'s01_ne_01'``).
        emotion: Name of the emotion folder as on disk.
        folder: The clip folder.
    """

    subject: str
    clip_id: str
    emotion: str
    folder: Path


def index_smic(root: Path, cache: DirCache) -> Dict[str, SmicClip]:
    """All clip folders under ``<root>/s*/micro/<emotion>/``.

    Args:
        root: The ``HS`` folder.
        cache: Folder-listing cache.

    Returns:
        Canonical clip id -> :class:`SmicClip`, sorted by id.

    Raises:
        ValueError: If two folders give the same canonical clip id.
    """
    clips: Dict[str, SmicClip] = {}
    for sub_dir in cache.subdirs(root):
        if not re.fullmatch(r's\d+', sub_dir.name, flags=re.IGNORECASE):
            continue
        micro = cache.child(sub_dir, 'micro')
        if micro is None:
            continue
        for emotion_dir in cache.subdirs(micro):
            for clip_dir in cache.subdirs(emotion_dir):
                clip_id = smic_canonical(clip_dir.name)
                if clip_id in clips:
                    raise ValueError(f'SMIC clip {clip_id!r} found twice: '
                                     f'{clips[clip_id].folder} and {clip_dir}')
                clips[clip_id] = SmicClip(smic_canonical(sub_dir.name), clip_id,
                                          emotion_dir.name, clip_dir)
    return dict(sorted(clips.items()))


def smic_row(subject: str, clip_id: str, emotion: str, folder: Optional[Path],
             cache: Optional[DirCache], source: str) -> Optional[SheetRow]:
    """A :class:`SheetRow` whose range is the folder's first..last frame.

    Args:
        subject: Canonical subject.
        clip_id: Canonical clip id.
        emotion: Emotion folder name (raw emotion).
        folder: The clip folder, or None to make a row without frames
            (onset = offset = 0, used when counting without reading frames).
        cache: Folder-listing cache (needed with a folder).
        source: Text naming where the clip comes from.

    Returns:
        The row, or None if the folder holds no frame.
    """
    onset = offset = 0
    if folder is not None:
        frames, _ = cache.frames(folder)
        if not frames:
            return None
        onset, offset = min(frames), max(frames)
    return SheetRow(dataset=DATASET, subject=subject, clip_id=clip_id, onset=onset,
                    apex=None, apex_raw='', offset=offset, emotion=emotion,
                    source=source, apex_annotated=False)


def build_smic(protocol: str, data_roots: Dict, ann_files: Dict,
               check_frames: bool = True) -> ParseReport:
    """Records of the ``smic`` protocol, from the folder tree.

    SMIC has no sheet, so the tree is always read (``check_frames`` only
    decides whether ``frame_paths`` are filled); to count SMIC without its
    frames use the ``cde`` protocol with ``check_frames=False``.

    Args:
        protocol: ``'smic'``.
        data_roots: Needs ``smic`` (the ``HS`` folder).
        ann_files: Unused (SMIC has no sheet).
        check_frames: Fill ``frame_paths``/``frame_numbers``.

    Returns:
        The report.

    Raises:
        FileNotFoundError: If the root does not exist.
        ValueError: For an emotion folder outside negative/positive/surprise.
    """
    root = require_root(data_roots, DATASET)
    cache = DirCache()
    class_map = get_class_map(protocol)
    report = ParseReport()
    for clip in index_smic(root, cache).values():
        label = map_emotion(clip.emotion, class_map, protocol, f'folder {clip.folder}')
        row = smic_row(clip.subject, clip.clip_id, clip.emotion, clip.folder, cache,
                       f'folder {clip.folder}')
        if row is None:
            report.skipped.append(dict(id=f'{DATASET}/{clip.subject}/{clip.clip_id}',
                                       why=f'no frame in {clip.folder}'))
            continue
        if label is None:
            skip_dropped(row, protocol, report)
            continue
        build_clip(row, label, report, check_frames=check_frames, folder=clip.folder,
                   cache=cache)
    return report
