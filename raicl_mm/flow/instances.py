"""A clip's frames -> its instance set ``[u, v, strain]`` per position (Eq. 2)."""
from __future__ import annotations

import os
import stat
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from . import face
from .config import FlowConfig
from . import tvl1


class CorruptFrameError(ValueError):
    """A frame file that is missing bytes or does not decode completely."""


class FrameLimitError(ValueError):
    """A frame that is not a regular file, or larger than the stated caps."""


#: Caps on one frame (the environment variable overrides the default): a
#: frame file's bytes and its decoded pixels (width x height). A sheet or a
#: tree is user input; a 100000x100000 PNG of a few KB would otherwise ask
#: for 10 GB when decoded.
FRAME_LIMITS = {'RAICL_MAX_FRAME_BYTES': 256 * 1024 * 1024,
                'RAICL_MAX_FRAME_PIXELS': 40_000_000}


def frame_limit(name: str) -> int:
    """The cap ``name`` of :data:`FRAME_LIMITS` (its environment variable wins)."""
    text = os.environ.get(name, '').strip()
    if text:
        try:
            value = int(float(text))
        except ValueError:
            raise FrameLimitError(f'{name}={text!r} is not a number') from None
        if value > 0:
            return value
    return FRAME_LIMITS[name]


def read_frame_bytes(path: str, sample_id: str = '') -> bytes:
    """A frame file's bytes, refusing anything but a regular file of bounded size.

    The file is opened without blocking and checked with ``fstat`` before a
    byte is read: a FIFO named like a frame would hang a plain ``open``, and a
    link to ``/dev/zero`` would never end.

    Raises:
        FileNotFoundError: The file does not exist.
        FrameLimitError: Not a regular file, or over ``RAICL_MAX_FRAME_BYTES``.
    """
    of = f' of sample {sample_id}' if sample_id else ''
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NONBLOCK', 0))
    except FileNotFoundError:
        raise FileNotFoundError(f'frame {path!r}{of} does not exist') from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = ('a FIFO' if stat.S_ISFIFO(st.st_mode) else 'a device'
                    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                    else 'a socket' if stat.S_ISSOCK(st.st_mode) else 'a folder'
                    if stat.S_ISDIR(st.st_mode) else 'not a regular file')
            raise FrameLimitError(f'frame {path!r}{of} is {kind}, not a regular file')
        cap = frame_limit('RAICL_MAX_FRAME_BYTES')
        if st.st_size > cap:
            raise FrameLimitError(
                f'frame {path!r}{of} is {st.st_size} bytes, over the cap of {cap} '
                '(RAICL_MAX_FRAME_BYTES raises it)')
        with os.fdopen(os.dup(fd), 'rb') as f:
            return f.read(cap + 1)
    finally:
        os.close(fd)


def _reason(err: BaseException) -> str:
    """``"a FIFO, not a regular file"`` from ``"frame 'x' is a FIFO, ..."``."""
    text = str(err)
    return text[text.index("' is ") + 5:] if "' is " in text else text


def check_frame_pixels(data: bytes, path: str, sample_id: str = '') -> None:
    """Refuse an encoded frame whose header declares more pixels than the cap
    (read from the header, before anything is decoded)."""
    import io
    try:
        from PIL import Image
        Image.MAX_IMAGE_PIXELS = None   # our own cap below, not PIL's warning
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
    except Exception:  # noqa: BLE001 - not an image PIL knows: decode decides
        return
    cap = frame_limit('RAICL_MAX_FRAME_PIXELS')
    if width * height > cap:
        of = f' of sample {sample_id}' if sample_id else ''
        raise FrameLimitError(
            f'frame {path!r}{of} is {width}x{height} pixels, over the cap of {cap} '
            '(RAICL_MAX_FRAME_PIXELS raises it)')


_PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
_PNG_IEND = b'\x00\x00\x00\x00IEND\xaeB`\x82'


