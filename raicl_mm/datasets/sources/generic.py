"""Bring your own sheet: any CSV/xlsx label sheet through a column map.

A lab's own dataset (or one the package has no parser for: DFME, 4DME,
CASME (I), CAS(ME)^3 part C...) is read from a **sheet protocol**, a dict that
says which sheet column holds what and where the frames are::

    protocol = dict(
        source='sheet', name='dfme_7cls', dataset='dfme',
        classes=['happiness', 'anger', 'contempt', 'disgust', 'fear',
                 'sadness', 'surprise'],
        class_map=None,          # raw label (lower case) -> class or None
        columns=dict(subject='Subject', clip='Filename', onset='Onset',
                     apex='Apex',            # optional (None: no apex)
                     offset='Offset', label='Emotion',
                     fps=None,               # optional per-row frame rate
                     split='Split'),         # optional train/val/test column
        fps=200.0,               # frame rate when there is no fps column
        frames='{subject}/{clip}',
        sheet=None, header_row=1)
    data_roots = dict(dfme='/data/DFME/frames')
    ann_files = dict(dfme='/data/DFME/labels.xlsx')

``frames`` is a path template relative to ``data_roots[dataset]`` with the
fields ``subject``, ``clip``, ``label`` (the raw label), ``split`` and
``dataset``. A template naming the clip folder finds frames by the last
integer of each file name (as every built-in parser does); a template whose
last part holds ``{frame}`` (``'{subject}/{clip}/img{frame:05d}.jpg'``) takes
exactly the files it names. Every row goes through the same checks and
messages as the built-in parsers (:func:`common.build_clip`).
"""
from __future__ import annotations

import math
import re
import string
from pathlib import Path, PurePosixPath
from typing import Dict, List, Mapping, Optional, Tuple

from raicl_mm.datasets.records import ParseReport
from raicl_mm.datasets.sources.class_maps import check_protocol, protocol_name
from raicl_mm.datasets.sources.common import (DirCache, SheetRow, build_from_rows, cell_text,
                                              check_fps, parse_frame, read_sheet)

#: Logical columns of a sheet protocol; True = required.
COLUMNS: Dict[str, bool] = {'subject': True, 'clip': True, 'onset': True, 'apex': False,
                            'offset': True, 'label': True, 'fps': False, 'split': False}
#: Fields a frame template may use.
TEMPLATE_FIELDS = ('subject', 'clip', 'label', 'split', 'dataset', 'frame')
SPEC_KEYS = ('source', 'name', 'dataset', 'classes', 'class_map', 'columns', 'fps',
             'frames', 'sheet', 'header_row', 'meta_columns')


