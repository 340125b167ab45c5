"""Long videos with spotting annotations: CAS(ME)^3 part A, SAMM-LV, synthetic.

Each reader returns :class:`LongVideoRecord`s: one per long video, with its
frames (numbers and paths) and its ground-truth intervals (micro and macro,
onset/apex/offset frame numbers inclusive, and the emotion when the sheet has
one). The layouts are those public spotting code reads:

**CAS(ME)^3 part A** (30 fps), as read by qin123xyz/MEGC2023_macro-and-micro-
expression-spotting (``megc2023code/val_cas3/val_cas3.py``: the first sheet of
``CAS(ME)3_part_A_v1.xls``, column 0 the subject ``spNO.1``, column 1 the
video ``a``, column 2 the onset, column 4 the offset, frames at
``<root>/<subject>/<video>/color/<n>.jpg``), with column 3 the apex, column 5
the action units and column 6 the type (``Macro-expression`` /
``Micro-expression``), as other public readers of the same sheet take them.
A header row is recognised and skipped; when the header names the columns
(``Subject, Filename, Onset, Apex, Offset, AU, Type``, an ``emotion`` /
``Objective class`` column), the names win over the positions. Frame names are
the bare 0-based frame number (``8.jpg``).

**SAMM Long Videos** (200 fps), as read by genbing99/MEAN_Spot-then-recognize
(``load_excel.py``) and SOFTNet: the first sheet of
``SAMM_LongVideos_V*_Release.xlsx`` with its first 10 rows skipped (title
block and header) and the columns ``Subject, Filename, Inducement Code,
Onset, Apex, Offset, Duration, Type, Action Units, Notes``; the video of
``006_1_2`` is ``006_1``; ``Type`` is ``Micro - 1/2`` or ``Macro``; frames in
``<root>/SAMM_longvideos/<video>/*.jpg`` (the frame number is the last group
of digits of the name, e.g. ``006_1_0001.jpg``). The sheet has no emotion;
MEAN merges it with the SAMM micro-expression sheet
(``SAMM_Micro_FACS_Codes_v2.xlsx``, one header row, columns ``Subject,
Filename, Inducement Code, Onset, Apex, Offset, Duration, Type, Action Units,
Emotion, Classes, Notes``) on ``Filename`` and ``Type``; pass it as
``emotion_file`` to do the same.

**Synthetic** (:mod:`raicl_mm.synthetic.long_video`): ``ground_truth.csv``
beside ``frames/<subject>/<video>/<n>.jpg``.

Emotions are mapped to the 3-class MEGC STR names ``negative / positive /
surprise`` with :func:`str_label` (composite-database rule); others stay
unmapped (None) and are left out of the analysis, as in the STR reference.
"""
from __future__ import annotations

import csv
import glob
import os
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

CASME3_FPS = 30.0
SAMM_FPS = 200.0

#: Emotion words -> the 3 STR classes (MEGC 2019 composite rule).
_STR_MAP = {
    'happiness': 'positive', 'happy': 'positive', 'positive': 'positive',
    'surprise': 'surprise',
    'disgust': 'negative', 'repression': 'negative', 'anger': 'negative',
    'contempt': 'negative', 'fear': 'negative', 'sadness': 'negative',
    'sad': 'negative', 'negative': 'negative',
}


def str_label(emotion: Optional[str]) -> Optional[str]:
    """The 3-class STR label of an emotion word (None when it has none)."""
    if emotion is None:
        return None
    return _STR_MAP.get(str(emotion).strip().lower())


