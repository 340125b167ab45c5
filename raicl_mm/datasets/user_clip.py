"""A user's clip, read and turned into instances: the steps shared by
:class:`raicl_mm.apis.RaICLInferencer` and by the test pipeline's first step
(:class:`raicl_mm.datasets.transforms.ClipInstances`, which mmaction2's own
``inference_recognizer`` runs).

- :func:`read_clip` -- a frame folder, a video (OpenCV, streamed) or an array
  of frames -> the grey frames from onset to offset; only the frames that
  inference uses are decoded and kept (:class:`FrameStore`), and every cap
  (frames, pixels, frame rate) is checked before decoding.
- :class:`ClipSteps` -- the MIR positions of a clip (``sampling``, before any
  frame is decoded) and its onset->frame ``[u, v, strain]`` instances (paper
  Eq. 1-2) after face alignment on the onset (``flow_cfg``).

Errors are :class:`InferenceError`, one line naming the input and the frame.
"""
from __future__ import annotations

import glob
import os
import os.path as osp
import re
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import cv2
import numpy as np

VIDEO_EXTS = ('.mp4', '.avi', '.mov', '.mkv', '.m4v', '.webm')
IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff')

class InferenceError(ValueError):
    """Bad input or settings for inference; the message is one line."""


class FrameStore:
    """The grey frames of a clip from onset to offset, of which only the ones
    inference uses are kept (the onset and the instances' frames): a long
    video is streamed, never held whole in memory.

    ``len()`` is the number of frames in the window; indexing a frame that
    was not kept is an error.
    """

    def __init__(self, count: int, kept: Dict[int, np.ndarray]) -> None:
        self.count = int(count)
        self.kept = dict(kept)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> np.ndarray:
        index = int(index)
        if index < 0:
            index += self.count
        if index not in self.kept:
            raise IndexError(f'frame {index} of the clip was not kept (only the onset '
                             'and the instances\' frames are)')
        return self.kept[index]

    def __iter__(self):
        return iter(self.kept[i] for i in sorted(self.kept))


@dataclass
class ClipInput:
    """A decoded clip: grey frames from onset to offset (a :class:`FrameStore`
    or a list) and where they came from."""

    name: str
    frames: Any
    frame_numbers: List[int]
    fps: Optional[float]
    colour_onset: Optional[np.ndarray] = None
    size: tuple = ()
    positions: Optional[List[int]] = None
    warnings: List[str] = field(default_factory=list)


# --------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------
def _natural_key(path: str):
    return [int(t) if t.isdigit() else t.lower()
            for t in re.split(r'(\d+)', osp.basename(path))]


def _frame_number(path: str, default: int) -> int:
    digits = re.findall(r'\d+', osp.splitext(osp.basename(path))[0])
    return int(digits[-1]) if digits else default


def _window(n: int, onset: Optional[int], offset: Optional[int],
            name: str) -> tuple:
    """Indices ``[first, last]`` of the clip from 0-based onset / offset."""
    first = 0 if onset is None else int(onset)
    last = n - 1 if offset is None else int(offset)
    if not 0 <= first < n or not 0 <= last < n:
        raise InferenceError(f'{name}: onset={onset} / offset={offset} are '
                             f'outside its {n} frames (0-based indices)')
    if last - first < 1:
        raise InferenceError(f'{name}: needs at least 2 frames from onset to '
                             f'offset, got onset={first}, offset={last}')
    return first, last


def _frame_caps(name: str, width: int, height: int, count: int,
                fps: Optional[float]) -> None:
    """Refuse a clip over the stated caps before decoding it (one line)."""
    from raicl_mm.datasets.sources.common import check_fps, sheet_limit
    from raicl_mm.flow.instances import frame_limit
    pixels = frame_limit('RAICL_MAX_FRAME_PIXELS')
    if width * height > pixels:
        raise InferenceError(f'{name}: frames of {width}x{height} pixels are over the cap '
                             f'of {pixels} (RAICL_MAX_FRAME_PIXELS raises it)')
    frames = int(sheet_limit('RAICL_MAX_CLIP_FRAMES'))
    if count > frames:
        raise InferenceError(f'{name}: {count} frames from onset to offset are over the '
                             f'cap of {frames} (RAICL_MAX_CLIP_FRAMES raises it; or pass '
                             'onset / offset)')
    if fps:
        try:
            check_fps(float(fps), name)
        except ValueError as err:
            raise InferenceError(str(err)) from None


