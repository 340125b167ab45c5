"""Pipeline transforms for MIR instance sets.

The random branch transforms T_theta / T_xi (colour jitter, blur, the target's
certain flip) run on the device inside the recognizer
(:mod:`raicl_mm.models.augment`); the pipeline only picks instances, normalises
them and formats them for ``PackActionInputs``. :class:`FlowFlip` is the same
flow-aware mirror for pipelines that want it on the CPU (e.g. test-time flip).

:class:`ClipInstances` heads the test pipeline so that mmaction2's own
inference API (``inference_recognizer``, ``ActionRecogInferencer``,
``MMAction2Inferencer``) can start from a video or a frame folder: when the
dataset already gave ``instances`` it does nothing, otherwise it decodes the
clip and computes the onset->frame instances exactly as
:class:`raicl_mm.apis.RaICLInferencer` does.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Dict, List, Optional

import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform


def _settings(value) -> dict:
    if value is None:
        return {}
    if hasattr(value, 'to_dict'):
        value = value.to_dict()
    return {k: (tuple(v) if isinstance(v, list) else v)
            for k, v in dict(value).items()}


@TRANSFORMS.register_module()
class ClipInstances(BaseTransform):
    """A raw clip -> its MIR instance set, when the sample has none yet.

    The datasets give every sample its ``instances`` (from the flow cache) and
    this step passes them through. mmaction2's inference API gives a path or
    frames instead; then this step decodes the clip (the first frame is the
    onset, the last the offset), aligns the face on the onset, picks the MIR
    positions and computes the ``[u, v, strain]`` instances, with the steps
    and settings of :class:`raicl_mm.apis.RaICLInferencer` (its code, not a
    copy), so both give the same scores. What it reads, first found wins:

    * ``filename`` (``inference_recognizer(model, path)``,
      ``ActionRecogInferencer(input_format='video')``): a video file or a
      folder of frames;
    * ``frame_dir`` (``input_format='rawframes'``): a folder of frames;
    * ``array`` (``input_format='array'``) or ``imgs``: ``(T, H, W, 3)`` RGB
      frames (mmaction2's decoders give RGB) or ``(T, H, W)`` grey;
    * ``video_reader`` (decord, after ``DecordInit``): every frame.

    The name holds neither ``Init`` nor ``Decode``, which mmaction2's
    inferencer would replace.

    Args:
        flow_cfg: ``flow_cfg`` of the test dataset (a dict of
            :class:`raicl_mm.flow.FlowConfig`; None = its defaults). Must
            match the dataset's, which :func:`inference_settings_mismatch`
            checks.
        sampling: ``sampling`` of the test dataset (a dict of
            :class:`raicl_mm.datasets.sampling.SamplingConfig`).
        fps: Frame rate of a frame folder or array (a video's own is used);
            needed only with ``sampling.target_fps``.
    """

    def __init__(self, flow_cfg: Optional[dict] = None,
                 sampling: Optional[dict] = None,
                 fps: Optional[float] = None):
        from raicl_mm.datasets.sampling import SamplingConfig
        from raicl_mm.flow import FlowConfig
        self.flow_cfg = FlowConfig(**_settings(flow_cfg))
        self.sampling = SamplingConfig(**_settings(sampling))
        self.fps = fps

    @staticmethod
    def _source(results: dict):
        name = results.get('filename')
        if isinstance(name, (str, os.PathLike)) and osp.exists(name):
            return os.fspath(name), False
        folder = results.get('frame_dir')
        if isinstance(folder, (str, os.PathLike)) and osp.isdir(folder):
            return os.fspath(folder), False
        for key in ('array', 'imgs'):
            if results.get(key) is not None:
                return np.asarray(results[key]), True
        reader = results.get('video_reader')
        if reader is not None:
            frames = reader.get_batch(list(range(len(reader)))).asnumpy()
            return np.asarray(frames), True
        raise KeyError(
            "ClipInstances: the sample has no 'instances' and nothing to "
            "compute them from (one of 'filename', 'frame_dir', 'array', "
            f"'imgs', 'video_reader'); its keys: {sorted(results)}")

    def transform(self, results: dict) -> dict:
        if results.get('instances') is not None:
            return results
        source, rgb = self._source(results)
        if rgb and source.ndim == 4 and source.shape[-1] == 3:
            source = np.ascontiguousarray(source[..., ::-1])  # RGB -> BGR
        positions, numbers, inst = self._compute(source)
        results['instances'] = inst
        results['frame_numbers'] = [int(numbers[p]) for p in positions]
        results.setdefault('sample_id', source if isinstance(source, str)
                           else 'array')
        return results

    def _compute(self, source):
        """(positions, frame numbers, instances) of a clip, by the decoding,
        selection and flow steps that :class:`RaICLInferencer` runs
        (:class:`raicl_mm.datasets.user_clip.ClipSteps`)."""
        from .user_clip import ClipSteps
        steps = ClipSteps(self.flow_cfg, self.sampling)
        clip = steps.read(source, None, None, self.fps, allow_truncated=False)
        positions, inst = steps.instances(clip)[3:5]
        return positions, list(clip.frame_numbers), inst

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(flow_cfg={self.flow_cfg}, '
                f'sampling={self.sampling}, fps={self.fps})')


def inference_settings_mismatch(cfg) -> List[str]:
    """Where the test pipelines' :class:`ClipInstances` settings differ from
    the test dataset's ``flow_cfg`` / ``sampling`` (then mmaction2's inference
    API would compute other instances than the model was scored on).

    Returns:
        One line per difference (empty: consistent, or no such step).
    """
    from raicl_mm.datasets.sampling import SamplingConfig
    from raicl_mm.flow import FlowConfig
    ds = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    want: Dict[str, object] = dict(
        flow_cfg=FlowConfig(**_settings(ds.get('flow_cfg'))),
        sampling=SamplingConfig(**_settings(ds.get('sampling'))))
    out = []
    for where, pipeline in (('test_pipeline', cfg.get('test_pipeline')),
                            ('test_dataloader.dataset.pipeline',
                             ds.get('pipeline'))):
        for step in pipeline or []:
            if str(step.get('type', '')).split('.')[-1] != 'ClipInstances':
                continue
            got = dict(flow_cfg=FlowConfig(**_settings(step.get('flow_cfg'))),
                       sampling=SamplingConfig(
                           **_settings(step.get('sampling'))))
            for key in ('flow_cfg', 'sampling'):
                a, b = vars(got[key]), vars(want[key])
                diff = [f'{k}={a[k]!r} (dataset: {b[k]!r})' for k in a
                        if a[k] != b[k] and k != 'device']
                if diff:
                    out.append(f'{where} ClipInstances {key}: ' +
                               ', '.join(diff))
    return out


@TRANSFORMS.register_module()
class SampleInstancePair(BaseTransform):
    """Training: two distinct random instances (I_p, I_q) of a set; testing:
    the middle instance (paper A.1.3), or every instance (ensemble).

    A set with a single instance (a very short clip, or the Apex* strategy)
    gives that instance twice and sets ``single_instance=True`` so the run can
    count such pairs.

    Ensemble testing (the paper's future work, "multi-instance ensemble
    inference") passes all ``N`` instances as views; the recognizer averages
    the softmax over the views it gets (as mmaction2's
    ``average_clips='prob'`` does over clips). Sets of different sizes cannot
    be stacked into one batch, so ``pad_to`` pads a set with all-NaN views,
    which :meth:`RaICLRecognizer.predict` leaves out of the mean.

    Args:
        test_mode: Pick the middle instance (or all, see ``ensemble``)
            instead of a random pair.
        ensemble: With ``test_mode``: keep every instance of the set.
        pad_to: With ``ensemble``: pad the set to this many views with NaN
            views (a set larger than ``pad_to`` is an error naming the
            sample); None = no padding (batch size 1, or sets of one size).
    """

    def __init__(self, test_mode: bool = False, ensemble: bool = False,
                 pad_to: Optional[int] = None):
        if ensemble and not test_mode:
            raise ValueError('SampleInstancePair: ensemble=True is a test '
                             'mode; set test_mode=True')
        if pad_to is not None and int(pad_to) < 1:
            raise ValueError(f'SampleInstancePair: pad_to must be >= 1, got '
                             f'{pad_to}')
        self.test_mode = test_mode
        self.ensemble = ensemble
        self.pad_to = None if pad_to is None else int(pad_to)

    def transform(self, results: dict) -> dict:
        if results.get('instances') is None:
            raise KeyError(
                f"SampleInstancePair: sample {results.get('sample_id', '?')} "
                "has no 'instances'; put ClipInstances first in the pipeline "
                "to compute them from a video or a frame folder (mmaction2's "
                'inference_recognizer and inferencers)')
        inst = results['instances']
        n = inst.shape[0]
        if n == 0:
            raise ValueError(f"{results.get('sample_id')}: empty instance set")
        if self.test_mode and self.ensemble:
            idx = list(range(n))
        elif self.test_mode:
            idx = [n // 2]  # positions are sorted: the middle instance
        elif n == 1:
            idx = [0, 0]
        else:
            idx = list(np.random.choice(n, size=2, replace=False))
        results['single_instance'] = (not self.test_mode) and n == 1
        results['instance_idx'] = idx
        imgs = inst[idx].astype(np.float32)
        if self.test_mode and self.ensemble and self.pad_to is not None:
            if n > self.pad_to:
                raise ValueError(f"{results.get('sample_id')}: {n} instances "
                                 f'exceed SampleInstancePair pad_to='
                                 f'{self.pad_to}')
            pad = np.full((self.pad_to - n, ) + imgs.shape[1:], np.nan,
                          np.float32)
            imgs = np.concatenate([imgs, pad])
        results['imgs'] = imgs
        return results


@TRANSFORMS.register_module()
class FlowNormalize(BaseTransform):
    """Per-instance normalisation of [u, v, strain] (a config choice).

    Args:
        mode: ``'none'``; ``'standardize'`` (each channel of each instance to
            zero mean, unit std); ``'max_abs'`` (u, v divided by the largest
            flow magnitude of the instance, strain by its maximum: keeps the
            direction pattern, drops the intensity).
        floor: Smallest scale a channel is divided by (pixels for u, v; the
            strain's own unit): an instance with no motion above ``floor`` is
            scaled as if it had ``floor`` and so stays near zero, instead of
            blowing sensor-level residue (e.g. one pixel of 1e-4 px) up to
            the size of a real expression. 0 restores the unguarded scaling.
        eps: Added to the scale (guards a division by zero when ``floor=0``).
    """

    MODES = ('none', 'standardize', 'max_abs')

    def __init__(self, mode: str = 'none', floor: float = 1e-2,
                 eps: float = 1e-6):
        if mode not in self.MODES:
            raise ValueError(f'FlowNormalize: mode {mode!r} not in {self.MODES}')
        if not floor >= 0:
            raise ValueError(f'FlowNormalize: floor must be >= 0, got {floor!r}')
        self.mode = mode
        self.floor = float(floor)
        self.eps = eps

    def _scale(self, value: np.ndarray) -> np.ndarray:
        return np.maximum(value, self.floor) + self.eps

    def transform(self, results: dict) -> dict:
        x = results['imgs']
        if self.mode == 'standardize':
            mean = x.mean(axis=(1, 2), keepdims=True)
            std = x.std(axis=(1, 2), keepdims=True)
            x = (x - mean) / self._scale(std)
        elif self.mode == 'max_abs':
            mag = np.sqrt(x[..., 0] ** 2 + x[..., 1] ** 2)
            m = mag.reshape(len(x), -1).max(1)[:, None, None, None]
            s = x[..., 2:].reshape(len(x), -1).max(1)[:, None, None, None]
            x = np.concatenate([x[..., :2] / self._scale(m),
                                x[..., 2:] / self._scale(s)], axis=-1)
        results['imgs'] = x.astype(np.float32)
        return results


@TRANSFORMS.register_module()
class FlowFlip(BaseTransform):
    """Mirror instances left-right; ``flow_aware`` also negates u.

    Args:
        prob: Probability of flipping the whole sample.
        flow_aware: Negate the horizontal component (a mirrored motion moves
            the other way); False = plain image flip.
    """

    def __init__(self, prob: float = 0.5, flow_aware: bool = True):
        self.prob = prob
        self.flow_aware = flow_aware

    def transform(self, results: dict) -> dict:
        if np.random.rand() < self.prob:
            x = results['imgs'][:, :, ::-1].copy()
            if self.flow_aware:
                x[..., 0] = -x[..., 0]
            results['imgs'] = x
            results['flipped'] = True
        return results


@TRANSFORMS.register_module()
class FormatInstances(BaseTransform):
    """(V, H, W, 3) float instances -> contiguous (V, 3, H, W) float32."""

    def transform(self, results: dict) -> dict:
        results['imgs'] = np.ascontiguousarray(
            results['imgs'].transpose(0, 3, 1, 2), dtype=np.float32)
        return results
