"""Face crop on the onset frame, reused for every frame of the clip.

The crop is found once on the onset so that cropping adds no motion between
the onset and any other frame. :func:`align_clip` is the one entry point: it
returns a :class:`FaceAlignment` whose :meth:`~FaceAlignment.apply` crops
(and, for ``face_crop='landmarks'``, rotates) any frame of the clip.

``face_crop='landmarks'`` (the recipe of MEB / SAMER-style pipelines, with
weights installed from PyPI so nothing is downloaded at run time):

1. dlib's HOG frontal-face detector (built into the ``dlib-bin`` wheel) on
   the onset; the largest face wins. Frames wider than
   :data:`DETECT_MAX_SIDE` are detected on a downscaled copy; when nothing is
   found the detector runs once more on a 2x upsampled image.
2. dlib's 68-point shape predictor (``shape_predictor_68_face_landmarks.dat``
   of the ``face-recognition-models`` package) on the full-resolution onset.
3. The eye line (centre of points 36-41 to centre of points 42-47) gives the
   angle ``a``; the frame is rotated by ``a`` about the eyes' midpoint so the
   eye line is level.
4. The box: the square around the rotated landmarks' bounding box (side =
   its longer side), enlarged by ``crop_margin`` of that side on each side.
5. Every frame: the same rotation and box (``cv2.warpAffine``, bilinear,
   border replicated), then ``cv2.resize`` (INTER_AREA) to ``FlowConfig.size``.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import cv2
import numpy as np

from .config import FlowConfig
from .face_models import (ALIGN_VERSION, HAAR_CASCADE, INSTALL_HINT,  # noqa: F401
                          LANDMARK_MODEL, landmark_model_path)
from .face_models import cascade_candidate as _cascade_candidate

# One Haar detector per process and cascade file.
_HAAR: Dict[Tuple[int, str], Any] = {}


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


# --------------------------------------------------------------------------
# face_crop='landmarks'
# --------------------------------------------------------------------------
#: The onset is detected on a copy whose longer side is at most this.
DETECT_MAX_SIDE = 960

# One shape predictor per process and model file, one detector per process
# (building dlib's HOG detector takes seconds; detecting a face, 30 ms).
_PREDICTOR: Dict[Tuple[int, str], Any] = {}
_DETECTOR: Dict[int, Any] = {}
# Clips whose onset showed no face under no_face='whole_frame' (this process).
_NO_FACE: Dict[str, str] = {}


def _dlib():
    try:
        import dlib
    except ImportError as err:
        raise RuntimeError(f"face_crop='landmarks' needs dlib: {INSTALL_HINT}"
                           ) from err
    return dlib


def _predictor(path: str):
    """``dlib.shape_predictor`` for ``path``, one per process and file."""
    key = (os.getpid(), path)
    if key not in _PREDICTOR:
        try:
            pred = _dlib().shape_predictor(path)
        except RuntimeError as err:
            raise RuntimeError(f'dlib could not load the landmark model '
                               f'{path!r} (FlowConfig.landmark_model): {err}'
                               ) from err
        _PREDICTOR.clear()
        _PREDICTOR[key] = pred
    return _PREDICTOR[key]


def detect_faces(gray: np.ndarray) -> List[Tuple[int, int, int, int]]:
    """dlib HOG frontal faces as ``(x1, y1, x2, y2)``, largest first.

    Args:
        gray: uint8 ``(H, W)`` image at source resolution.

    Returns:
        Boxes in ``gray``'s pixels (empty when none is found).
    """
    pid = os.getpid()
    if pid not in _DETECTOR:
        _DETECTOR.clear()
        _DETECTOR[pid] = _dlib().get_frontal_face_detector()
    det = _DETECTOR[pid]
    scale = min(1.0, DETECT_MAX_SIDE / max(gray.shape))
    small = gray if scale == 1.0 else cv2.resize(
        gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    small = np.ascontiguousarray(small)
    rects = det(small, 0)
    if len(rects) == 0:  # small faces: once more at 2x (dlib's upsample)
        rects = det(small, 1)
    boxes = [tuple(int(round(v / scale)) for v in
                   (r.left(), r.top(), r.right(), r.bottom())) for r in rects]
    return sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))


def face_landmarks(gray: np.ndarray, box: Tuple[int, int, int, int],
                   model: Optional[str] = None) -> np.ndarray:
    """The 68 landmarks of the face in ``box``.

    Args:
        gray: uint8 ``(H, W)`` image.
        box: ``(x1, y1, x2, y2)`` from :func:`detect_faces`.
        model: ``FlowConfig.landmark_model`` (None = the packaged one).

    Returns:
        ``(68, 2)`` float64 ``(x, y)`` in ``gray``'s pixels.
    """
    dlib = _dlib()
    pred = _predictor(landmark_model_path(model))
    shape = pred(np.ascontiguousarray(gray), dlib.rectangle(*box))
    if shape.num_parts != 68:
        raise RuntimeError(f'the landmark model {landmark_model_path(model)!r}'
                           f' gives {shape.num_parts} points; '
                           "face_crop='landmarks' needs a 68-point model")
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def eye_line_angle(landmarks: np.ndarray) -> float:
    """Angle of the eye line in degrees (image axes, y down).

    The eye centres are the means of points 36-41 and 42-47 of the 68-point
    scheme; positive = the eye on the right of the image is lower.
    """
    left = landmarks[36:42].mean(axis=0)
    right = landmarks[42:48].mean(axis=0)
    return math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))


@dataclass
class FaceAlignment:
    """The crop of one clip, found on its onset and applied to every frame.

    Attributes:
        size: ``(H, W)`` of every prepared frame (``FlowConfig.size``).
        box: ``(x, y, w, h)`` crop of an axis-aligned mode (``'box'`` /
            ``'haar'``), None for the whole frame or ``'landmarks'``.
        matrix: ``'landmarks'``: the 2x3 affine map from source pixels to the
            aligned crop (rotation about the eyes, then the box's offset).
        crop_side: ``'landmarks'``: side of the aligned square in source
            pixels (before the resize to ``size``).
        angle: Eye-line angle of the onset in degrees (the rotation undone).
        face_box: ``[x1, y1, x2, y2]`` in source pixels: the crop square
            before rotation (rotate it by ``-angle`` about its centre to get
            the cut region; ``corners`` gives that region directly), or the
            axis-aligned box; None for the whole frame.
        corners: The cut region's 4 corners in source pixels (clockwise from
            top-left of the aligned crop); None for the whole frame.
        landmarks: The onset's ``(68, 2)`` landmarks (``'landmarks'``).
        face_found: False when ``no_face='whole_frame'`` replaced a missing
            face by the whole frame.
        mode: ``FlowConfig.face_crop``.
    """

    size: Tuple[int, int]
    box: Optional[Tuple[int, int, int, int]] = None
    matrix: Optional[np.ndarray] = None
    crop_side: int = 0
    angle: float = 0.0
    face_box: Optional[List[float]] = None
    corners: Optional[List[List[float]]] = None
    landmarks: Optional[np.ndarray] = field(default=None, repr=False)
    face_found: bool = True
    mode: Optional[str] = None

    def apply(self, img: np.ndarray) -> np.ndarray:
        """Crop (and align) one frame of the clip and resize it to ``size``."""
        if self.matrix is None:
            return _prepare(img, self.box, self.size)
        crop = cv2.warpAffine(img, self.matrix,
                              (self.crop_side, self.crop_side),
                              flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        return _prepare(crop, None, self.size)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-serialisable summary (box, angle, corners, flags)."""
        return dict(mode=self.mode, face_found=bool(self.face_found),
                    face_box=self.face_box, angle=float(self.angle),
                    corners=self.corners)


