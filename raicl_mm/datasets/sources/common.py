"""Helpers shared by the real-dataset parsers.

* reading a label sheet whose header row is found by its first cell
  (``Subject``), with columns looked up by normalised name;
* turning sheet cells into text / frame numbers with errors that name the
  file, row and column;
* a per-build cache of folder listings with case-insensitive look-up and
  frame listing by :data:`~raicl_mm.datasets.records.FRAME_RE`;
* :func:`build_clip`, the one place where a sheet row becomes a
  :class:`ClipRecord` (range and apex checks, frame selection, flags);
* the exclusion list.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import pandas as pd

from raicl_mm.datasets.records import FRAME_RE, ClipRecord, ParseReport

#: A clip longer than this many seconds is flagged (a micro-expression lasts
#: well under a second; a longer span usually means a wrong offset).
LONG_CLIP_S = 5.0

#: Frame rate of each source dataset (DATASETS.md); a sheet source may give
#: its own (``SheetRow.fps``).
FPS: Dict[str, float] = {'casme2': 200.0, 'samm': 200.0, 'smic': 100.0, 'casme3': 30.0,
                         'mmew': 90.0}

_MISSING_TEXT = {'', '/', '-', 'nan', 'none', 'n/a', 'na'}

#: Caps on what one sheet row may ask for (the environment variable overrides
#: the default): a clip's span in frames (an offset of 10**12 would list
#: 10**12 frame numbers), and its frame rate (1e-9 fps, resampled, would ask
#: for terabytes; micro-expression cameras run at 25 to a few thousand fps).
SHEET_LIMITS = {'RAICL_MAX_CLIP_FRAMES': 100_000, 'RAICL_MIN_FPS': 1.0,
                'RAICL_MAX_FPS': 10_000.0}


def sheet_limit(name: str) -> float:
    """The cap ``name`` of :data:`SHEET_LIMITS` (its environment variable wins)."""
    text = os.environ.get(name, '').strip()
    if text:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f'{name}={text!r} is not a number') from None
        if math.isfinite(value) and value > 0:
            return value
    return SHEET_LIMITS[name]


def check_fps(fps: float, where: str) -> float:
    """Refuse a frame rate outside ``[RAICL_MIN_FPS, RAICL_MAX_FPS]`` (one line)."""
    low, high = sheet_limit('RAICL_MIN_FPS'), sheet_limit('RAICL_MAX_FPS')
    if not (math.isfinite(fps) and low <= fps <= high):
        raise ValueError(f'{where}: frame rate {fps:g} fps is outside [{low:g}, {high:g}] '
                         '(RAICL_MIN_FPS / RAICL_MAX_FPS change the bounds)')
    return fps


@dataclass
class SheetRow:
    """One labelled clip as read from a sheet (or, for SMIC, from folders).

    Attributes:
        dataset: Source dataset key.
        subject: Subject identifier as text.
        clip_id: Clip identifier unique within the subject.
        onset: Onset frame number.
        apex: Apex frame number, or None when the cell holds no number.
        apex_raw: The apex cell as text (for messages).
        offset: Offset frame number.
        emotion: Raw emotion as written.
        source: ``'<file>, row <n>'`` for messages.
        meta: Extra fields copied to ``ClipRecord.meta``.
        apex_annotated: False for datasets without an apex (SMIC): a None
            apex is then not flagged.
        fps: Frame rate of this clip when the sheet gives one (a per-row
            column or a sheet source's setting); None = :data:`FPS`.
    """

    dataset: str
    subject: str
    clip_id: str
    onset: int
    apex: Optional[int]
    apex_raw: str
    offset: int
    emotion: str
    source: str
    meta: Dict = field(default_factory=dict)
    apex_annotated: bool = True
    fps: Optional[float] = None

    @property
    def sample_id(self) -> str:
        """``dataset/subject/clip_id``, as :attr:`ClipRecord.sample_id`."""
        return f'{self.dataset}/{self.subject}/{self.clip_id}'


# --------------------------------------------------------------------------
# cells and sheets
# --------------------------------------------------------------------------
def cell_text(value) -> str:
    """A sheet cell as stripped text; blanks become ``''``.

    Integral floats (``12.0``, as a numeric cell may come back) lose the
    ``.0`` so that identifiers read the same from any sheet version.

    Args:
        value: The cell value.

    Returns:
        The text.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ''
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    if re.fullmatch(r'\d+\.0+', text):
        text = text.split('.')[0]
    return '' if text.lower() == 'nan' else text


def parse_frame(value, source: str, column: str, required: bool = True) -> Optional[int]:
    """Parse a frame-number cell.

    Args:
        value: The cell value.
        source: ``'<file>, row <n>'`` for the error message.
        column: Column name for the error message.
        required: If False, a blank or ``'/'`` cell gives None instead of
            an error.

    Returns:
        The frame number, or None for a missing optional cell.

    Raises:
        ValueError: For a required cell that is not a non-negative integer,
            or an optional one that holds text other than a blank marker.
    """
    text = cell_text(value)
    if re.fullmatch(r'\d+', text):
        return int(text)
    if not required and text.lower() in _MISSING_TEXT:
        return None
    raise ValueError(f'{source}: column {column!r} holds {text!r}, '
                     'expected a frame number')


def normalise_name(name: str) -> str:
    """Column-name key: lower case, letters and digits only."""
    return re.sub(r'[^a-z0-9]', '', str(name).lower())


def find_header_row(raw: pd.DataFrame, file: str, first_cell: str = 'Subject') -> int:
    """Index of the first row whose first cell is ``first_cell``.

    Args:
        raw: The sheet read without a header.
        file: Sheet file, for the error message.
        first_cell: Text of the header's first cell (case-insensitive).

    Returns:
        The 0-based row index (Excel row = index + 1).

    Raises:
        ValueError: If no such row exists.
    """
    key = first_cell.strip().lower()
    if raw.shape[1]:
        for index, value in enumerate(raw.iloc[:, 0].tolist()):
            if cell_text(value).lower() == key:
                return index
    raise ValueError(f'{file}: no header row whose first cell is {first_cell!r}')


@dataclass
class Sheet:
    """A label sheet with its header resolved.

    Attributes:
        file: Path of the sheet file (text, for messages).
        frame: The data rows; the columns are the header cells (blanks
            become ``'Unnamed: <i>'``).
        rows: Excel (1-based) row number of each data row.
    """

    file: str
    frame: pd.DataFrame
    rows: List[int]

    def column(self, *aliases: str) -> str:
        """Name of the column matching one of ``aliases``.

        Names compare by :func:`normalise_name` (``'Onset Frame'`` matches
        ``'OnsetFrame'``).

        Args:
            *aliases: Accepted names, in order of preference.

        Returns:
            The column name as in the sheet.

        Raises:
            ValueError: Naming the file and the wanted column if none exists.
        """
        by_key = {normalise_name(c): c for c in self.frame.columns}
        for alias in aliases:
            if normalise_name(alias) in by_key:
                return by_key[normalise_name(alias)]
        raise ValueError(f'{self.file}: missing column {aliases[0]!r} '
                         f'(columns: {", ".join(map(str, self.frame.columns))})')

    def optional_column(self, *aliases: str) -> Optional[str]:
        """Like :meth:`column`, but None when no alias matches."""
        try:
            return self.column(*aliases)
        except ValueError:
            return None

    def source(self, position: int) -> str:
        """``'<file>, row <n>'`` of the data row at ``position``."""
        return f'{self.file}, row {self.rows[position]}'


#: First bytes of the sheet formats: xlsx is a zip, xls an OLE2 compound file.
_ZIP_MAGIC = b'PK\x03\x04'
_OLE_MAGIC = b'\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1'
_EXCEL_SUFFIXES = ('.xlsx', '.xlsm', '.xls')


def require_regular_file(path: Path, what: str) -> None:
    """Refuse a path that is missing or is not a regular file (a FIFO would
    hang the read, ``/dev/zero`` through a link would never end), before it
    is opened.

    Raises:
        FileNotFoundError: Missing.
        ValueError: Not a regular file, naming what it is.
    """
    import stat as _stat
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f'{what} not found: {path}') from None
    except OSError as err:
        raise ValueError(f'{what} {path} cannot be read ({err.strerror or err})') from None
    if not _stat.S_ISREG(st.st_mode):
        kind = ('a FIFO' if _stat.S_ISFIFO(st.st_mode) else 'a folder'
                if _stat.S_ISDIR(st.st_mode) else 'a device'
                if _stat.S_ISCHR(st.st_mode) or _stat.S_ISBLK(st.st_mode)
                else 'not a regular file')
        raise ValueError(f'{what} {path} is {kind}, not a regular file')


