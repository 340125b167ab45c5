"""Pipeline transforms for MIR instance sets.

The random branch transforms T_theta / T_xi (colour jitter, blur, the target's
certain flip) run on the device inside the recognizer
(:mod:`raicl_mm.models.augment`); the pipeline only picks instances, normalises
them and formats them for ``PackActionInputs``. :class:`FlowFlip` is the same
flow-aware mirror for pipelines that want it on the CPU (e.g. test-time flip).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform


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