def _landmark_alignment(onset: np.ndarray, cfg: FlowConfig, path: str,
                        sample_id: str) -> Optional[FaceAlignment]:
    """Steps 1-4 of the module docstring; None when no face is found."""
    landmark_model_path(cfg.landmark_model)  # a missing model first
    boxes = detect_faces(onset)
    if not boxes:
        return None
    pts = face_landmarks(onset, boxes[0], cfg.landmark_model)
    angle = eye_line_angle(pts)
    left, right = pts[36:42].mean(axis=0), pts[42:48].mean(axis=0)
    centre = tuple(float(c) for c in (left + right) / 2)
    # Rotating by +angle (counter-clockwise on screen) levels the eye line.
    rot = cv2.getRotationMatrix2D(centre, angle, 1.0)
    aligned = pts @ rot[:, :2].T + rot[:, 2]
    lo, hi = aligned.min(axis=0), aligned.max(axis=0)
    side = float((hi - lo).max()) * (1.0 + 2.0 * cfg.crop_margin)
    mid = (lo + hi) / 2
    x0, y0 = mid - side / 2
    side_px = max(2, int(round(side)))
    matrix = rot.copy()
    matrix[:, 2] -= (x0, y0)
    inv = cv2.invertAffineTransform(matrix)
    corners = [[float(v) for v in inv @ np.array([cx, cy, 1.0])]
               for cx, cy in ((0, 0), (side, 0), (side, side), (0, side))]
    c_src = inv @ np.array([side / 2, side / 2, 1.0])
    face_box = [float(c_src[0] - side / 2), float(c_src[1] - side / 2),
                float(c_src[0] + side / 2), float(c_src[1] + side / 2)]
    return FaceAlignment(size=tuple(cfg.size), matrix=matrix,
                         crop_side=side_px, angle=angle, face_box=face_box,
                         corners=corners, landmarks=pts, mode='landmarks')