def _sheet_kind(path: Path, head: bytes) -> str:
    """``'excel'`` or ``'csv'`` from the suffix, refusing content of the other kind.

    A CSV renamed ``.xlsx`` (or an xlsx renamed ``.csv``) would otherwise
    surface as a zip/codec traceback that names no file; the content is not
    guessed either, so the file's name keeps telling what it is.

    Raises:
        ValueError: Unknown suffix, 0 bytes, or content of the other kind.
    """
    suffix = path.suffix.lower()
    if suffix not in _EXCEL_SUFFIXES + ('.csv',):
        raise ValueError(f'{path}: unknown sheet type {suffix or "(no suffix)"!r}; '
                         'expected .xlsx, .xls or .csv')
    if not head:
        raise ValueError(f'{path}: the sheet file is empty (0 bytes)')
    binary = head.startswith(_ZIP_MAGIC) or head.startswith(_OLE_MAGIC)
    if suffix == '.csv' and binary:
        raise ValueError(f'{path}: named .csv but holds an Excel workbook; '
                         'rename it to .xlsx')
    if suffix in _EXCEL_SUFFIXES and not binary:
        text = b'\x00' not in head[:512]
        raise ValueError(f'{path}: named {suffix} but is not an Excel workbook'
                         + ('; it looks like text (a CSV?): rename it to .csv'
                            if text else ''))
    return 'csv' if suffix == '.csv' else 'excel'


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f'{type(err).__name__}: {text[0] if text else ""}'.rstrip(': ')


