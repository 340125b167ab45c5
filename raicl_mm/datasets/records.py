"""One record type for a micro-expression clip, shared by every parser.

Data flows one way through the project::

    sheet/folders -> ClipRecord -> sampled frame positions -> flow instances -> pairs

A parser (``raicl_mm.datasets.sources``) turns an official label sheet plus a
frame tree into :class:`ClipRecord` objects and a :class:`ParseReport` that
lists what was skipped (with why) and what was flagged (kept, but odd).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

#: A frame is found by the last integer in its file name, never by a padded
#: name: padding differs between subjects (DATASETS.md, "Rules").
FRAME_RE = re.compile(r'(\d+)\.(jpg|jpeg|bmp|png)$', re.IGNORECASE)


@dataclass
class ClipRecord:
    """A micro-expression clip as the rest of the project sees it.

    Attributes:
        dataset: Source dataset key (``casme2``, ``samm``, ``smic``,
            ``casme3``, ``synthetic``...).
        subject: Subject identifier as text (``'01'``, ``'006'``,
            ``'spNO.1'``); LOSO folds are built from it.
        clip_id: Clip identifier unique within the subject.
        label: Class name after the protocol's class map.
        onset: Annotated onset frame number.
        apex: Annotated apex frame number, or ``None`` if absent/invalid.
        offset: Annotated offset frame number.
        frame_paths: Paths of the frames from onset to offset that exist on
            disk, sorted by frame number; ``frame_paths[0]`` is the onset.
        frame_numbers: Frame number of each entry of ``frame_paths``.
        fps: Frame rate of the source dataset.
        emotion: The raw emotion as written in the sheet (before mapping).
        flags: Human-readable notes about quirks (missing frames, apex
            outside the clip...) kept with the record.
        meta: Free-form extra fields (e.g. action units, ground-truth motion
            mask path for the synthetic set).
    """

    dataset: str
    subject: str
    clip_id: str
    label: str
    onset: int
    apex: Optional[int]
    offset: int
    frame_paths: List[str] = field(default_factory=list)
    frame_numbers: List[int] = field(default_factory=list)
    fps: float = 0.0
    emotion: str = ''
    flags: List[str] = field(default_factory=list)
    meta: Dict = field(default_factory=dict)

    @property
    def sample_id(self) -> str:
        """Unique, stable id ``dataset/subject/clip_id`` used in dumps and caches."""
        return f'{self.dataset}/{self.subject}/{self.clip_id}'

    @property
    def fold_subject(self) -> str:
        """Subject key of the LOSO fold; unique across datasets of a composite."""
        return f'{self.dataset}_{self.subject}'

    @property
    def num_frames(self) -> int:
        return len(self.frame_paths)

    def apex_position(self) -> Optional[int]:
        """Index of the apex in ``frame_numbers`` (nearest existing frame), or None."""
        if self.apex is None or not self.frame_numbers:
            return None
        best = min(range(len(self.frame_numbers)),
                   key=lambda i: abs(self.frame_numbers[i] - self.apex))
        return best


@dataclass
class ParseReport:
    """What a parser returns: the records and what it could not use.

    Attributes:
        records: The usable clips.
        skipped: ``{'id': sample id, 'why': reason}`` for each dropped clip.
        flagged: ``{'id': sample id, 'why': note}`` for kept clips with quirks.
    """

    records: List[ClipRecord] = field(default_factory=list)
    skipped: List[Dict[str, str]] = field(default_factory=list)
    flagged: List[Dict[str, str]] = field(default_factory=list)

    def extend(self, other: 'ParseReport') -> 'ParseReport':
        self.records.extend(other.records)
        self.skipped.extend(other.skipped)
        self.flagged.extend(other.flagged)
        return self