def _template_fields(template: str, what: str) -> List[Tuple[str, str, str]]:
    """``(literal, field, format_spec)`` parts of a template, checked."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as err:
        raise ValueError(f'{what} = {template!r}: {err}') from None
    for _, field, _, conversion in parts:
        if field is None:
            continue
        if field not in TEMPLATE_FIELDS:
            raise ValueError(f'{what} = {template!r}: unknown field {{{field}}}; '
                             f'fields: {", ".join(TEMPLATE_FIELDS)}')
        if conversion:
            raise ValueError(f'{what} = {template!r}: conversions (!r, !s) are not '
                             'supported')
    return [(lit, fld, spec or '') for lit, fld, spec, _ in parts]


def check_sheet_spec(spec: Mapping) -> Dict:
    """Validate a sheet protocol and fill its defaults.

    Args:
        spec: The ``protocol`` dict of a config.

    Returns:
        A plain dict with every key of :data:`SPEC_KEYS`.

    Raises:
        ValueError: One line naming the ``protocol.<key>`` at fault.
    """
    check_protocol(spec)  # classes / class_map
    name = protocol_name(spec)
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise ValueError(f'protocol {name!r}: unknown key(s) {", ".join(unknown)}; '
                         f'valid: {", ".join(SPEC_KEYS)}')
    out = dict(name=name, class_map=None, fps=None, sheet=None, header_row=1,
               meta_columns=())
    out.update(dict(spec))
    dataset = out.get('dataset')
    if not isinstance(dataset, str) or not re.fullmatch(r'[A-Za-z0-9_.-]+', dataset):
        raise ValueError(f'protocol {name!r}: protocol.dataset must be a key of '
                         f'data_roots / ann_files (letters, digits, _ . -), got {dataset!r}')
    columns = out.get('columns')
    if not isinstance(columns, Mapping):
        raise ValueError(f'protocol {name!r}: protocol.columns must be a dict of '
                         f'{", ".join(COLUMNS)} -> sheet column name')
    bad = sorted(set(columns) - set(COLUMNS))
    if bad:
        raise ValueError(f'protocol {name!r}: protocol.columns has unknown key(s) '
                         f'{", ".join(bad)}; valid: {", ".join(COLUMNS)}')
    for key, required in COLUMNS.items():
        value = columns.get(key)
        if value is None and required:
            raise ValueError(f'protocol {name!r}: protocol.columns.{key} is required '
                             '(the sheet column that holds it)')
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError(f'protocol {name!r}: protocol.columns.{key} must be a '
                             f'column name, got {value!r}')
    out['columns'] = {k: columns.get(k) for k in COLUMNS}
    fps = out['fps']
    if fps is not None:
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or \
                not math.isfinite(fps) or fps <= 0:
            raise ValueError(f'protocol {name!r}: protocol.fps must be a positive '
                             f'number, got {fps!r}')
        check_fps(float(fps), f'protocol {name!r}: protocol.fps')
    elif out['columns']['fps'] is None:
        raise ValueError(f'protocol {name!r}: give the frame rate, protocol.fps or '
                         'a per-row column protocol.columns.fps')
    frames = out.get('frames')
    if not isinstance(frames, str) or not frames.strip():
        raise ValueError(f"protocol {name!r}: protocol.frames must be a path template "
                         f"such as '{{subject}}/{{clip}}', got {frames!r}")
    parts = PurePosixPath(frames.replace('\\', '/')).parts
    if PurePosixPath(frames).is_absolute() or '..' in parts:
        raise ValueError(f'protocol {name!r}: protocol.frames = {frames!r} must be '
                         'relative to data_roots and stay inside it')
    for i, part in enumerate(parts):
        fields = [f for _, f, _ in _template_fields(part, 'protocol.frames') if f]
        if 'frame' in fields and i != len(parts) - 1:
            raise ValueError(f'protocol {name!r}: protocol.frames = {frames!r}: '
                             '{frame} may only appear in the file name (last part)')
    header_row = out['header_row']
    if isinstance(header_row, bool) or not isinstance(header_row, int) or header_row < 1:
        raise ValueError(f'protocol {name!r}: protocol.header_row must be a row '
                         f'number >= 1, got {header_row!r}')
    meta_columns = out['meta_columns'] or ()
    if isinstance(meta_columns, str) or not all(isinstance(c, str) for c in meta_columns):
        raise ValueError(f'protocol {name!r}: protocol.meta_columns must be a list '
                         'of column names')
    out['meta_columns'] = tuple(meta_columns)
    return out


def _parse_fps(value, source: str, column: str) -> Optional[float]:
    text = cell_text(value)
    if not text:
        return None
    try:
        fps = float(text)
    except ValueError:
        fps = float('nan')
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f'{source}: column {column!r} holds {text!r}, expected a '
                         'frame rate (frames per second > 0)')
    return check_fps(fps, f'{source}, column {column!r}')


def read_generic_sheet(spec: Dict, ann_file) -> List[SheetRow]:
    """Rows of a sheet read through a checked sheet protocol.

    Args:
        spec: :func:`check_sheet_spec` output.
        ann_file: The sheet file (``ann_files[spec['dataset']]``).

    Returns:
        One :class:`SheetRow` per data row; ``meta`` holds ``split`` (when
        the column is mapped), ``template`` (the fields for the frame
        template) and the ``meta_columns``.

    Raises:
        FileNotFoundError: Missing sheet.
        ValueError: A missing column, a bad cell (file, row, column).
    """
    what = spec['name']
    sheet = read_sheet(ann_file, (spec['sheet'],) if spec['sheet'] else (), what=what,
                       header_row=spec['header_row'],
                       sheet_required=bool(spec['sheet']))
    cols = {k: sheet.column(v) for k, v in spec['columns'].items() if v is not None}
    meta_cols = {c: sheet.column(c) for c in spec['meta_columns']}
    rows = []
    for i, cells in enumerate(sheet.frame.to_dict('records')):
        source = sheet.source(i)
        text = {k: cell_text(cells[c]) for k, c in cols.items()}
        for key in ('subject', 'clip', 'label'):
            if not text[key]:
                raise ValueError(f'{source}: column {cols[key]!r} is empty, expected '
                                 f'the {key}')
        fps = _parse_fps(cells[cols['fps']], source, cols['fps']) if 'fps' in cols else None
        if fps is None:
            fps = spec['fps']
            if fps is None:
                raise ValueError(f'{source}: column {cols["fps"]!r} is empty and '
                                 'protocol.fps is not set')
        apex = None
        if 'apex' in cols:
            apex = parse_frame(cells[cols['apex']], source, cols['apex'], required=False)
        meta = {key: cell_text(cells[c]) for key, c in meta_cols.items()}
        if 'split' in cols:
            meta['split'] = text['split']
        meta['template'] = dict(subject=text['subject'], clip=text['clip'],
                                label=text['label'], split=text.get('split', ''),
                                dataset=spec['dataset'])
        rows.append(SheetRow(
            dataset=spec['dataset'], subject=text['subject'], clip_id=text['clip'],
            onset=parse_frame(cells[cols['onset']], source, cols['onset']),
            apex=apex, apex_raw=text.get('apex', ''),
            offset=parse_frame(cells[cols['offset']], source, cols['offset']),
            emotion=text['label'], source=source, meta=meta,
            apex_annotated='apex' in cols, fps=fps))
    return rows


class TemplateDirCache(DirCache):
    """Folder listings where a clip's frames are the files a template names.

    :meth:`frames` of a folder registered with :meth:`expect` keeps only the
    names matching that folder's file pattern (``img{frame:05d}.jpg`` ->
    ``img(\\d+)\\.jpg``); other folders list frames by the last integer.
    """

    def __init__(self) -> None:
        super().__init__()
        self._patterns: Dict[str, re.Pattern] = {}

    def expect(self, folder: Path, pattern: re.Pattern) -> None:
        """Use ``pattern`` (one group: the frame number) for ``folder``."""
        self._patterns[str(folder)] = pattern

    def frames(self, folder: Path):
        pattern = self._patterns.get(str(folder))
        if pattern is None:
            return super().frames(folder)
        found: Dict[int, List[str]] = {}
        for name, is_dir in self.entries(folder):
            match = pattern.fullmatch(name)
            if match and not is_dir:
                found.setdefault(int(match.group(1)), []).append(name)
        frames = {n: str(folder / sorted(names)[0]) for n, names in found.items()}
        duplicates = {n: sorted(names) for n, names in found.items() if len(names) > 1}
        return frames, duplicates


def _fill(part: str, fields: Dict[str, str], source: str, template: str) -> str:
    try:
        return part.format(**fields)
    except (ValueError, KeyError, IndexError) as err:
        raise ValueError(f'{source}: protocol.frames = {template!r} cannot be filled '
                         f'from this row ({err})') from None


def template_folder(root: Path, template: str, row: SheetRow,
                    cache: TemplateDirCache) -> Tuple[Optional[Path], str]:
    """Find a row's clip folder from the frame template.

    Args:
        root: ``data_roots[dataset]``.
        template: ``protocol.frames``.
        row: The sheet row (``meta['template']`` holds the fields).
        cache: Listing cache; told the file pattern when the template has
            ``{frame}``.

    Returns:
        ``(folder or None, expected path as text)``.

    Raises:
        ValueError: A field value that would leave the data root (``..``,
            a path separator) or cannot be formatted (names the row).
    """
    fields = dict(row.meta['template'])
    for key, value in fields.items():
        if value in ('.', '..') or '/' in value or '\\' in value or '\x00' in value:
            raise ValueError(f'{row.source}: {key} {value!r} cannot be part of a frame '
                             'path (a path separator or "..")')
    parts = PurePosixPath(template.replace('\\', '/')).parts
    has_frame = any(f == 'frame' for _, f, _ in _template_fields(parts[-1], 'protocol.frames'))
    folder_parts = parts[:-1] if has_frame else parts
    folder = root
    for part in folder_parts:
        name = _fill(part, fields, row.source, template)
        found = cache.child(folder, name) if folder is not None else None
        folder = found
        if folder is None:
            break
    expected = root.joinpath(*[_fill(p, fields, row.source, template) for p in folder_parts])
    if folder is not None and has_frame:
        regex = ''
        for literal, field, spec in _template_fields(parts[-1], 'protocol.frames'):
            regex += re.escape(literal)
            if field == 'frame':
                regex += r'(\d+)'
            elif field is not None:
                part = '{' + field + (':' + spec if spec else '') + '}'
                regex += re.escape(_fill(part, fields, row.source, template))
        cache.expect(folder, re.compile(regex, re.IGNORECASE))
    return folder, str(expected)


def build_generic(protocol: Mapping, data_roots: Dict, ann_files: Dict,
                  check_frames: bool = True) -> ParseReport:
    """Records of a sheet protocol.

    Args:
        protocol: The sheet protocol dict (see the module docstring).
        data_roots: Needs ``protocol['dataset']`` when ``check_frames``.
        ann_files: Needs ``protocol['dataset']`` (the sheet).
        check_frames: Read the frame folders.

    Returns:
        The report; labels the class map drops are in ``skipped``.
    """
    spec = check_sheet_spec(protocol)
    rows = read_generic_sheet(spec, (ann_files or {}).get(spec['dataset']))
    return build_from_rows(
        rows, protocol, data_roots, spec['dataset'],
        lambda root, row, cache: template_folder(root, spec['frames'], row, cache),
        check_frames, on_record=_drop_template_fields, cache=TemplateDirCache())


def _drop_template_fields(row: SheetRow, record, report: ParseReport) -> None:
    # The template fields repeat the record's own fields; keep meta small.
    record.meta.pop('template', None)