def read_sheet(path, sheet_names: Sequence[str] = (), first_cell: str = 'Subject',
               what: str = 'label', header_row: Optional[int] = None,
               sheet_required: bool = False) -> Sheet:
    """Read a label sheet (xlsx/xls or csv) and find its header row.

    Args:
        path: Sheet file.
        sheet_names: Preferred worksheet names; the first one present is
            read, else the first worksheet (unless ``sheet_required``).
        first_cell: First cell of the header row.
        what: Word for the error message (``'CASME II'``...).
        header_row: 1-based row of the header; None = found by
            ``first_cell``.
        sheet_required: Refuse a workbook without any of ``sheet_names``.

    Returns:
        The :class:`Sheet`; rows whose cells are all blank are dropped.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: A file that cannot be read as its suffix says (0 bytes,
            a damaged workbook, CSV content named .xlsx and the reverse),
            no header row, or a header without data rows; one line naming
            the file.
    """
    if path is None:
        raise FileNotFoundError(f'no {what} sheet given (ann_files entry is None)')
    path = Path(path)
    require_regular_file(path, f'{what} sheet')
    with open(path, 'rb') as f:
        head = f.read(4096)
    kind = _sheet_kind(path, head)
    try:
        if kind == 'csv':
            raw = pd.read_csv(path, header=None, dtype=str, keep_default_na=True,
                              skip_blank_lines=False, encoding='utf-8-sig')
        else:
            with pd.ExcelFile(path) as book:
                names = [n for n in sheet_names if n in book.sheet_names]
                if sheet_required and not names:
                    raise ValueError(
                        f'{path}: no worksheet named {" or ".join(sheet_names)} '
                        f'(worksheets: {", ".join(map(str, book.sheet_names))})')
                name = names[0] if names else book.sheet_names[0]
                raw = pd.read_excel(book, sheet_name=name, header=None, dtype=str)
    except ValueError as err:
        if str(err).startswith(str(path)):
            raise
        raise ValueError(f'{path}: cannot read the {what} sheet ({_first_line(err)})') from None
    except Exception as err:  # noqa: BLE001 - a hostile file may fail anywhere in
        # zipfile / openpyxl / xlrd / the CSV codec; the user needs the file name.
        raise ValueError(f'{path}: cannot read the {what} sheet ({_first_line(err)})') from None
    if header_row is not None:
        if not 1 <= int(header_row) <= len(raw):
            raise ValueError(f'{path}: header_row={header_row} but the sheet has '
                             f'{len(raw)} rows')
        header = int(header_row) - 1
    else:
        header = find_header_row(raw, str(path), first_cell)
    columns = []
    for i, value in enumerate(raw.iloc[header].tolist()):
        text = cell_text(value)
        columns.append(text if text else f'Unnamed: {i}')
    data = raw.iloc[header + 1:].copy()
    data.columns = columns
    keep = [i for i, (_, row) in enumerate(data.iterrows())
            if any(cell_text(v) for v in row.tolist())]
    rows = [header + 2 + i for i in keep]
    data = data.iloc[keep].reset_index(drop=True)
    if data.empty:
        raise ValueError(f'{path}: the {what} sheet has a header (row {header + 1}) '
                         'but no data rows: 0 samples')
    return Sheet(file=str(path), frame=data, rows=rows)