@dataclass
class LongVideoRecord:
    """One long video and its annotated intervals.

    Attributes:
        dataset: ``'casme3'``, ``'samm_lv'`` or ``'synthetic_long'``.
        subject: Subject id (the LOSO group).
        video: Video id within the subject.
        frame_numbers: Frame number of every frame, ascending.
        frame_paths: Path of every frame (same order).
        fps: Frame rate.
        intervals: Ground truth: dicts ``onset, apex, offset, type ('micro' /
            'macro'), emotion, label (STR class or None), au``.
    """

    dataset: str
    subject: str
    video: str
    frame_numbers: List[int]
    frame_paths: List[str]
    fps: float
    intervals: List[Dict[str, Any]] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f'{self.subject}/{self.video}'

    @property
    def num_frames(self) -> int:
        return len(self.frame_paths)

    def index_of(self, frame_number: int) -> int:
        """Index of the frame nearest to a frame number."""
        import bisect
        nums = self.frame_numbers
        i = bisect.bisect_left(nums, int(frame_number))
        if i == len(nums):
            return len(nums) - 1
        if i > 0 and abs(nums[i - 1] - frame_number) <= abs(nums[i] - frame_number):
            return i - 1
        return i

    def gt_indices(self) -> List[Dict[str, Any]]:
        """The intervals with ``onset/apex/offset`` as frame *indices*."""
        out = []
        for iv in self.intervals:
            d = dict(iv)
            for key in ('onset', 'apex', 'offset'):
                if d.get(key) is not None:
                    d[key] = self.index_of(d[key])
            out.append(d)
        return out


def _digits(name: str) -> Optional[int]:
    groups = re.findall(r'\d+', osp.splitext(osp.basename(name))[0])
    return int(groups[-1]) if groups else None


def scan_frames(folder: str, exts=('.jpg', '.jpeg', '.png', '.bmp')) -> tuple:
    """``(numbers, paths)`` of the images of a folder, by frame number."""
    items = []
    for p in glob.glob(osp.join(folder, '*')):
        if p.lower().endswith(exts):
            n = _digits(p)
            if n is not None:
                items.append((n, p))
    items.sort()
    return [n for n, _ in items], [p for _, p in items]


def _read_sheet(path: str, skiprows: int = 0) -> List[List[Any]]:
    """Rows of the first sheet of an .xlsx / .xls / .csv file as lists."""
    low = path.lower()
    if low.endswith('.csv'):
        with open(path, newline='', encoding='utf-8-sig') as fh:
            rows = list(csv.reader(fh))
    else:
        import pandas as pd
        engine = None
        if low.endswith('.xls'):
            try:
                import xlrd  # noqa: F401
            except ImportError as err:
                raise ImportError(f'{path}: reading .xls needs xlrd (pip install xlrd); '
                                  'or save the sheet as .xlsx / .csv') from err
            engine = 'xlrd'
        df = pd.read_excel(path, sheet_name=0, header=None, dtype=object, engine=engine)
        rows = [[None if (isinstance(v, float) and v != v) else v for v in r]
                for r in df.itertuples(index=False, name=None)]
    return rows[skiprows:]


def _num(v: Any) -> Optional[int]:
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    try:
        return int(float(v))
    except (TypeError, ValueError):
        return None


def _type_of(v: Any) -> Optional[str]:
    s = str(v or '').strip().lower()
    if s.startswith('micro'):
        return 'micro'
    if s.startswith('macro'):
        return 'macro'
    return None


# --------------------------------------------------------------------------
# CAS(ME)^3 part A
# --------------------------------------------------------------------------
_CASME3_POS = dict(subject=0, video=1, onset=2, apex=3, offset=4, au=5, type=6)
_CASME3_NAMES = dict(subject=('subject',), video=('filename', 'video'),
                     onset=('onset',), apex=('apex',), offset=('offset',),
                     au=('au', 'action units'), type=('type', 'expression type'),
                     emotion=('emotion', 'objective class', 'estimated emotion'))