def _decode_file(path: str, name: str) -> np.ndarray:
    from raicl_mm.flow.instances import (CorruptFrameError, FrameLimitError,
                                         check_frame_pixels, frame_problem,
                                         read_frame_bytes)
    try:
        data = read_frame_bytes(path)
        why = frame_problem(data)
        if why:
            raise CorruptFrameError(f'frame {path!r} is corrupt: {why}')
        check_frame_pixels(data, path)
    except (OSError, FrameLimitError, CorruptFrameError) as err:
        raise InferenceError(f'{name}: {str(err).splitlines()[0]}') from None
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise InferenceError(f'{path}: could not be decoded as an image')
    return img


def _stream_video(name: str, first: int, last: int, wanted: set,
                  to_end: bool):
    """Decode frames ``first..last`` of a video keeping only ``wanted``
    (window indices); with ``to_end`` the rest is decoded too (not kept), to
    count every decodable frame. Returns ``(kept, colour onset, frames
    decoded)``."""
    cap = cv2.VideoCapture(name)
    if not cap.isOpened():
        raise InferenceError(f'{name}: OpenCV could not open the video')
    kept, colour, idx = {}, None, 0
    try:
        while to_end or idx <= last:
            if not cap.grab():
                break
            if idx > last:
                idx += 1
                continue
            if idx >= first and (idx - first) in wanted:
                ok, img = cap.retrieve()
                if not ok or img is None:
                    break
                if colour is None:
                    colour = img
                kept[idx - first] = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            idx += 1
    finally:
        cap.release()
    return kept, colour, idx