# --------------------------------------------------------------------------
# folders and frames
# --------------------------------------------------------------------------
class DirCache:
    """Folder listings cached for one build (the tree is read once)."""

    def __init__(self) -> None:
        self._entries: Dict[str, List[Tuple[str, bool]]] = {}

    def entries(self, folder: Path) -> List[Tuple[str, bool]]:
        """``(name, is_dir)`` of each entry of ``folder`` ([] if absent).

        Args:
            folder: A folder.

        Returns:
            The entries; names starting with ``'.'`` are left out.
        """
        key = str(folder)
        if key not in self._entries:
            try:
                with os.scandir(folder) as it:
                    self._entries[key] = [(e.name, e.is_dir()) for e in it
                                          if not e.name.startswith('.')]
            except (FileNotFoundError, NotADirectoryError):
                self._entries[key] = []
        return self._entries[key]

    def subdirs(self, folder: Path) -> List[Path]:
        """Sub-folders of ``folder`` sorted by name."""
        return [folder / n for n, is_dir in sorted(self.entries(folder)) if is_dir]

    def child(self, parent: Path, *names: str) -> Optional[Path]:
        """Sub-folder of ``parent`` named like one of ``names``.

        An exact name wins; otherwise the name is matched case-insensitively
        (``spNo.1`` for ``spNO.1``).

        Args:
            parent: The folder to look in.
            *names: Accepted names, in order of preference.

        Returns:
            The sub-folder, or None.

        Raises:
            ValueError: If a name matches several folders case-insensitively.
        """
        dirs = [n for n, is_dir in self.entries(parent) if is_dir]
        for name in names:
            if name in dirs:
                return parent / name
        for name in names:
            hits = [d for d in dirs if d.casefold() == name.casefold()]
            if len(hits) > 1:
                raise ValueError(f'{parent}: folders {hits} all match {name!r} '
                                 'ignoring case; rename one')
            if hits:
                return parent / hits[0]
        return None

    def frames(self, folder: Path) -> Tuple[Dict[int, str], Dict[int, List[str]]]:
        """Frames of a clip folder by number (last integer of the name).

        Args:
            folder: The clip folder.

        Returns:
            ``(frames, duplicates)``: frame number -> path, and for numbers
            held by several files, number -> all their names.
        """
        found: Dict[int, List[str]] = {}
        for name, is_dir in self.entries(folder):
            match = FRAME_RE.search(name)
            if match and not is_dir:
                found.setdefault(int(match.group(1)), []).append(name)
        frames = {n: str(folder / sorted(names)[0]) for n, names in found.items()}
        duplicates = {n: sorted(names) for n, names in found.items() if len(names) > 1}
        return frames, duplicates


