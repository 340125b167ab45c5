"""Onset->frame optical flow and optical strain: one motion instance per frame.

Each instance is ``I_n = [u_n, v_n, eps_n]`` (paper Sec. 3.1, Eq. 1-2): the
horizontal and vertical flow from the onset frame to frame ``n`` and the
optical strain magnitude of that flow field. Frames are cropped (optionally),
resized to :attr:`FlowConfig.size` and turned grey *before* the flow, so the
flow values are in pixels at the configured size.

TV-L1 is OpenCV's ``cv2.optflow.DualTVL1OpticalFlow`` with OpenCV's default
parameters (the contrib build is required, see :mod:`raicl_mm.compat`);
Farneback (``cv2.calcOpticalFlowFarneback``) is a faster alternative.
``'tvl1_torch'`` is the same TV-L1 model and scheme with the same default
parameters in PyTorch (:mod:`raicl_mm.datasets.tvl1_torch`): the pairs of a
clip (or, through :func:`raicl_mm.datasets.flow_cache.extract_all`, of many
clips) are solved as one batch, on CUDA when available.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

FLOW_METHODS = ('tvl1', 'farneback', 'tvl1_torch')
FACE_CROPS = (None, 'haar', 'box')

#: Farneback parameters (the values of OpenCV's own optical-flow sample):
#: pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags.
FARNEBACK_PARAMS = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3,
                        poly_n=5, poly_sigma=1.2, flags=0)

#: OpenCV's frontal-face cascade, used by ``face_crop='haar'`` by default.
HAAR_CASCADE = 'haarcascade_frontalface_default.xml'

# One TV-L1 solver and one Haar detector per process: creating them is cheap
# but not free, and cv2 objects cannot be pickled to worker processes anyway.
_TVL1: Dict[int, Any] = {}
_HAAR: Dict[Tuple[int, str], Any] = {}


@dataclass
class FlowConfig:
    """Everything that decides how a flow instance is computed.

    Attributes:
        method: ``'tvl1'`` (OpenCV DualTVL1, default parameters),
            ``'farneback'`` or ``'tvl1_torch'`` (the batched PyTorch port of
            OpenCV's TV-L1, same defaults).
        size: ``(H, W)`` of the frames after crop and resize; the flow is
            computed, and expressed in pixels, at this size.
        face_crop: None (whole frame), ``'haar'`` (OpenCV's frontal-face Haar
            cascade on the onset frame, box enlarged by ``crop_margin``) or
            ``'box'`` (the fixed ``crop_box``). The box found on the onset is
            reused for every frame of the clip so the crop adds no motion.
        crop_margin: Fraction of the face box's width/height added on each
            side (``'haar'`` only).
        crop_box: ``(x, y, w, h)`` in source-frame pixels for ``'box'``.
        haar_cascade: Path of the Haar cascade XML for ``'haar'``; None uses
            OpenCV's bundled ``haarcascade_frontalface_default.xml`` (the
            opencv 5.0 wheels ship none: then a path is required).
        device: ``'tvl1_torch'`` only: torch device (``'cpu'``,
            ``'cuda'``, ``'cuda:1'``); None = CUDA when available, else CPU.
            Not part of the cache key: the device changes the flow only by
            float32 rounding (see :meth:`key_dict`).
    """

    method: str = 'tvl1'
    size: Tuple[int, int] = (112, 112)
    face_crop: Optional[str] = None
    crop_margin: float = 0.1
    crop_box: Optional[Tuple[int, int, int, int]] = None
    haar_cascade: Optional[str] = None
    device: Optional[str] = None

    def __post_init__(self) -> None:
        if self.method not in FLOW_METHODS:
            raise ValueError(f'FlowConfig.method={self.method!r} is unknown; '
                             f'valid: {FLOW_METHODS}')
        self.size = tuple(int(s) for s in self.size)
        if len(self.size) != 2 or min(self.size) < 8:
            raise ValueError(f'FlowConfig.size must be (H, W) with both >= 8, '
                             f'got {self.size}')
        if self.face_crop not in FACE_CROPS:
            raise ValueError(f'FlowConfig.face_crop={self.face_crop!r} is '
                             f'unknown; valid: {FACE_CROPS}')
        if self.crop_margin < 0:
            raise ValueError(f'FlowConfig.crop_margin must be >= 0, got '
                             f'{self.crop_margin}')
        if self.face_crop == 'box':
            if self.crop_box is None or len(self.crop_box) != 4:
                raise ValueError("FlowConfig.face_crop='box' needs crop_box="
                                 f'(x, y, w, h), got {self.crop_box}')
            self.crop_box = tuple(int(c) for c in self.crop_box)
            if self.crop_box[2] <= 0 or self.crop_box[3] <= 0:
                raise ValueError(f'FlowConfig.crop_box width and height must '
                                 f'be positive, got {self.crop_box}')

    def key_dict(self) -> Dict[str, Any]:
        """Every parameter that changes the result, for cache keys.

        Returns:
            A JSON-serialisable dict: the fields that matter for the chosen
            crop mode, the solver parameters and the OpenCV version (a new
            OpenCV may give different flows).
        """
        key = asdict(self)
        # Where the flow is computed is not what it is: CPU and CUDA runs of
        # 'tvl1_torch' differ by float32 rounding only, far below the
        # solver's own error, so one cache serves both.
        key.pop('device')
        key['size'] = list(self.size)
        if self.face_crop != 'haar':
            key.pop('crop_margin')
        if self.face_crop != 'box':
            key.pop('crop_box')
        else:
            key['crop_box'] = list(self.crop_box)
        if self.face_crop == 'haar':
            # The cascade by name and size, not by path: moving it is harmless.
            path = _cascade_candidate(self.haar_cascade)
            key['haar_cascade'] = [os.path.basename(path),
                                   os.path.getsize(path)
                                   if os.path.isfile(path) else None]
        else:
            key.pop('haar_cascade')
        if self.method == 'tvl1':
            key['solver'] = 'opencv-defaults'
        elif self.method == 'tvl1_torch':
            from .tvl1_torch import TVL1Params
            key['solver'] = dict(TVL1Params().key(), impl='raicl_mm-torch-1')
        else:
            key['solver'] = dict(FARNEBACK_PARAMS)
        key['resize'] = 'INTER_AREA'
        key['opencv'] = cv2.__version__
        return key


def set_worker_threads(num_threads: int = 1) -> None:
    """Limit OpenCV's internal threads, e.g. in each worker of a process pool.

    With one process per core, OpenCV's own thread pool would oversubscribe
    the cores; one thread per worker is fastest.

    Args:
        num_threads: Threads for OpenCV in this process.
    """
    cv2.setNumThreads(int(num_threads))


def _tvl1():
    """The process's TV-L1 solver (created once, OpenCV default parameters)."""
    pid = os.getpid()  # a forked child must not reuse its parent's object
    if pid not in _TVL1:
        from raicl_mm.compat import require_optflow
        _TVL1.clear()
        _TVL1[pid] = require_optflow().DualTVL1OpticalFlow_create()
    return _TVL1[pid]


