"""The random transforms T_theta / T_xi of the two branches, on the device.

They run on batched tensors inside the model (after the data preprocessor), so
training pays no CPU cost for augmentation and the target branch's flip is a
fact the model knows, which it needs in order to flip the target's CAM and
heat maps back (Eq. 6, Eq. 9-10).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn as nn
from torchvision.transforms.v2 import functional as TF


def hflip(x: torch.Tensor, flow_aware: bool = True) -> torch.Tensor:
    """Mirror flow instances [u, v, strain] left-right, (B, 3, H, W).

    A mirrored flow field moves the other way: with ``flow_aware`` the
    horizontal component u (channel 0) is negated as well; v and the strain (a
    magnitude) are unchanged. ``flow_aware=False`` is the plain image flip that
    treats the instance as an RGB-like picture (kept for comparison).
    """
    out = x.flip(-1)
    if flow_aware:
        out = torch.cat([-out[:, :1], out[:, 1:]], dim=1)
    return out


def flip_back(maps: torch.Tensor) -> torch.Tensor:
    """Undo a horizontal flip on spatial maps (CAMs, heat maps): a pure mirror."""
    return maps.flip(-1)


class BranchAugment(nn.Module):
    """Colour jitter + Gaussian blur (+ an optional certain flip) of one branch.

    Colour jitter for flow means a random per-sample, per-channel gain (like
    brightness/contrast jitter on an RGB image); blur is torchvision's Gaussian
    blur applied to a random subset of the batch.

    Args:
        jitter: Gains are drawn from U(1 - jitter, 1 + jitter); 0 disables.
        blur_prob: Probability that a sample is blurred.
        blur_sigma: Range of the blur's sigma in pixels.
        blur_kernel: Kernel size (odd).
        flip: Always mirror (T_xi of the paper performs "a certain horizontal
            flipping").
        flow_aware_flip: Negate u when mirroring (see :func:`hflip`).
    """

    def __init__(self, jitter: float = 0.2, blur_prob: float = 0.5,
                 blur_sigma: Sequence[float] = (0.1, 1.0),
                 blur_kernel: int = 5, flip: bool = False,
                 flow_aware_flip: bool = True):
        super().__init__()
        if blur_kernel % 2 == 0:
            raise ValueError(f'blur_kernel must be odd, got {blur_kernel}')
        self.jitter = jitter
        self.blur_prob = blur_prob
        self.blur_sigma = tuple(blur_sigma)
        self.blur_kernel = blur_kernel
        self.flip = flip
        self.flow_aware_flip = flow_aware_flip
        self.generator: Optional[torch.Generator] = None

    def reseed(self, seed: int) -> None:
        """Draw from a private CPU stream seeded with ``seed`` from now on.

        The draws are a few numbers per batch, made on the CPU and moved to
        the input's device, so the stream is the same on CPU and CUDA and
        independent of every other consumer of torch's global stream (the
        recognizer seeds one per branch: paired runs see the same draws).
        """
        self.generator = torch.Generator().manual_seed(int(seed))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.generator
        if self.jitter > 0:
            gain = torch.empty(x.shape[0], x.shape[1], 1, 1).uniform_(
                1 - self.jitter, 1 + self.jitter, generator=g)
            x = x * gain.to(device=x.device, dtype=x.dtype)
        if self.blur_prob > 0:
            pick = (torch.rand(x.shape[0], generator=g)
                    < self.blur_prob).to(x.device)
            if pick.any():
                lo, hi = self.blur_sigma
                sigma = float(torch.empty(1).uniform_(lo, hi, generator=g))
                blurred = TF.gaussian_blur(x[pick], [self.blur_kernel] * 2,
                                           [sigma, sigma])
                x = x.clone()
                x[pick] = blurred.to(x.dtype)  # autocast: blur may run in bf16
        if self.flip:
            x = hflip(x, self.flow_aware_flip)
        return x