def require_root(data_roots: Dict, key: str) -> Path:
    """The data root ``data_roots[key]``, which must exist.

    Args:
        data_roots: ``dict(casme2=..., samm=..., smic=..., casme3=...)``.
        key: The dataset key.

    Returns:
        The root as a Path.

    Raises:
        ValueError: If the key is absent or None.
        FileNotFoundError: If the folder does not exist (names the root).
    """
    value = (data_roots or {}).get(key)
    if value is None:
        raise ValueError(f"data_roots['{key}'] is required to read the {key} frames "
                         '(or pass check_frames=False to count from the sheets)')
    root = Path(value)
    if not root.is_dir():
        raise FileNotFoundError(f"data root data_roots['{key}'] does not exist: {root}")
    return root


def map_emotion(emotion: str, class_map: Dict[str, Optional[str]], protocol: str,
                source: str) -> Optional[str]:
    """Class name of a raw emotion under a protocol's map.

    Args:
        emotion: Raw emotion as written.
        class_map: Lower-case emotion -> class name (None: dropped).
        protocol: Protocol name, for the message.
        source: ``'<file>, row <n>'``, for the message.

    Returns:
        The class name, or None if the protocol drops this emotion.

    Raises:
        ValueError: If the emotion is not a key of the map.
    """
    key = emotion.strip().lower()
    if key not in class_map:
        raise ValueError(f'{source}: emotion {emotion!r} is not in the class map of '
                         f'protocol {protocol!r} (known: {", ".join(sorted(class_map))})')
    return class_map[key]


def _short_list(numbers: Iterable[int], limit: int = 8) -> str:
    numbers = list(numbers)
    text = ', '.join(map(str, numbers[:limit]))
    return text + (', ...' if len(numbers) > limit else '')


