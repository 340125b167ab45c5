"""Step 5, writing the set: frames, masks, the coding sheet, the manifest.

:func:`generate` plans the set, renders and writes every clip (in worker
processes; the bytes do not depend on their number), then the CASME II-style
sheet and the manifest. A folder that already holds the same set is reused;
only this generator's own outputs are ever removed.
"""
from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

from .classes import (DISTRACTOR_REGIONS, PRIMARY_REGION, SECONDARY_REGIONS,
                      SYNTHETIC_CLASSES, WEAK_REGIONS)
from .config import SyntheticConfig
from .face import SubjectFace
from .files import (FPS, FRAMES_DIR, GENERATOR_NAME, GENERATOR_VERSION,
                    MANIFEST_NAME, MARKER_NAME, MASKS_DIR, SHEET_HEADER,
                    SHEET_NAME)
from .motion import motion_mask
from .planning import plan
from .render import render_clip

# The logger keeps the name of the module this code came from
# (raicl_mm.synthetic.generator): that is the name users filter on.
logger = logging.getLogger('raicl_mm.synthetic.generator')


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'wb') as fh:
        fh.write(data)


def _clip_task(args: Tuple[str, SubjectFace, Dict[str, Any], Dict[str, Any]]
               ) -> str:
    """Worker: render and write one clip's frames and mask."""
    out_dir, face, clip, cfg_json = args
    cv2.setNumThreads(1)
    cfg = SyntheticConfig.from_json(cfg_json)
    root = Path(out_dir)
    params = [cv2.IMWRITE_JPEG_QUALITY,
              int(clip.get('jpeg_quality', cfg.jpeg_quality))]
    for i, frame in enumerate(render_clip(face, clip, cfg)):
        ok, buf = cv2.imencode('.jpg', frame, params)
        if not ok:
            raise RuntimeError(f'JPEG encoding failed for {clip["frames_dir"]}')
        _write_bytes(root / clip['frames_dir'] / f'reg_img{clip["onset"] + i}.jpg',
                     buf.tobytes())
    masks = {'mask': motion_mask(face, clip['emotion'], cfg.size,
                                 cfg.mask_threshold, cfg.supersample)
             if cfg.design == 'distinct' else None}
    if cfg.design != 'distinct':
        parts = ('primary', 'secondary') + (
            ('weak',) if cfg.design == 'strong_weak' else ())
        for part in parts:
            masks[f'mask_{part}'] = motion_mask(
                face, clip['regions'][part], cfg.size, cfg.mask_threshold,
                cfg.supersample)
        masks['mask'] = np.maximum(masks['mask_primary'], masks['mask_secondary'])
        if 'mask_weak' in masks:
            masks['mask'] = np.maximum(masks['mask'], masks['mask_weak'])
    for key, mask in masks.items():
        ok, buf = cv2.imencode('.png', mask)
        if not ok:
            raise RuntimeError(f'PNG encoding failed for {clip[key]}')
        _write_bytes(root / clip[key], buf.tobytes())
    return clip['frames_dir']


