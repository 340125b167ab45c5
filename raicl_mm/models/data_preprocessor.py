"""Batching of instance tensors for the recognizer."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from mmaction.registry import MODELS
from mmengine.model import BaseDataPreprocessor


@MODELS.register_module()
class InstanceDataPreprocessor(BaseDataPreprocessor):
    """Stack per-sample instance tensors (V, 3, H, W) into (B, V, 3, H, W).

    mmaction2's ActionDataPreprocessor assumes RGB clips in uint8 and a
    ``format_shape``; flow instances are float maps with a view axis, so this
    one only stacks, moves to the device, optionally scales per channel and
    optionally uses the channels-last memory format (faster convs on GPU).

    Args:
        mean: Per-channel value subtracted ([u, v, strain]); None = 0.
        std: Per-channel divisor; None = 1.
        channels_last: Return the inputs in channels-last memory format.
    """

    def __init__(self, mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 channels_last: bool = False):
        super().__init__()
        self.channels_last = channels_last
        self.register_buffer(
            'mean', torch.tensor(mean if mean is not None else [0., 0., 0.],
                                 dtype=torch.float32).view(1, 1, 3, 1, 1),
            persistent=False)
        self.register_buffer(
            'std', torch.tensor(std if std is not None else [1., 1., 1.],
                                dtype=torch.float32).view(1, 1, 3, 1, 1),
            persistent=False)

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs = data['inputs']
        if isinstance(inputs, (list, tuple)):
            inputs = torch.stack(list(inputs))
        if inputs.dim() == 4:  # (B, 3, H, W): one instance per sample
            inputs = inputs[:, None]
        if inputs.dim() != 5 or inputs.shape[2] != 3:
            raise ValueError('expected instances of shape (B, V, 3, H, W), '
                             f'got {tuple(inputs.shape)}')
        inputs = (inputs.float() - self.mean) / self.std
        if self.channels_last:
            b, v = inputs.shape[:2]
            inputs = inputs.flatten(0, 1).contiguous(
                memory_format=torch.channels_last).unflatten(0, (b, v))
        return dict(inputs=inputs, data_samples=data.get('data_samples'))