def build_clip(row: SheetRow, label: str, report: ParseReport, *, check_frames: bool,
               folder: Optional[Path] = None, expected: str = '',
               cache: Optional[DirCache] = None) -> Optional[ClipRecord]:
    """Turn a sheet row into a record (or a ``skipped`` entry).

    Checks, in order: the range (offset before onset: skipped); the apex
    (missing or outside ``[onset, offset]``: apex None and flagged;
    apex-based strategies fall back to ``(onset + offset) // 2``); a span
    over :data:`LONG_CLIP_S` (flagged); then, with ``check_frames``, the
    folder (absent: skipped, naming ``expected``), duplicate frame numbers
    in range and the onset frame (skipped), and frames missing between onset
    and offset (kept, flagged with the count).

    Args:
        row: The sheet row.
        label: Class name after the protocol's map.
        report: Receives the record, or the skipped/flagged entries.
        check_frames: Whether to read the clip folder.
        folder: The clip folder found on disk, or None.
        expected: Where the folder was looked for (for the message).
        cache: Folder-listing cache.

    Returns:
        The record appended to ``report.records``, or None if skipped.
    """
    sid = row.sample_id
    onset, offset = row.onset, row.offset
    flags: List[str] = [row.meta['respelled']] if row.meta.get('respelled') else []
    if offset < onset:
        # Sheet typos seen in CAS(ME)^3 v2 (DATASETS.md): an offset of 0
        # (spNO.40 e) or an onset after the apex (spNO.216 d). When the apex
        # is consistent with one end, the other end is mirrored around it
        # and the record is kept, flagged; otherwise the range is undefined.
        apex0 = row.apex
        if apex0 is not None and onset <= apex0 and offset < apex0:
            repaired = 2 * apex0 - onset
            flags.append(f'offset {offset} is before onset {onset} '
                         f'({row.source}); offset repaired to {repaired} '
                         '(apex mirrored: 2*apex - onset)')
            offset = repaired
        elif apex0 is not None and apex0 <= offset and onset > apex0:
            repaired = max(0, 2 * apex0 - offset)
            flags.append(f'onset {onset} is after offset {offset} '
                         f'({row.source}); onset repaired to {repaired} '
                         '(apex mirrored: 2*apex - offset)')
            onset = repaired
        else:
            report.skipped.append(dict(id=sid, why=(
                f'offset {offset} is before onset {onset} ({row.source}); '
                'the clip range is undefined')))
            return None
        if offset <= onset:
            # The mirror only makes sense around an apex inside the clip; an
            # apex at one end (e.g. onset and offset swapped) leaves no clip.
            report.skipped.append(dict(id=sid, why=(
                f'offset {row.offset} is before onset {row.onset} ({row.source}) '
                'and the apex sits at one end; the clip range is undefined')))
            return None
    apex = row.apex
    if apex is None and row.apex_annotated:
        flags.append(f'apex missing ({row.apex_raw!r} in {row.source}); apex-based '
                     'strategies fall back to (onset+offset)//2')
    elif apex is not None and not onset <= apex <= offset:
        flags.append(f'apex {apex} outside [onset {onset}, offset {offset}] '
                     f'({row.source}); apex set to None, apex-based strategies '
                     'fall back to (onset+offset)//2')
        apex = None
    fps = check_fps(float(row.fps) if row.fps else FPS[row.dataset], row.source)
    cap = int(sheet_limit('RAICL_MAX_CLIP_FRAMES'))
    if offset - onset + 1 > cap:
        raise ValueError(f'{row.source}: the clip spans {offset - onset + 1} frames '
                         f'(onset {onset}, offset {offset}), over the cap of {cap} '
                         '(RAICL_MAX_CLIP_FRAMES raises it)')
    span_s = (offset - onset + 1) / fps
    if span_s > LONG_CLIP_S:
        flags.append(f'clip spans {offset - onset + 1} frames ({span_s:.1f} s, over '
                     f'{LONG_CLIP_S:g} s) in {row.source}; check the offset')

    paths: List[str] = []
    numbers: List[int] = []
    if check_frames:
        if folder is None:
            report.skipped.append(dict(id=sid, why=f'clip folder not found: {expected}'))
            return None
        cache = cache or DirCache()
        frames, duplicates = cache.frames(folder)
        clashes = {n: names for n, names in duplicates.items() if onset <= n <= offset}
        if clashes:
            n, names = next(iter(sorted(clashes.items())))
            report.skipped.append(dict(id=sid, why=(
                f'{folder}: several files for frame {n} ({", ".join(names)}); '
                'cannot tell which is the frame')))
            return None
        if onset not in frames and onset == 0 and frames and \
                min(frames) <= offset:
            # Frame 0 is annotated but videos are numbered from 1
            # (CAS(ME)^3 spNO.216 e): the first frame stands for the onset.
            first = min(frames)
            flags.append(f'onset frame 0 does not exist in {folder} '
                         f'({row.source}); first frame {first} used as onset')
            onset = first
            if apex is not None and apex < onset:
                apex = None
        if onset not in frames:
            held = (f'it holds frames {min(frames)}..{max(frames)}' if frames
                    else 'it holds no frame')
            report.skipped.append(dict(id=sid, why=(
                f'onset frame {onset} not found in {folder} ({held}; {row.source})')))
            return None
        numbers = sorted(n for n in frames if onset <= n <= offset)
        paths = [frames[n] for n in numbers]
        present = set(numbers)
        missing = [n for n in range(onset, offset + 1) if n not in present]
        if missing:
            flags.append(f'{len(missing)} of {offset - onset + 1} frames missing between '
                         f'onset and offset in {folder} (frames {_short_list(missing)}); '
                         'they are skipped, not replaced')
    meta = dict(row.meta, source=row.source)
    if folder is not None:
        meta['folder'] = str(folder)
    record = ClipRecord(dataset=row.dataset, subject=row.subject, clip_id=row.clip_id,
                        label=label, onset=onset, apex=apex, offset=offset,
                        frame_paths=paths, frame_numbers=numbers, fps=fps,
                        emotion=row.emotion, flags=flags, meta=meta)
    report.records.append(record)
    report.flagged.extend(dict(id=sid, why=why) for why in flags)
    return record