def read_clip(source, onset: Optional[int] = None,
              offset: Optional[int] = None,
              fps: Optional[float] = None, select=None,
              allow_truncated: bool = False) -> ClipInput:
    """Decode a folder of frames, a video file or an array of frames.

    Args:
        source: A folder of images (sorted by the numbers in their names), a
            video file, or an array ``(T, H, W)`` grey / ``(T, H, W, 3)`` BGR
            uint8 (or a list of such frames).
        onset: 0-based index of the onset in the input (default: the first).
        offset: 0-based index of the offset (default: the last).
        fps: Frame rate; a video's own rate is used when None.
        select: ``(frame_numbers, fps) -> positions`` (window indices) of the
            frames inference uses; only those and the onset are decoded and
            kept (``clip.frames`` is then a :class:`FrameStore`). None keeps
            every frame.
        allow_truncated: A video that decodes fewer frames than its
            container reports is an error naming both counts; with this, the
            decoded frames are used and a warning is recorded in
            ``clip.warnings``.

    Returns:
        A :class:`ClipInput` with the grey frames ``onset..offset``.

    Raises:
        InferenceError: missing / unreadable input, too few frames, frames of
            different sizes, a clip over the caps (frames, pixels, frame
            rate), a truncated video; one line naming the input and the frame.
    """
    warnings: List[str] = []
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        if osp.isdir(name):
            paths = sorted((p for p in glob.glob(osp.join(name, '*'))
                            if p.lower().endswith(IMAGE_EXTS)), key=_natural_key)
            if len(paths) < 2:
                raise InferenceError(f'{name}: a frame folder needs at least 2 '
                                     f'images ({", ".join(IMAGE_EXTS)})')
            first, last = _window(len(paths), onset, offset, name)
            window = paths[first:last + 1]
            numbers = [_frame_number(p, i) for i, p in
                       enumerate(window, start=first)]
            if len(set(numbers)) != len(numbers):
                numbers = list(range(first, last + 1))
            _frame_caps(name, 0, 0, len(window), fps)
            wanted = (set(range(len(window))) if select is None
                      else {0, *map(int, select(numbers, fps))})
            kept, colour = {}, None
            for i in sorted(wanted):
                img = _decode_file(window[i], name)
                if colour is None:
                    colour = img
                kept[i] = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            frames = FrameStore(len(window), kept)
            clip = ClipInput(name, frames, numbers, fps, colour)
        elif osp.isfile(name):
            if not name.lower().endswith(VIDEO_EXTS):
                raise InferenceError(f'{name}: not a folder of frames nor a '
                                     f'video ({", ".join(VIDEO_EXTS)})')
            cap = cv2.VideoCapture(name)
            if not cap.isOpened():
                raise InferenceError(f'{name}: OpenCV could not open the video')
            rate = cap.get(cv2.CAP_PROP_FPS)
            reported = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
            height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
            cap.release()
            rate = fps or (float(rate) if rate and rate > 0 else None)
            _frame_caps(name, width, height, 0, rate)
            if reported <= 0:
                # no count in the container: count by decoding (streamed)
                _, _, reported = _stream_video(name, 0, -1, set(), True)
                if reported == 0:
                    raise InferenceError(f'{name}: no frame could be decoded')
            count = reported
            for attempt in range(2):
                first, last = _window(count, onset, offset, name)
                _frame_caps(name, width, height, last - first + 1, None)
                numbers = list(range(first, last + 1))
                wanted = (set(range(len(numbers))) if select is None
                          else {0, *map(int, select(numbers, rate))})
                to_end = offset is None
                kept, colour, decoded = _stream_video(name, first, last, wanted, to_end)
                if (decoded == count) if to_end else (decoded >= last + 1):
                    break
                # the container promised more frames than decode
                if decoded == 0:
                    raise InferenceError(f'{name}: no frame could be decoded')
                if not allow_truncated or attempt:
                    raise InferenceError(
                        f'{name}: decoded {decoded} frames but its container reports '
                        f'{reported} (a truncated or damaged video); '
                        + ('pass --allow-truncated (allow_truncated=True) to score the '
                           f'{min(decoded, last + 1) if not to_end else decoded} decoded '
                           'frames' if not attempt else
                           'the frames decoded changed between two reads'))
                warnings.append(f'decoded {decoded} frames but the container reports '
                                f'{reported}: scored on the {decoded} decoded frames '
                                '(allow_truncated)')
                count = decoded
                if offset is not None and int(offset) >= decoded:
                    raise InferenceError(f'{name}: offset={offset} is past its '
                                         f'last decodable frame {decoded - 1}')
            clip = ClipInput(name, FrameStore(len(numbers), kept), numbers, rate,
                             colour)
        else:
            raise InferenceError(f'{name}: no such file or folder')
    else:
        arr = [np.asarray(f) for f in source]
        if len(arr) < 2:
            raise InferenceError('array input: needs at least 2 frames')
        first, last = _window(len(arr), onset, offset, 'array input')
        frames, colour = [], None
        for i in range(first, last + 1):
            f = arr[i]
            if f.dtype != np.uint8 or f.ndim not in (2, 3) or (
                    f.ndim == 3 and f.shape[2] != 3):
                raise InferenceError(f'array input: frame {i} must be uint8 '
                                     f'(H, W) or (H, W, 3), got {f.dtype} '
                                     f'{f.shape}')
            if colour is None:
                colour = f
            frames.append(f if f.ndim == 2 else
                          cv2.cvtColor(f, cv2.COLOR_BGR2GRAY))
        clip = ClipInput('array', frames, list(range(first, last + 1)), fps,
                         colour)
    clip.warnings = warnings
    if select is not None and clip.positions is None:
        clip.positions = [int(p) for p in select(clip.frame_numbers, clip.fps)]
    indexed = (sorted(clip.frames.kept.items()) if isinstance(clip.frames, FrameStore)
               else list(enumerate(clip.frames)))
    onset_shape = indexed[0][1].shape
    bad = next((i for i, f in indexed if f.shape != onset_shape), None)
    if bad is not None:
        raise InferenceError(f'{clip.name}: frame {clip.frame_numbers[bad]} '
                             f'is {clip.frames[bad].shape}, the onset is '
                             f'{onset_shape}')
    if len(clip.frames) < 2:
        raise InferenceError(f'{clip.name}: needs at least 2 frames from '
                             'onset to offset')
    clip.size = onset_shape
    return clip


