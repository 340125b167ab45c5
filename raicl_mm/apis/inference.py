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

import os
import os.path as osp
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

import numpy as np
import torch

from ..datasets.user_clip import (IMAGE_EXTS, VIDEO_EXTS, ClipInput,  # noqa: F401
                                  ClipSteps, FrameStore, InferenceError,
                                  read_clip)

MODES = ('middle', 'ensemble')
_UNSET = object()


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
        """The positions of a clip's instance set (:meth:`ClipSteps.select`)."""
        return ClipSteps(self.flow_cfg, self.sampling).select(frame_numbers, fps, name)

    def _instances(self, clip: ClipInput):
        """Alignment, MIR positions, instances (:meth:`ClipSteps.instances`)."""
        return ClipSteps(self.flow_cfg, self.sampling).instances(clip)

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
        clip = ClipSteps(self.flow_cfg, self.sampling).read(
            source, onset, offset, fps, allow_truncated=self.allow_truncated)
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
