"""Reading a label sheet: the file, its header row, its cells.

The header row is found by its first cell (``Subject``) and columns are
looked up by normalised name; a cell becomes text or a frame number with an
error that names the file, row and column. A sheet row becomes a
:class:`SheetRow`, what :func:`raicl_mm.datasets.sources.clip.build_clip`
turns into a record.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import pandas as pd


_MISSING_TEXT = {'', '/', '-', 'nan', 'none', 'n/a', 'na'}


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