def optical_strain(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Optical strain magnitude of a flow field (third channel of Eq. 2).

    ``eps = sqrt(u_x^2 + v_y^2 + 0.5 * (u_y + v_x)^2)``, i.e. the Frobenius
    norm of the infinitesimal strain tensor ``0.5 * (grad O + grad O^T)``.
    Derivatives are ``np.gradient``: central differences inside, one-sided
    at the borders, unit pixel spacing; x is the column axis, y the row axis.

    Args:
        u: Horizontal flow, ``(H, W)``.
        v: Vertical flow, ``(H, W)``.

    Returns:
        ``(H, W)`` float32 strain magnitude.
    """
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    if u.shape != v.shape or u.ndim != 2:
        raise ValueError(f'u and v must be 2-D of the same shape, got '
                         f'{u.shape} and {v.shape}')
    u_y, u_x = np.gradient(u)
    v_y, v_x = np.gradient(v)
    strain = np.sqrt(u_x ** 2 + v_y ** 2 + 0.5 * (u_y + v_x) ** 2)
    return strain.astype(np.float32)


def _check_gray(img: np.ndarray, name: str) -> np.ndarray:
    if img.ndim != 2:
        raise ValueError(f'{name} must be a 2-D grey image, got shape '
                         f'{img.shape}')
    if img.dtype != np.uint8:
        raise ValueError(f'{name} must be uint8, got {img.dtype}')
    return img


def compute_flow(onset_gray: np.ndarray, frame_gray: np.ndarray,
                 method: str = 'tvl1', device: Optional[str] = 'cpu'
                 ) -> np.ndarray:
    """Optical flow from the onset to a frame (Eq. 1).

    Args:
        onset_gray: ``(H, W)`` uint8 onset frame.
        frame_gray: ``(H, W)`` uint8 frame of the same size.
        method: ``'tvl1'``, ``'farneback'`` or ``'tvl1_torch'``.
        device: ``'tvl1_torch'`` only: torch device (None = CUDA when
            available); one pair is fastest on the CPU.

    Returns:
        ``(H, W, 2)`` float32 ``[u, v]`` in pixels: a point at ``(x, y)`` in
        the onset is at ``(x + u, y + v)`` in the frame.
    """
    _check_gray(onset_gray, 'onset_gray')
    _check_gray(frame_gray, 'frame_gray')
    if onset_gray.shape != frame_gray.shape:
        raise ValueError(f'onset and frame differ in size: {onset_gray.shape} '
                         f'vs {frame_gray.shape}')
    if method == 'tvl1':
        flow = _tvl1().calc(onset_gray, frame_gray, None)
    elif method == 'farneback':
        p = FARNEBACK_PARAMS
        flow = cv2.calcOpticalFlowFarneback(
            onset_gray, frame_gray, None, p['pyr_scale'], p['levels'],
            p['winsize'], p['iterations'], p['poly_n'], p['poly_sigma'],
            p['flags'])
    elif method == 'tvl1_torch':
        return _tvl1_torch_flows(onset_gray, [frame_gray], device)[0]
    else:
        raise ValueError(f'unknown flow method {method!r}; valid: '
                         f'{FLOW_METHODS}')
    return np.ascontiguousarray(flow, dtype=np.float32)


def _tvl1_torch_flows(onset_gray: np.ndarray, frames: Sequence[np.ndarray],
                      device: Optional[str]) -> np.ndarray:
    """``(N, H, W, 2)`` float32 TV-L1 flows onset->frame, one torch batch."""
    import torch

    from .tvl1_torch import default_device, tvl1_batch
    ref = torch.from_numpy(np.ascontiguousarray(onset_gray))
    ref = ref.unsqueeze(0).expand(len(frames), -1, -1)
    tgt = torch.from_numpy(np.stack(frames))
    flows = tvl1_batch(ref, tgt, device=default_device(device))
    return np.ascontiguousarray(flows.cpu().numpy(), dtype=np.float32)


def flow_instance(onset_gray: np.ndarray, frame_gray: np.ndarray,
                  method: str = 'tvl1') -> np.ndarray:
    """One motion instance ``I_n = [u_n, v_n, eps_n]`` (Eq. 2).

    Args:
        onset_gray: ``(H, W)`` uint8 onset frame.
        frame_gray: ``(H, W)`` uint8 frame.
        method: ``'tvl1'`` or ``'farneback'``.

    Returns:
        ``(H, W, 3)`` float32.
    """
    flow = compute_flow(onset_gray, frame_gray, method)
    strain = optical_strain(flow[..., 0], flow[..., 1])
    return np.dstack([flow, strain]).astype(np.float32, copy=False)


def _read_gray(path: str, sample_id: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise FileNotFoundError(f'frame {path!r} of sample {sample_id} does '
                                f'not exist')
    img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if img is None or img.size == 0:
        raise ValueError(f'frame {path!r} of sample {sample_id} could not be '
                         f'decoded as an image')
    return img


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


def load_clip_frames(record, positions: Sequence[int],
                     cfg: FlowConfig) -> Tuple[np.ndarray, List[np.ndarray]]:
    """Read the onset and the frames at ``positions``, cropped, resized, grey.

    The crop box is found once on the onset frame and reused for every frame
    of the clip, so cropping adds no motion.

    Args:
        record: A :class:`~raicl_mm.datasets.records.ClipRecord`.
        positions: Indices into ``record.frame_paths`` (0 = onset).
        cfg: Flow configuration (size and crop).

    Returns:
        ``(onset_gray, frames_gray)``: uint8 ``(H, W)`` images at
        ``cfg.size``, one frame per position, in the given order.

    Raises:
        FileNotFoundError / ValueError: a missing or undecodable frame, a
            position outside the clip, or no face found; the message names
            the path and the sample id.
    """
    sid = record.sample_id
    n = len(record.frame_paths)
    if n == 0:
        raise ValueError(f'sample {sid} has no frames')
    bad = [p for p in positions if not 0 <= int(p) < n]
    if bad:
        raise ValueError(f'positions {bad} are outside sample {sid} '
                         f'({n} frames)')
    onset_path = record.frame_paths[0]
    onset = _read_gray(onset_path, sid)
    box = None
    if cfg.face_crop == 'haar':
        box = _clip_box(_haar_box(onset, cfg, onset_path, sid),
                        onset.shape, f'sample {sid}')
    elif cfg.face_crop == 'box':
        box = _clip_box(cfg.crop_box, onset.shape,
                        f'FlowConfig.crop_box, sample {sid}')
    frames = []
    for p in positions:
        path = record.frame_paths[int(p)]
        img = _read_gray(path, sid)
        if img.shape != onset.shape:
            raise ValueError(f'frame {path!r} of sample {sid} is {img.shape}, '
                             f'the onset is {onset.shape}')
        frames.append(_prepare(img, box, cfg.size))
    return _prepare(onset, box, cfg.size), frames


def extract_instance_set(record, cfg: FlowConfig,
                         positions: Sequence[int]) -> np.ndarray:
    """The instance set of a clip: one ``[u, v, strain]`` per position (Eq. 2).

    Args:
        record: A :class:`~raicl_mm.datasets.records.ClipRecord`.
        cfg: Flow configuration.
        positions: Indices into ``record.frame_paths`` (see
            :func:`raicl_mm.datasets.sampling.sample_positions`).

    Returns:
        ``(N, H, W, 3)`` float32 with ``(H, W) = cfg.size``.
    """
    if len(positions) == 0:
        raise ValueError(f'no positions to extract for sample '
                         f'{record.sample_id}')
    onset, frames = load_clip_frames(record, positions, cfg)
    if cfg.method == 'tvl1_torch':
        # All pairs of the clip in one batch.
        flows = _tvl1_torch_flows(onset, frames, cfg.device)
        return np.stack([np.dstack([f, optical_strain(f[..., 0], f[..., 1])])
                         for f in flows]).astype(np.float32, copy=False)
    return np.stack([flow_instance(onset, f, cfg.method) for f in frames])