# --------------------------------------------------------------------------
# positions and instances
# --------------------------------------------------------------------------
class ClipSteps:
    """The selection and flow steps of inference for one set of settings.

    Args:
        flow_cfg: A :class:`raicl_mm.flow.FlowConfig` (method, size,
            ``face_crop``).
        sampling: A :class:`raicl_mm.datasets.sampling.SamplingConfig`.
    """

    def __init__(self, flow_cfg, sampling) -> None:
        self.flow_cfg = flow_cfg
        self.sampling = sampling

    def select(self, frame_numbers, fps, name: str = 'input') -> List[int]:
        """The positions (indices from the onset) of the instance set of a
        clip with these frame numbers and rate, before any frame is decoded."""
        from .records import ClipRecord
        from .sampling import clip_positions
        rec = ClipRecord(dataset='user', subject='user', clip_id=str(name), label='',
                         onset=int(frame_numbers[0]), apex=None,
                         offset=int(frame_numbers[-1]),
                         frame_paths=[f'{name}#{n}' for n in frame_numbers],
                         frame_numbers=list(frame_numbers), fps=float(fps or 0.0))
        try:
            return [int(p) for p in clip_positions(rec, self.sampling)]
        except ValueError as err:
            raise InferenceError(f'{name}: {err}') from err

    def read(self, source, onset: Optional[int] = None,
             offset: Optional[int] = None, fps: Optional[float] = None,
             allow_truncated: bool = False) -> ClipInput:
        """:func:`read_clip` keeping only the onset and the frames these
        settings select."""
        name = (os.fspath(source) if isinstance(source, (str, os.PathLike))
                else 'array')
        return read_clip(source, onset, offset, fps,
                         select=lambda numbers, rate: self.select(numbers, rate, name),
                         allow_truncated=allow_truncated)

    def instances(self, clip: ClipInput):
        """Alignment on the onset, MIR positions, instances (Eq. 1-2).

        Returns ``(alignment, aligned onset, aligned frames, positions,
        (N, H, W, 3) instances, seconds aligning, seconds of flow)``."""
        from raicl_mm.flow import face, tvl1

        t = time.perf_counter()
        try:
            align = face.align_clip(clip.frames[0], self.flow_cfg,
                                    f'{clip.name} frame {clip.frame_numbers[0]}',
                                    clip.name)
        except (ValueError, RuntimeError) as err:
            raise InferenceError(str(err)) from err
        onset = align.apply(clip.frames[0])
        t_align = time.perf_counter() - t
        positions = (list(clip.positions) if clip.positions is not None
                     else self.select(clip.frame_numbers, clip.fps, clip.name))
        t = time.perf_counter()
        frames = [align.apply(clip.frames[p]) for p in positions]
        t_align += time.perf_counter() - t
        t = time.perf_counter()
        if self.flow_cfg.method == 'tvl1_torch':
            flows = tvl1._tvl1_torch_flows(onset, frames, self.flow_cfg.device)
            inst = np.stack([np.dstack([f, tvl1.optical_strain(
                f[..., 0], f[..., 1])]) for f in flows]).astype(np.float32)
        else:
            inst = np.stack([tvl1.flow_instance(onset, f, self.flow_cfg.method)
                             for f in frames])
        t_flow = time.perf_counter() - t
        return align, onset, frames, positions, inst, t_align, t_flow