def skip_dropped(row: SheetRow, protocol: str, report: ParseReport) -> None:
    """Report a row whose emotion the protocol leaves out."""
    report.skipped.append(dict(id=row.sample_id, why=(
        f'emotion {row.emotion!r} is not a class of protocol {protocol!r} '
        f'({row.source})')))


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


# --------------------------------------------------------------------------
# exclusion list
# --------------------------------------------------------------------------
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


def build_from_rows(rows, protocol: str, data_roots: Dict, dataset: str,
                    find_folder, check_frames: bool = True,
                    on_record=None, cache: Optional[DirCache] = None) -> ParseReport:
    """The loop every sheet-based parser shares: map, locate, build.

    Args:
        rows: Parsed sheet rows.
        protocol: Protocol whose class map applies.
        data_roots: The config's ``data_roots``.
        dataset: Key of this dataset in ``data_roots``.
        find_folder: ``(root, row, cache) -> (folder or None, expected)``.
        check_frames: Read the frame folders.
        on_record: Optional ``(row, record, report)`` hook for extra flags.
        cache: Folder-listing cache (a subclass may list frames its own way);
            a fresh :class:`DirCache` if None.

    Returns:
        The report; emotions the protocol drops are in ``skipped``.
    """
    from raicl_mm.datasets.sources.class_maps import get_class_map, protocol_name
    class_map = get_class_map(protocol)
    name = protocol_name(protocol)
    root = require_root(data_roots, dataset) if check_frames else None
    cache = cache if cache is not None else DirCache()
    report = ParseReport()
    rows = list(rows)
    unify_subjects(rows)
    for row in rows:
        label = map_emotion(row.emotion, class_map, name, row.source)
        if label is None:
            skip_dropped(row, name, report)
            continue
        folder, expected = (find_folder(root, row, cache) if check_frames
                            else (None, ''))
        record = build_clip(row, label, report, check_frames=check_frames,
                            folder=folder, expected=expected, cache=cache)
        if record is not None and on_record is not None:
            on_record(row, record, report)
    return report


def row_from_cells(dataset: str, subject: str, clip_id: str, cells: Dict,
                   cols: Dict[str, str], source: str, meta: Dict,
                   onset: Optional[int] = None) -> SheetRow:
    """A :class:`SheetRow` from one sheet row's cells (onset, apex, offset,
    emotion columns named in ``cols``); the apex may be missing or ``'/'``."""
    for key in ('subject', 'filename', 'clip'):
        if key in cols and not cell_text(cells[cols[key]]):
            raise ValueError(f'{source}: column {cols[key]!r} is empty, expected '
                             f'a {"subject id" if key == "subject" else "clip name"}')
    if onset is None:
        onset = parse_frame(cells[cols['onset']], source, cols['onset'])
    return SheetRow(
        dataset=dataset, subject=subject, clip_id=clip_id, onset=onset,
        apex=parse_frame(cells[cols['apex']], source, cols['apex'], required=False),
        apex_raw=cell_text(cells[cols['apex']]),
        offset=parse_frame(cells[cols['offset']], source, cols['offset']),
        emotion=cell_text(cells[cols['emotion']]), source=source, meta=meta)
