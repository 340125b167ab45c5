"""Batching of instance tensors for the recognizer."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from mmaction.models import ActionDataPreprocessor
from mmaction.registry import MODELS


@MODELS.register_module()
class InstanceDataPreprocessor(ActionDataPreprocessor):
    """mmaction2's ``ActionDataPreprocessor`` for sets of flow instances.

    The parent does the job it does for images: it stacks the samples
    (``stack_batch``), moves them to the device, casts to float32 and
    subtracts ``mean`` / divides by ``std`` per channel (``format_shape
    'NCHW'``: the per-channel statistics broadcast over the leading view axis
    too). What it cannot know is that each sample is a set of V instances
    ``(V, 3, H, W)`` of ``[u, v, strain]`` (no BGR->RGB swap, no blending: a
    mixed flow field is not a flow field), so this class only adds the view
    axis for one-instance samples, checks the shape, and optionally returns
    the channels-last memory format (faster convolutions on GPU).

    Args:
        mean: Per-channel value subtracted ([u, v, strain]); None = 0.
        std: Per-channel divisor; None = 1.
        channels_last: Return the inputs in channels-last memory format.

    Returns (``forward``):
        ``dict(inputs=(B, V, 3, H, W) float32, data_samples=...)``.
    """

    def __init__(self, mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 channels_last: bool = False):
        if (mean is None) != (std is None):
            # the parent normalises only with both; one alone means 0 / 1
            mean = mean if mean is not None else [0., 0., 0.]
            std = std if std is not None else [1., 1., 1.]
        super().__init__(mean=mean, std=std, to_rgb=False, to_float32=True,
                         blending=None, format_shape='NCHW')
        self.channels_last = channels_last

    def forward(self, data: dict, training: bool = False) -> dict:
        data = dict(data)
        data.setdefault('data_samples', None)
        return super().forward(data, training)

    def preprocess(self, inputs, data_samples, training: bool = False):
        if isinstance(inputs, (list, tuple)):
            shapes = {tuple(x.shape) for x in inputs}
            if len(shapes) > 1:
                raise ValueError('instance sets of one batch differ in shape: '
                                 f'{sorted(shapes)}')
            bad = [s for s in shapes if len(s) not in (3, 4) or s[-3] != 3]
            if bad:
                raise ValueError('expected instances of shape (V, 3, H, W) '
                                 f'or (3, H, W) per sample, got {bad[0]}')
        batch, data_samples = super().preprocess(inputs, data_samples,
                                                 training)
        if batch.dim() == 4:  # (B, 3, H, W): one instance per sample
            batch = batch[:, None]
        if batch.dim() != 5 or batch.shape[2] != 3:
            raise ValueError('expected instances of shape (B, V, 3, H, W), '
                             f'got {tuple(batch.shape)}')
        batch = batch.float()
        if self.channels_last:
            b, v = batch.shape[:2]
            batch = batch.flatten(0, 1).contiguous(
                memory_format=torch.channels_last).unflatten(0, (b, v))
        return batch, data_samples