def read_casme3_part_a(data_root: str, ann_file: str, modality: str = 'color',
                       types: Sequence[str] = ('micro', 'macro'),
                       keep_unannotated: bool = False) -> List[LongVideoRecord]:
    """CAS(ME)^3 part A long videos and their micro/macro intervals.

    Args:
        data_root: Folder holding ``<subject>/<video>/<modality>/<n>.jpg``.
        ann_file: ``CAS(ME)3_part_A_v1.xls`` (or the same sheet as .xlsx/.csv).
        modality: Frame sub-folder (``'color'``).
        types: Interval types kept.
        keep_unannotated: Also return videos on disk without an interval.

    Raises:
        FileNotFoundError: A sheet row names a video with no frames (the
            message names the row and the folder).
    """
    rows = _read_sheet(ann_file)
    cols = dict(_CASME3_POS)
    if rows and _num(rows[0][2] if len(rows[0]) > 2 else None) is None:
        header = [str(h or '').strip().lower() for h in rows[0]]
        for key, names in _CASME3_NAMES.items():
            for i, h in enumerate(header):
                if h in names:
                    cols[key] = i
                    break
        rows = rows[1:]
    videos: Dict[str, LongVideoRecord] = {}
    for r_i, row in enumerate(rows, start=2):
        if not row or row[cols['subject']] in (None, ''):
            continue
        onset, offset = _num(row[cols['onset']]), _num(row[cols['offset']])
        if onset is None or offset is None:
            continue
        kind = _type_of(row[cols['type']]) if cols['type'] < len(row) else None
        if kind is None or kind not in types:
            continue
        subject = str(row[cols['subject']]).strip()
        video = str(row[cols['video']]).strip().lower()
        key = f'{subject}/{video}'
        if key not in videos:
            folder = osp.join(data_root, subject, video, modality)
            nums, paths = scan_frames(folder)
            if not paths:
                raise FileNotFoundError(f'{ann_file} row {r_i}: video {key} has no frames '
                                        f'in {folder}')
            videos[key] = LongVideoRecord('casme3', subject, video, nums, paths, CASME3_FPS)
        emo = row[cols['emotion']] if 'emotion' in cols and cols['emotion'] < len(row) else None
        apex = _num(row[cols['apex']])
        videos[key].intervals.append(dict(
            onset=onset, apex=apex if apex and apex > 0 else None, offset=offset,
            type=kind, emotion=None if emo is None else str(emo).strip(),
            label=str_label(emo),
            au=None if row[cols['au']] is None else str(row[cols['au']])))
    if keep_unannotated and osp.isdir(data_root):
        for subject in sorted(os.listdir(data_root)):
            sdir = osp.join(data_root, subject)
            for video in sorted(os.listdir(sdir)) if osp.isdir(sdir) else []:
                key = f'{subject}/{video}'
                if key not in videos:
                    nums, paths = scan_frames(osp.join(sdir, video, modality))
                    if paths:
                        videos[key] = LongVideoRecord('casme3', subject, video, nums,
                                                      paths, CASME3_FPS)
    return [videos[k] for k in sorted(videos)]


# --------------------------------------------------------------------------
# SAMM Long Videos
# --------------------------------------------------------------------------
SAMM_LV_COLUMNS = ('Subject', 'Filename', 'Inducement Code', 'Onset', 'Apex', 'Offset',
                   'Duration', 'Type', 'Action Units', 'Notes')
SAMM_MICRO_COLUMNS = ('Subject', 'Filename', 'Inducement Code', 'Onset', 'Apex', 'Offset',
                      'Duration', 'Type', 'Action Units', 'Emotion', 'Classes', 'Notes')