def _atomic_path(final: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f'.{final.name}.', suffix='.tmp',
                               dir=final.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; the set is meant to be shared
    return Path(tmp)


def write_sheet(path: Path, clips: Sequence[Dict[str, Any]]) -> None:
    """Write the CASME II-style coding sheet atomically (temp + replace).

    Subject is a text cell (``'01'``, Excel format ``@``) as in the official
    sheet; a purely numeric action-unit string is written as a number, also
    as in the official sheet (``12`` next to ``'1+2'``).
    """
    from openpyxl import Workbook  # local: only needed when writing

    wb = Workbook()
    ws = wb.active
    ws.title = 'Sheet1'
    ws.append(list(SHEET_HEADER))
    for clip in sorted(clips, key=lambda c: (c['subject'], c['filename'])):
        emotion = clip.get('sheet_emotion', clip['emotion'])
        aus = SYNTHETIC_CLASSES[emotion]['action_units']
        ws.append([clip['subject'], clip['filename'], None, clip['onset'],
                   clip['apex'], clip['offset'], None,
                   int(aus) if aus.isdigit() else aus, emotion])
        ws.cell(row=ws.max_row, column=1).number_format = '@'
    tmp = _atomic_path(path)
    try:
        wb.save(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_json(path: Path, data: Dict[str, Any]) -> None:
    tmp = _atomic_path(path)
    try:
        with open(tmp, 'w', encoding='utf-8') as fh:
            json.dump(data, fh, indent=1, sort_keys=False)
            fh.write('\n')
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _read_manifest(out: Path) -> Optional[Dict[str, Any]]:
    try:
        with open(out / MANIFEST_NAME, encoding='utf-8') as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get('generator') == GENERATOR_NAME \
        else None


def _is_synthetic_folder(out: Path) -> bool:
    return (out / MARKER_NAME).is_file() or _read_manifest(out) is not None


def _is_complete(out: Path, manifest: Dict[str, Any]) -> bool:
    if not (out / manifest.get('sheet', SHEET_NAME)).is_file():
        return False
    for clip in manifest.get('clips', []):
        if not all((out / clip[k]).is_file() for k in
                   ('mask', 'mask_primary', 'mask_secondary') if k in clip):
            return False
        folder = out / clip['frames_dir']
        for n in range(clip['onset'], clip['offset'] + 1):
            if not (folder / f'reg_img{n}.jpg').is_file():
                return False
    return bool(manifest.get('clips'))


def _clear_outputs(out: Path) -> None:
    """Remove what this generator writes (and nothing else) from ``out``."""
    for name in (FRAMES_DIR, MASKS_DIR):
        if (out / name).is_dir():
            shutil.rmtree(out / name)
    for name in (SHEET_NAME, MANIFEST_NAME, MARKER_NAME):
        if (out / name).exists():
            (out / name).unlink()


def _default_workers(n_clips: int) -> int:
    return max(1, min(os.cpu_count() or 1, 8, n_clips))


def generate(out_dir: str, cfg: Optional[SyntheticConfig] = None,
             workers: Optional[int] = None, overwrite: bool = False
             ) -> Dict[str, Any]:
    """Write (or reuse) a synthetic set in the CASME II layout.

    Args:
        out_dir: Destination folder; created if missing.
        cfg: Parameters (default :class:`SyntheticConfig`).
        workers: Worker processes (default: CPU count, at most 8). Frames are
            byte-identical whatever this is.
        overwrite: Allow writing into a non-empty folder that is not a
            synthetic set. Only this generator's outputs (``Cropped/``,
            ``masks/``, the sheet, the manifest) are removed first; other
            files are left alone.

    Returns:
        The manifest (also written to ``out_dir/manifest.json``).

    Raises:
        FileExistsError: ``out_dir`` is a non-empty folder that is not a
            synthetic set and ``overwrite`` is false.
        ValueError: A bad option (the message names it).
    """
    cfg = (cfg or SyntheticConfig()).validate()
    if workers is not None and int(workers) < 1:
        raise ValueError(f'workers = {workers!r}: must be at least 1')
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f'synthetic output {str(out)!r} exists and is '
                              'not a folder')

    if out.is_dir() and any(out.iterdir()):
        old = _read_manifest(out)
        if (old is not None and old.get('version') == GENERATOR_VERSION
                and old.get('config') == cfg.to_json() and _is_complete(out, old)):
            logger.info('synthetic set in %s reused: it already holds %d clips '
                        'made with the same parameters', out, len(old['clips']))
            return old
        if not _is_synthetic_folder(out) and not overwrite:
            raise FileExistsError(
                f'synthetic output folder {str(out)!r} is not empty and does not '
                'hold a synthetic set; choose an empty folder or pass '
                'overwrite=True (--overwrite)')
        _clear_outputs(out)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / MARKER_NAME, {'generator': GENERATOR_NAME,
                                    'version': GENERATOR_VERSION})

    start = time.perf_counter()
    faces, clips = plan(cfg)
    cfg_json = cfg.to_json()
    tasks = [(str(out), faces[c['subject_index']], c, cfg_json) for c in clips]
    n_workers = int(workers) if workers else _default_workers(len(tasks))
    n_workers = min(n_workers, len(tasks))
    if n_workers <= 1:
        for task in tasks:
            _clip_task(task)
    else:
        # fork keeps workers cheap (no re-import of the package); each worker
        # renders a subject's face once (cached) for a chunk of its clips.
        method = 'fork' if 'fork' in mp.get_all_start_methods() else 'spawn'
        with mp.get_context(method).Pool(n_workers) as pool:
            for _ in pool.imap_unordered(_clip_task, tasks,
                                         chunksize=max(1, cfg.clips_per_subject // 2)):
                pass

    write_sheet(out / SHEET_NAME, clips)
    manifest = {
        'generator': GENERATOR_NAME,
        'version': GENERATOR_VERSION,
        'seed': cfg.seed,
        'config': cfg_json,
        'fps': FPS,
        'sheet': SHEET_NAME,
        'frames_root': FRAMES_DIR,
        'frame_pattern': 'reg_img{frame}.jpg',
        'classes': SYNTHETIC_CLASSES,
        'design': {'name': cfg.design, 'primary_region': PRIMARY_REGION,
                   'secondary_regions': SECONDARY_REGIONS,
                   **({'weak_regions': WEAK_REGIONS}
                      if cfg.design == 'strong_weak' else {}),
                   'distractor_regions': list(DISTRACTOR_REGIONS)}
        if cfg.design != 'distinct' else {'name': cfg.design},
        'subjects': {f'{s + 1:02d}': f.to_pixels(cfg.size)
                     for s, f in enumerate(faces)},
        'clips': [{k: v for k, v in c.items()
                   if not k.startswith('_') and k not in ('subject_index', 'clip_index',
                                                          'noise_seed')}
                  for c in clips],
    }
    _write_json(out / MANIFEST_NAME, manifest)
    logger.info('synthetic set written to %s: %d clips in %.1f s (%d workers)',
                out, len(clips), time.perf_counter() - start, n_workers)
    return manifest