def frame_problem(data: bytes) -> Optional[str]:
    """Why an encoded frame is incomplete, or None when its structure is whole.

    libjpeg decodes a truncated JPEG with only a "Premature end of JPEG file"
    warning on stderr (naming no file) and fills the rest grey, which turns
    into large spurious flow; OpenCV offers no strict mode, so the container
    is checked before decoding: a JPEG must end with its end-of-image marker
    (``FF D9``, trailing zero padding allowed), a PNG with its ``IEND`` chunk,
    a BMP must hold the size its header declares.

    Args:
        data: The file's bytes.

    Returns:
        A short reason, or None.
    """
    if not data:
        return 'empty file (0 bytes)'
    if data[:2] == b'\xff\xd8':
        if not data.rstrip(b'\x00').endswith(b'\xff\xd9'):
            return f'truncated JPEG (no end-of-image marker after {len(data)} bytes)'
    elif data[:8] == _PNG_MAGIC:
        if not data.endswith(_PNG_IEND):
            return f'truncated PNG (no IEND chunk after {len(data)} bytes)'
    elif data[:2] == b'BM' and len(data) >= 6:
        declared = int.from_bytes(data[2:6], 'little')
        if len(data) < declared:
            return f'truncated BMP ({len(data)} of the {declared} bytes its header declares)'
    return None


def _read_gray(path: str, sample_id: str) -> np.ndarray:
    """Decode a frame to grey, refusing an incomplete file.

    Raises:
        FileNotFoundError: The file does not exist.
        CorruptFrameError: Truncated, empty or undecodable (one line naming
            the file and the sample).
    """
    data = read_frame_bytes(path, sample_id)
    why = frame_problem(data)
    if why is not None:
        raise CorruptFrameError(f'frame {path!r} of sample {sample_id} is corrupt: {why}')
    check_frame_pixels(data, path, sample_id)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if img is None or img.size == 0:
        raise CorruptFrameError(f'frame {path!r} of sample {sample_id} could not be '
                                f'decoded as an image')
    return img


def check_clip_frames(record, decode: bool = False) -> List[dict]:
    """Every incomplete frame of a clip, without computing any flow.

    Args:
        record: A :class:`~raicl_mm.datasets.records.ClipRecord`.
        decode: Also decode each frame (slower) and compare its size with
            the onset's.

    Returns:
        ``[{'id': sample id, 'file': path, 'why': reason}]``, empty when all
        frames are whole.
    """
    problems, shape = [], None
    for path in record.frame_paths:
        try:
            data = read_frame_bytes(path)
        except FrameLimitError as err:
            problems.append(dict(id=record.sample_id, file=path, why=_reason(err)))
            continue
        except OSError as err:
            problems.append(dict(id=record.sample_id, file=path,
                                 why=f'cannot be read ({err.strerror or err})'))
            continue
        why = frame_problem(data)
        if why is None and decode:
            try:
                check_frame_pixels(data, path)
            except FrameLimitError as err:
                why = _reason(err)
        if why is None and decode:
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
            if img is None or img.size == 0:
                why = 'could not be decoded as an image'
            elif shape is None:
                shape = img.shape
            elif img.shape != shape:
                why = (f'wrong size {img.shape[1]}x{img.shape[0]}, the onset is '
                       f'{shape[1]}x{shape[0]}')
        if why:
            problems.append(dict(id=record.sample_id, file=path, why=why))
    return problems


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
    align = face.align_clip(onset, cfg, onset_path, sid)
    frames = []
    for p in positions:
        path = record.frame_paths[int(p)]
        img = _read_gray(path, sid)
        if img.shape != onset.shape:
            raise ValueError(f'frame {path!r} of sample {sid} is {img.shape}, '
                             f'the onset is {onset.shape}')
        frames.append(align.apply(img))
    return align.apply(onset), frames


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
        flows = tvl1._tvl1_torch_flows(onset, frames, cfg.device)
        return np.stack([np.dstack([f, tvl1.optical_strain(f[..., 0], f[..., 1])])
                         for f in flows]).astype(np.float32, copy=False)
    return np.stack([tvl1.flow_instance(onset, f, cfg.method) for f in frames])
