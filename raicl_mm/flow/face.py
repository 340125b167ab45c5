"""Face crop on the onset frame, reused for every frame of the clip.

The box is found once on the onset so that cropping adds no motion between
the onset and any other frame.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional, Tuple

import cv2
import numpy as np

from .config import HAAR_CASCADE, FlowConfig

# One Haar detector per process and cascade file.
_HAAR: Dict[Tuple[int, str], Any] = {}


def _cascade_candidate(haar_cascade: Optional[str]) -> str:
    """The configured cascade path, or OpenCV's bundled one (may not exist)."""
    if haar_cascade:
        return os.path.expanduser(haar_cascade)
    data = getattr(cv2, 'data', None)
    folder = getattr(data, 'haarcascades', '') if data is not None else ''
    return os.path.join(folder, HAAR_CASCADE)


def haar_cascade_path(cfg: FlowConfig) -> str:
    """The Haar cascade file that ``face_crop='haar'`` uses.

    Args:
        cfg: Flow configuration; ``cfg.haar_cascade`` wins when set.

    Returns:
        Path of an existing cascade XML.

    Raises:
        RuntimeError: no cascade file; the opencv 5.0 wheels no longer ship
            ``cv2/data/*.xml``, so the message says where to get one.
    """
    path = _cascade_candidate(cfg.haar_cascade)
    if not os.path.isfile(path):
        raise RuntimeError(
            f"face_crop='haar' needs a Haar cascade file, but {path!r} does "
            f'not exist (the opencv 5.0 wheels no longer bundle '
            f'cv2/data/{HAAR_CASCADE}). Download {HAAR_CASCADE} from '
            f'opencv/opencv (4.x, data/haarcascades) and set '
            f'flow_cfg.haar_cascade to its path, or use face_crop=None / '
            f"'box'.")
    return path


def _load_cascade(path: str):
    """A ``cv2.CascadeClassifier`` for ``path``, one per process and file."""
    key = (os.getpid(), path)
    if key not in _HAAR:
        cascade = cv2.CascadeClassifier(path)
        if cascade.empty():
            raise RuntimeError(f'OpenCV could not load the Haar cascade '
                               f'{path!r} (FlowConfig.haar_cascade)')
        _HAAR.clear()
        _HAAR[key] = cascade
    return _HAAR[key]


def _haar_box(onset: np.ndarray, cfg: FlowConfig, path: str,
              sample_id: str) -> Tuple[int, int, int, int]:
    """Largest frontal face on the onset, enlarged by ``crop_margin`` per side.

    Args:
        onset: Grey onset frame at its source resolution.
        cfg: Flow configuration (cascade and margin).
        path: The onset's file, for messages.
        sample_id: The clip, for messages.

    Returns:
        ``(x, y, w, h)``, possibly reaching outside the frame (clipped later).
    """
    cascade = _load_cascade(haar_cascade_path(cfg))
    h_img, w_img = onset.shape
    min_side = max(24, min(h_img, w_img) // 5)
    faces = cascade.detectMultiScale(onset, scaleFactor=1.1, minNeighbors=5,
                                     minSize=(min_side, min_side))
    if len(faces) == 0:
        raise ValueError(f"face_crop='haar' found no face on the onset frame "
                         f'{path!r} of sample {sample_id}; use face_crop=None '
                         f"or face_crop='box' with crop_box=(x, y, w, h)")
    x, y, w, h = max((tuple(int(c) for c in f) for f in faces),
                     key=lambda b: b[2] * b[3])
    dx = int(round(w * cfg.crop_margin))
    dy = int(round(h * cfg.crop_margin))
    return (x - dx, y - dy, w + 2 * dx, h + 2 * dy)


def _clip_box(box: Tuple[int, int, int, int], shape: Tuple[int, int],
              what: str) -> Tuple[int, int, int, int]:
    """Intersect ``(x, y, w, h)`` with the image; error if nothing is left."""
    x, y, w, h = box
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, shape[1]), min(y + h, shape[0])
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError(f'crop box {box} does not overlap the {shape[1]}x'
                         f'{shape[0]} frame ({what})')
    return x0, y0, x1 - x0, y1 - y0


def _prepare(img: np.ndarray, box: Optional[Tuple[int, int, int, int]],
             size: Tuple[int, int]) -> np.ndarray:
    if box is not None:
        x, y, w, h = box
        img = img[y:y + h, x:x + w]
    # INTER_AREA: anti-aliased for the usual downscale of camera frames.
    return cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_AREA)