def _no_face(cfg: FlowConfig, path: str, sample_id: str,
             shape: Tuple[int, int]) -> FaceAlignment:
    """``no_face`` policy: the clear error, or the flagged whole frame."""
    if cfg.no_face == 'error':
        raise ValueError(
            f'face_crop={cfg.face_crop!r} found no face on the onset frame '
            f'{path!r} of sample {sample_id}; use flow_cfg.no_face='
            "'whole_frame' to fall back to the whole frame, face_crop=None, "
            "or face_crop='box' with crop_box=(x, y, w, h)")
    _NO_FACE[sample_id] = path
    warnings.warn(f'no face on the onset frame {path!r} of sample '
                  f'{sample_id}: the whole frame is used '
                  f"(flow_cfg.no_face='whole_frame'; "
                  f'{len(_NO_FACE)} such clip(s) in this process)')
    h, w = shape
    return FaceAlignment(size=tuple(cfg.size), face_found=False,
                         mode=cfg.face_crop,
                         face_box=[0.0, 0.0, float(w), float(h)])


def no_face_clips() -> Dict[str, str]:
    """Clips that fell back to the whole frame in this process: id -> onset."""
    return dict(_NO_FACE)


def align_clip(onset: np.ndarray, cfg: FlowConfig, path: str,
               sample_id: str) -> FaceAlignment:
    """The crop of a clip, found on its onset (``cfg.face_crop``).

    Args:
        onset: Grey onset frame at source resolution.
        cfg: Flow configuration.
        path: The onset's file (or a description), for messages.
        sample_id: The clip, for messages.

    Returns:
        A :class:`FaceAlignment` to apply to every frame of the clip.

    Raises:
        ValueError: no face (``no_face='error'``) or a box outside the frame;
            the message names the frame and the clip.
        RuntimeError: the detector / model / cascade is not installed.
    """
    h, w = onset.shape[:2]
    if cfg.face_crop is None:
        return FaceAlignment(size=tuple(cfg.size), mode=None)
    if cfg.face_crop == 'landmarks':
        found = _landmark_alignment(onset, cfg, path, sample_id)
        return found if found is not None else _no_face(cfg, path, sample_id,
                                                        (h, w))
    if cfg.face_crop == 'haar':
        try:
            box = _haar_box(onset, cfg, path, sample_id)
        except ValueError:
            if cfg.no_face == 'error':
                raise
            return _no_face(cfg, path, sample_id, (h, w))
        box = _clip_box(box, onset.shape, f'sample {sample_id}')
    else:
        box = _clip_box(cfg.crop_box, onset.shape,
                        f'FlowConfig.crop_box, sample {sample_id}')
    x, y, bw, bh = box
    return FaceAlignment(size=tuple(cfg.size), box=box, mode=cfg.face_crop,
                         face_box=[float(x), float(y), float(x + bw),
                                   float(y + bh)],
                         corners=[[x, y], [x + bw, y], [x + bw, y + bh],
                                  [x, y + bh]])
