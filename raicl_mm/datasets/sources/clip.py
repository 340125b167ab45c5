"""Building a clip: a sheet row becomes a :class:`ClipRecord`, or a skipped
entry with its reason.

:func:`build_clip` is the one place where that happens (range and apex
checks, the caps on a row, frame selection and checks, flags);
:func:`build_from_rows` is the loop every sheet-based parser shares.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from raicl_mm.datasets.records import ClipRecord, ParseReport

from .checks import unify_subjects
from .folders import DirCache, require_root
from .sheet import SheetRow


#: A clip longer than this many seconds is flagged (a micro-expression lasts
#: well under a second; a longer span usually means a wrong offset).
LONG_CLIP_S = 5.0

#: Frame rate of each source dataset (DATASETS.md); a sheet source may give
#: its own (``SheetRow.fps``).
FPS: Dict[str, float] = {'casme2': 200.0, 'samm': 200.0, 'smic': 100.0, 'casme3': 30.0,
                         'mmew': 90.0}

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
