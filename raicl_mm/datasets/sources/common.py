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

The code lives in one module per step (:mod:`.sheet` reading a sheet,
:mod:`.folders` clip folders and frames, :mod:`.clip` building a clip,
:mod:`.checks` the checks over a parsed dataset and the exclusion list); this
module keeps every name the parsers import from it.
"""
from __future__ import annotations

from .checks import (apply_exclusions, check_unique, clip_identity,
                     read_exclusions, unify_subjects)
from .clip import (FPS, LONG_CLIP_S, SHEET_LIMITS, build_clip, build_from_rows,
                   check_fps, map_emotion, sheet_limit, skip_dropped)
from .folders import DirCache, require_root
from .sheet import (Sheet, SheetRow, cell_text, find_header_row,
                    normalise_name, parse_frame, read_sheet,
                    require_regular_file, row_from_cells)

__all__ = [
    'apply_exclusions', 'check_unique', 'clip_identity', 'read_exclusions',
    'unify_subjects', 'FPS', 'LONG_CLIP_S', 'SHEET_LIMITS', 'build_clip',
    'build_from_rows', 'check_fps', 'map_emotion', 'sheet_limit',
    'skip_dropped', 'DirCache', 'require_root', 'Sheet', 'SheetRow',
    'cell_text', 'find_header_row', 'normalise_name', 'parse_frame',
    'read_sheet', 'require_regular_file', 'row_from_cells',
]
