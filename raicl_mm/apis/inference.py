"""A user's own clip -> a prediction: :class:`RaICLInferencer`.

In the style of mmaction2's ``init_recognizer`` / ``inference_recognizer`` and
its inferencers: built once from a config and a checkpoint, then called on
inputs. A clip is a folder of frames, a video file (mp4 / avi / mov / mkv,
decoded by OpenCV) or an array of frames; onset and offset are optional
(default: the first and the last frame) and no apex is ever needed.

The steps are those of training, with the config's own settings (read from
``test_dataloader.dataset``): decode -> grey -> face alignment on the onset
(:func:`raicl_mm.flow.face.align_clip`, ``flow_cfg.face_crop``) -> MIR
positions (``sampling``, with the frame-rate resampling of
``sampling.target_fps``) -> onset->frame ``[u, v, strain]`` instances
(``flow_cfg.method``) -> the test pipeline's normalisation -> the online
branch. Every instance is scored; the answer is the middle instance's
softmax (paper A.1.3, ``mode='middle'``) or the mean softmax over all
instances (``mode='ensemble'``), exactly as
:meth:`RaICLRecognizer.predict` computes them in a test run.
"""
from __future__ import annotations

import glob
import os
import os.path as osp
import re
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

import cv2
import numpy as np
import torch

VIDEO_EXTS = ('.mp4', '.avi', '.mov', '.mkv', '.m4v', '.webm')
IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff')
MODES = ('middle', 'ensemble')
_UNSET = object()


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


@dataclass
class InferenceResult:
    """What :class:`RaICLInferencer` returns for one clip.

    Attributes:
        input: The input's name (path, or ``'array'``).
        label: Predicted class name.
        scores: Class name -> probability (middle or ensemble, see ``mode``).
        mode: ``'middle'`` or ``'ensemble'``.
        instances: One dict per instance: ``frame`` (frame number of the
            instance's frame; the onset is ``frames_used['onset']``),
            ``scores`` (class -> probability) and ``label``.
        face: ``face_box`` ``[x1, y1, x2, y2]`` in input pixels (the crop
            square before its rotation), ``angle`` (eye-line degrees undone),
            ``corners`` (the cut region), ``face_found``, ``mode``.
        frames_used: ``onset``, ``offset``, ``fps``, ``target_fps``, the
            number of frames read and the frame number of every instance.
        timings: Seconds per stage (decode, align, flow, predict, total).
        aligned_onset: The aligned, resized grey onset (for pictures).
        aligned_frames: The aligned, resized grey frame of each instance.
        flows: ``(N, H, W, 3)`` instances as computed (for pictures).
        model_inputs: ``(N, 3, H, W)`` normalised model inputs.
    """

    input: str
    label: str
    scores: Dict[str, float]
    mode: str
    instances: List[Dict[str, Any]]
    face: Dict[str, Any]
    frames_used: Dict[str, Any]
    timings: Dict[str, float]
    aligned_onset: Optional[np.ndarray] = field(default=None, repr=False)
    aligned_frames: Optional[np.ndarray] = field(default=None, repr=False)
    flows: Optional[np.ndarray] = field(default=None, repr=False)
    model_inputs: Optional[torch.Tensor] = field(default=None, repr=False)

    def to_dict(self) -> Dict[str, Any]:
        """The JSON form (``tools/infer.py`` writes it)."""
        return dict(input=self.input, label=self.label, scores=self.scores,
                    mode=self.mode, face_box=self.face.get('face_box'),
                    face=self.face, instances=self.instances,
                    frames_used=self.frames_used, timings=self.timings)


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
# the inferencer
# --------------------------------------------------------------------------
def _data_setting(cfg, key: str, default=None):
    """A data setting of the config's test dataset (top level as fallback,
    for configs written before the settings moved into the dataset dicts)."""
    ds = cfg.get('test_dataloader', {}).get('dataset', {})
    if key in ds:
        return ds[key]
    return cfg.get(key, default)


def _plain(obj):
    if hasattr(obj, 'to_dict'):
        obj = obj.to_dict()
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    return obj