def read_samm_lv(root: str, ann_file: Optional[str] = None,
                 emotion_file: Optional[str] = None, frames_dir: str = 'SAMM_longvideos',
                 skiprows: int = 10, types: Sequence[str] = ('micro', 'macro')
                 ) -> List[LongVideoRecord]:
    """SAMM Long Videos and their micro/macro intervals.

    Args:
        root: Folder with ``SAMM_longvideos/`` and the release sheet.
        ann_file: The sheet (default: the newest ``SAMM_LongVideos_V*_Release.xlsx``
            in ``root``).
        emotion_file: Optional SAMM micro sheet to take each micro interval's
            emotion from (merged on Filename and Type, as MEAN does).
        frames_dir: Frame folder under ``root``.
        skiprows: Rows before the first interval (10 in the releases).
    """
    if ann_file is None:
        found = sorted(glob.glob(osp.join(root, 'SAMM_LongVideos_V*_Release.xls*')))
        if not found:
            raise FileNotFoundError(f'{root}: no SAMM_LongVideos_V*_Release.xlsx')
        ann_file = found[-1]
    rows = _read_sheet(ann_file, skiprows)
    idx = {c: i for i, c in enumerate(SAMM_LV_COLUMNS)}
    emotions: Dict[str, str] = {}
    if emotion_file:
        e_rows = _read_sheet(emotion_file, 1)
        e_idx = {c: i for i, c in enumerate(SAMM_MICRO_COLUMNS)}
        for r in e_rows:
            if r and r[e_idx['Filename']] is not None:
                emotions[str(r[e_idx['Filename']]).strip()] = str(r[e_idx['Emotion']]).strip()
    videos: Dict[str, LongVideoRecord] = {}
    for r_i, row in enumerate(rows, start=skiprows + 1):
        if not row or len(row) < 8 or row[idx['Filename']] in (None, ''):
            continue
        kind = _type_of(row[idx['Type']])
        onset, offset = _num(row[idx['Onset']]), _num(row[idx['Offset']])
        if kind is None or kind not in types or onset is None or offset is None:
            continue
        fname = str(row[idx['Filename']]).strip()
        parts = fname.split('_')
        video = '_'.join(parts[:2]) if len(parts) >= 2 else fname
        subject = parts[0]
        if video not in videos:
            folder = osp.join(root, frames_dir, video)
            nums, paths = scan_frames(folder)
            if not paths:
                raise FileNotFoundError(f'{ann_file} row {r_i}: video {video} has no '
                                        f'frames in {folder}')
            videos[video] = LongVideoRecord('samm_lv', subject, video, nums, paths, SAMM_FPS)
        emo = emotions.get(fname) if kind == 'micro' else None
        apex = _num(row[idx['Apex']])
        videos[video].intervals.append(dict(
            onset=onset, apex=apex if apex and apex > 0 else None, offset=offset,
            type=kind, emotion=emo, label=str_label(emo),
            au=None if row[idx['Action Units']] is None else str(row[idx['Action Units']])))
    return [videos[k] for k in sorted(videos)]


# --------------------------------------------------------------------------
# Synthetic long videos
# --------------------------------------------------------------------------
def read_synthetic_long(root: str) -> List[LongVideoRecord]:
    """The benchmark of :func:`raicl_mm.synthetic.long_video.generate_long_videos`."""
    import json
    with open(osp.join(root, 'manifest.json'), encoding='utf-8') as fh:
        man = json.load(fh)
    gts: Dict[str, List[Dict[str, Any]]] = {}
    with open(osp.join(root, man.get('ground_truth', 'ground_truth.csv')),
              newline='', encoding='utf-8') as fh:
        for r in csv.DictReader(fh):
            gts.setdefault(f'{r["subject"]}/{r["video"]}', []).append(dict(
                onset=int(r['onset']), apex=int(r['apex']), offset=int(r['offset']),
                type=r['type'], emotion=r['emotion'], label=r['label'], au=None))
    out = []
    for v in man['videos']:
        n = v['num_frames']
        folder = osp.join(root, v['frames_dir'])
        out.append(LongVideoRecord(
            'synthetic_long', v['subject'], v['video'], list(range(n)),
            [osp.join(folder, f'{i}.jpg') for i in range(n)], float(v['fps']),
            sorted(gts.get(f'{v["subject"]}/{v["video"]}', []), key=lambda d: d['onset'])))
    return out


def summarise(records: Sequence[LongVideoRecord]) -> Dict[str, Any]:
    """Counts per type and class, minutes of video, subjects."""
    minutes = sum(r.num_frames / r.fps for r in records) / 60.0
    out: Dict[str, Any] = dict(videos=len(records),
                               subjects=len({r.subject for r in records}),
                               minutes=round(minutes, 2))
    for kind in ('micro', 'macro'):
        ivs = [iv for r in records for iv in r.intervals if iv['type'] == kind]
        out[kind] = dict(count=len(ivs), labels={
            l: sum(1 for iv in ivs if str(iv.get('label')) == l)
            for l in sorted({str(iv.get('label')) for iv in ivs})})
    return out