class RaICLInferencer:
    """Ra-ICL inference on a user's clips.

    Args:
        config: Config file path or a loaded ``mmengine.Config``.
        checkpoint: Checkpoint file (loaded with ``weights_only=True`` and the
            allow-list of :mod:`raicl_mm.compat`; refused when untrusted or
            when its weights do not match the model).
        device: ``'cpu'``, ``'cuda'``, ``'cuda:1'``; None = CUDA when
            available.
        cfg_options: Overrides as for ``--cfg-options`` (dotted keys).
        face_crop: Override ``flow_cfg.face_crop`` (None / ``'box'`` /
            ``'landmarks'`` / ``'haar'``); default: the config's.
        mode: ``'middle'`` (paper) or ``'ensemble'``; default: ``'ensemble'``
            when the config's test pipeline passes every instance, else
            ``'middle'``.
        target_fps: Resample every clip to this rate (needs the clip's rate:
            a video's own, or ``fps=`` per call); default: the config's
            ``sampling.target_fps``.
        trust_checkpoint: Opt in to a full unpickling of this checkpoint.
        allow_truncated: Score a video that decodes fewer (or more) frames
            than its container reports on the frames decoded, with a warning
            in ``frames_used['warnings']``; by default it is refused naming
            both counts.

    Example:
        >>> infer = RaICLInferencer('configs/raicl_cde.py', 'epoch_100.pth')
        >>> res = infer('my_clip.mp4')
        >>> res.label, res.scores
    """

    def __init__(self, config, checkpoint: str, device: Optional[str] = None,
                 cfg_options: Optional[dict] = None, face_crop=_UNSET,
                 mode: Optional[str] = None,
                 target_fps: Optional[float] = None,
                 trust_checkpoint: bool = False,
                 allow_truncated: bool = False):
        t0 = time.perf_counter()
        self.allow_truncated = bool(allow_truncated)
        import raicl_mm  # noqa: F401  (the stack fixes and registries)
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        from mmaction.registry import MODELS

        from raicl_mm.datasets.sampling import SamplingConfig
        from raicl_mm.flow import FlowConfig

        from raicl_mm.engine.cli import ToolError, load_checked_config
        from raicl_mm.engine.config import ConfigError
        try:
            # the checks every tool runs (a key that reaches nothing...)
            cfg = load_checked_config(
                config if isinstance(config, Config) else str(config), cfg_options)
        except (ToolError, ConfigError) as err:
            raise InferenceError(f'{getattr(config, "filename", config)}: '
                                 f'{str(err).splitlines()[0]}') from None
        self.cfg = cfg
        flow = dict(_plain(_data_setting(cfg, 'flow_cfg') or {}))
        if face_crop is not _UNSET:
            flow['face_crop'] = None if face_crop in (None, 'none') \
                else face_crop
        sampling = dict(_plain(_data_setting(cfg, 'sampling') or {}))
        if target_fps is not None:
            sampling['target_fps'] = float(target_fps)
        try:
            self.flow_cfg = FlowConfig(**flow)
            self.sampling = SamplingConfig(**sampling)
        except (TypeError, ValueError) as err:
            raise InferenceError(f'{getattr(config, "filename", config)}: '
                                 f'{err}') from err
        self.pipeline = list(_plain(_data_setting(cfg, 'pipeline') or []))
        if mode is None:
            mode = 'ensemble' if any(
                s.get('type', '').endswith('SampleInstancePair')
                and s.get('ensemble') for s in self.pipeline) else 'middle'
        if mode not in MODES:
            raise InferenceError(f'mode={mode!r} is unknown; valid: {MODES}')
        self.mode = mode
        if device is None:
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        self.device = torch.device(device)

        init_default_scope(cfg.get('default_scope', 'mmaction'))
        try:
            model = MODELS.build(cfg.model)
        except (KeyError, TypeError, ValueError) as err:
            raise InferenceError(f'{getattr(cfg, "filename", config)}: the '
                                 f'model cannot be built: '
                                 f'{str(err).splitlines()[0]}') from err
        meta = self._load_weights(model, checkpoint, trust_checkpoint)
        # A checkpoint trained on synthetic data only says so on real frames.
        from ..engine.provenance import warn_if_synthetic
        warn_if_synthetic(meta, checkpoint)
        self.model = model.to(self.device).eval()
        self.classes = self._classes(cfg, meta)
        if len(self.classes) != getattr(model, 'num_classes',
                                        len(self.classes)):
            raise InferenceError(f'{checkpoint}: {len(self.classes)} class '
                                 f'names for a model of {model.num_classes} '
                                 'classes')
        self.checkpoint = checkpoint
        self.load_time = time.perf_counter() - t0

    # ---------------------------------------------------------------- setup
    @staticmethod
    def _load_weights(model, checkpoint: str, trust: bool) -> dict:
        """The project's checkpoint policy: weights-only loading with the
        allow-list, refused (one line) when untrusted or when the weights do
        not fit the config's model (:func:`raicl_mm.engine.checkpoint.
        load_checked`, strict: inference never runs a partly random model)."""
        from raicl_mm import compat
        from raicl_mm.engine.checkpoint import load_checked
        if trust:
            compat.trust_checkpoint(checkpoint)
        try:
            ckpt = load_checked(model, checkpoint, map_location='cpu')
        except (OSError, ValueError, RuntimeError) as err:
            raise InferenceError(str(err).splitlines()[0]) from err
        return ckpt.get('meta') or {}

    @staticmethod
    def _classes(cfg, meta: dict) -> List[str]:
        ds_meta = meta.get('dataset_meta') or {}
        if ds_meta.get('classes'):
            return [str(c) for c in ds_meta['classes']]
        protocol = _data_setting(cfg, 'protocol')
        from raicl_mm.datasets.sources import get_classes
        try:
            return [str(c) for c in get_classes(protocol)]
        except (KeyError, ValueError, TypeError) as err:
            raise InferenceError(f'no class names: the checkpoint has no '
                                 f'dataset_meta and protocol={protocol!r} '
                                 f'gives none ({err})') from err

    # ----------------------------------------------------------------- call
    def __call__(self, inputs, onset: Optional[int] = None,
                 offset: Optional[int] = None, mode: Optional[str] = None,
                 fps: Optional[float] = None
                 ) -> Union[InferenceResult, List[InferenceResult]]:
        """Predict one clip, or each clip of a list of paths.

        Args:
            inputs: A path (folder / video), an array of frames, or a list of
                paths.
            onset: 0-based index of the onset frame (default: the first).
            offset: 0-based index of the offset frame (default: the last).
            mode: ``'middle'`` / ``'ensemble'``; default: the inferencer's.
            fps: The clip's frame rate when the input does not carry one.

        Returns:
            An :class:`InferenceResult`, or a list of them for a list of
            paths.
        """
        if isinstance(inputs, (list, tuple)) and inputs and all(
                isinstance(i, (str, os.PathLike)) for i in inputs):
            return [self.predict_clip(i, onset, offset, mode, fps)
                    for i in inputs]
        return self.predict_clip(inputs, onset, offset, mode, fps)

    def _select(self, frame_numbers, fps, name: str = 'input') -> List[int]:
        """The positions (indices from the onset) of the instance set of a
        clip with these frame numbers and rate, before any frame is decoded."""
        from raicl_mm.datasets.records import ClipRecord
        from raicl_mm.datasets.sampling import clip_positions
        rec = ClipRecord(dataset='user', subject='user', clip_id=str(name), label='',
                         onset=int(frame_numbers[0]), apex=None,
                         offset=int(frame_numbers[-1]),
                         frame_paths=[f'{name}#{n}' for n in frame_numbers],
                         frame_numbers=list(frame_numbers), fps=float(fps or 0.0))
        try:
            return [int(p) for p in clip_positions(rec, self.sampling)]
        except ValueError as err:
            raise InferenceError(f'{name}: {err}') from err

    def _instances(self, clip: ClipInput):
        """Alignment on the onset, MIR positions, instances (Eq. 1-2)."""
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
                     else self._select(clip.frame_numbers, clip.fps, clip.name))
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

    def model_inputs(self, instances: np.ndarray) -> torch.Tensor:
        """``(N, H, W, 3)`` instances -> ``(N, 3, H, W)`` model inputs: the
        test pipeline's steps after instance selection (normalisation,
        formatting) and the model's data preprocessor."""
        from mmaction.registry import TRANSFORMS
        results = dict(imgs=np.asarray(instances, dtype=np.float32),
                       instances=np.asarray(instances, dtype=np.float32))
        for step in self.pipeline:
            kind = step.get('type', '').split('.')[-1]
            if kind in ('SampleInstancePair', 'PackActionInputs',
                        'FormatInstances'):
                continue
            results = TRANSFORMS.build(dict(step)).transform(results)
        x = np.ascontiguousarray(results['imgs'].transpose(0, 3, 1, 2),
                                 dtype=np.float32)
        data = self.model.data_preprocessor(
            dict(inputs=[torch.from_numpy(x)]), training=False)
        return data['inputs'][0]

    @torch.no_grad()
    def predict_clip(self, source, onset: Optional[int] = None,
                     offset: Optional[int] = None, mode: Optional[str] = None,
                     fps: Optional[float] = None) -> InferenceResult:
        """Predict one clip; see :meth:`__call__`."""
        mode = mode or self.mode
        if mode not in MODES:
            raise InferenceError(f'mode={mode!r} is unknown; valid: {MODES}')
        t0 = time.perf_counter()
        # only the onset and the instances' frames are decoded and kept
        name = (os.fspath(source) if isinstance(source, (str, os.PathLike))
                else 'array')
        clip = read_clip(source, onset, offset, fps,
                         select=lambda numbers, rate: self._select(numbers, rate, name),
                         allow_truncated=self.allow_truncated)
        t_decode = time.perf_counter() - t0
        align, onset_img, frames, positions, inst, t_align, t_flow = \
            self._instances(clip)
        t = time.perf_counter()
        x = self.model_inputs(inst)
        per = self.model.instance_scores(x[None].to(self.device))[0]
        mid = len(positions) // 2  # the test pipeline's middle instance
        scores = per[mid] if mode == 'middle' else per.mean(dim=0)
        per = per.cpu().numpy().astype(np.float64)
        scores = scores.cpu().numpy().astype(np.float64)
        t_pred = time.perf_counter() - t
        classes = self.classes
        instances = [dict(frame=int(clip.frame_numbers[p]),
                          label=classes[int(s.argmax())],
                          scores={c: float(v) for c, v in zip(classes, s)})
                     for p, s in zip(positions, per)]
        face_info = align.to_dict()
        frames_used = dict(
            onset=int(clip.frame_numbers[0]),
            offset=int(clip.frame_numbers[-1]), frames_read=len(clip.frames),
            fps=clip.fps, target_fps=self.sampling.target_fps,
            instance_frames=[int(clip.frame_numbers[p]) for p in positions],
            middle_frame=int(clip.frame_numbers[positions[mid]]),
            frame_size=[int(clip.size[1]), int(clip.size[0])],
            frames_kept=len(list(clip.frames)), warnings=list(clip.warnings))
        timings = dict(decode=t_decode, align=t_align, flow=t_flow,
                       predict=t_pred, total=time.perf_counter() - t0)
        return InferenceResult(
            input=clip.name, label=classes[int(scores.argmax())],
            scores={c: float(v) for c, v in zip(classes, scores)}, mode=mode,
            instances=instances, face=face_info, frames_used=frames_used,
            timings=timings, aligned_onset=onset_img,
            aligned_frames=np.stack(frames), flows=inst,
            model_inputs=x)

    # -------------------------------------------------------------- picture
    def cam_picture(self, result: InferenceResult, tile: int = 96
                    ) -> np.ndarray:
        """Per instance: the aligned frame, its flow colour map and the CAM
        of the predicted class over the aligned face (BGR uint8)."""
        from raicl_mm.visualization.cam import cam_maps, instance_strip
        cls = self.classes.index(result.label)
        heats = cam_maps(self.model, result.model_inputs.to(self.device), cls)
        titles = [f'#{d["frame"]} {d["label"][:3]}' for d in result.instances]
        header = (f'{osp.basename(result.input)}  {result.mode}: '
                  f'{result.label} {result.scores[result.label]:.2f}')
        return instance_strip(result.flows, {'CAM': heats}, titles,
                              header=header, tile=tile,
                              frames=result.aligned_frames)


def init_inferencer(config, checkpoint: str, device: Optional[str] = None,
                    **kwargs) -> RaICLInferencer:
    """mmaction2-style shortcut: ``init_recognizer`` for Ra-ICL."""
    return RaICLInferencer(config, checkpoint, device=device, **kwargs)
