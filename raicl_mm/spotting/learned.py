"""A learned spotter: a per-frame score on window flows (SOFTNet-like).

SOFTNet (Liong et al., "Shallow optical flow three-stream CNN for macro- and
micro-expression spotting from long videos", ICIP 2021;
genbing99/SoftNet-SpotME) regresses a per-frame spotting confidence from the
optical flow of each frame to the frame ``k`` later, trained on soft
pseudo-labels, then smooths the curve and cuts intervals at its peaks. Here:

* **input** of frame ``t``: the pooled window-flow maps of
  :mod:`raicl_mm.spotting.features` at both scales, ``[F_hc, F_ht]`` of the
  micro and of the macro window (``8 x m x m``, median-free, so global head
  motion is already removed);
* **model**: a shallow per-frame CNN (two conv blocks) followed by a temporal
  1-D convolution over the video, two outputs (micro, macro) through a
  sigmoid (:class:`FlowScoreNet`);
* **targets** (soft pseudo-labels, as SOFTNet's): for type ``c`` and frame
  ``t``, the largest IoU of the window ``[t - k_c, t + k_c]`` with a
  ground-truth interval of type ``c`` (0 away from every interval);
* **loss**: binary cross-entropy against the soft targets; Adam; whole videos
  as sequences (a video is one batch element);
* **spotting**: the curves go through :mod:`raicl_mm.spotting.peaks` exactly
  as the baseline's motion does; ``p`` is chosen per type on the training
  videos' own curves.

Blinks are never labelled, talking and head motion neither: the network must
learn to ignore them, which is what the training-free signal cannot do.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from .baseline import TYPES, _SpotterBase
from .features import VideoFeatures
from .registry import SPOTTERS


class FlowScoreNet(nn.Module):
    """Per-frame CNN on ``(C, m, m)`` flow maps, then a temporal conv, 2 scores."""

    def __init__(self, in_channels: int = 8, width: int = 16, embed: int = 48,
                 temporal_kernel: int = 5):
        super().__init__()
        self.frame = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(8 * width, embed), nn.ReLU())
        pad = temporal_kernel // 2
        self.temporal = nn.Sequential(
            nn.Conv1d(embed, embed, temporal_kernel, padding=pad), nn.ReLU(),
            nn.Conv1d(embed, len(TYPES), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(T, C, m, m)`` -> ``(T, 2)`` logits."""
        e = self.frame(x)                       # (T, E)
        return self.temporal(e.t()[None])[0].t()  # (T, 2)


def frame_inputs(feats: VideoFeatures) -> np.ndarray:
    """``(T, 8, m, m)`` float32: micro then macro ``[F_hc, F_ht]`` maps."""
    parts = []
    for t in TYPES:
        m = feats.maps.get(t)
        if m is None:
            raise ValueError('the learned spotter needs flow maps: extract the '
                             'features with WindowFlowConfig.map_size > 0')
        parts.append(np.asarray(m, dtype=np.float32))
    return np.concatenate(parts, axis=1)


def soft_targets(feats: VideoFeatures, gts: Sequence[Dict]) -> np.ndarray:
    """``(T, 2)``: max IoU of ``[t - k, t + k]`` with a ground truth of each type."""
    T = feats.num_frames
    y = np.zeros((T, len(TYPES)), np.float32)
    for c, kind in enumerate(TYPES):
        k = feats.k[kind]
        t = np.arange(T)
        lo, hi = t - k, t + k
        for g in gts:
            if g['type'] != kind:
                continue
            inter = np.minimum(hi, g['offset']) - np.maximum(lo, g['onset']) + 1
            inter = np.clip(inter, 0, None)
            union = (2 * k + 1) + (g['offset'] - g['onset'] + 1) - inter
            y[:, c] = np.maximum(y[:, c], inter / union)
    return y


@SPOTTERS.register_module()
class LearnedFlowSpotter(_SpotterBase):
    """SOFTNet-like learned spotter (see the module docstring).

    Args:
        epochs: Passes over the training videos.
        lr: Adam learning rate.
        width: Channels of the first conv block.
        chunk: Training crops of this many frames (random position) per video
            and step, so a step is cheap; inference runs on whole videos.
        p / tune_p / p_grid / suppress_micro_in_macro: As
            :class:`~raicl_mm.spotting.baseline.FlowPeakSpotter`.
        device: Torch device (``'cpu'``).
    """

    name = 'learned'

    def __init__(self, epochs: int = 30, lr: float = 2e-3, width: int = 16,
                 chunk: int = 256, weight_decay: float = 1e-4, device: str = 'cpu',
                 **kwargs):
        super().__init__(**kwargs)
        self.epochs = int(epochs)
        self.lr = float(lr)
        self.width = int(width)
        self.chunk = int(chunk)
        self.weight_decay = float(weight_decay)
        self.device = torch.device(device)
        self.model: Optional[FlowScoreNet] = None
        self.history: List[float] = []
        self.scale = 1.0

    # ------------------------------------------------------------ training
    def fit(self, videos: Sequence[Tuple[VideoFeatures, List[Dict]]], seed: int = 0
            ) -> 'LearnedFlowSpotter':
        """Train on (features, ground-truth indices) pairs, then tune ``p``."""
        torch.manual_seed(int(seed))
        rng = np.random.default_rng(int(seed))
        data = [(frame_inputs(f), soft_targets(f, g)) for f, g in videos]
        # One global scale for the flow maps (robust: the 99th percentile).
        allx = np.concatenate([np.abs(x).reshape(-1) for x, _ in data])
        self.scale = float(np.percentile(allx, 99)) or 1.0
        self.model = FlowScoreNet(data[0][0].shape[1], self.width).to(self.device)
        opt = torch.optim.Adam(self.model.parameters(), lr=self.lr,
                               weight_decay=self.weight_decay)
        pos = np.concatenate([y for _, y in data]).mean(0)
        # Positives are rare: weight them up to balance the classes' mass.
        pw = torch.tensor(np.clip((1 - pos) / np.maximum(pos, 1e-3), 1, 20),
                          dtype=torch.float32, device=self.device)
        self.history = []
        self.model.train()
        for _ in range(self.epochs):
            order = rng.permutation(len(data))
            total = 0.0
            for i in order:
                x, y = data[i]
                T = len(x)
                if T > self.chunk:
                    s = int(rng.integers(0, T - self.chunk + 1))
                    x, y = x[s:s + self.chunk], y[s:s + self.chunk]
                xt = torch.from_numpy(x / self.scale).to(self.device)
                if rng.uniform() < 0.5:  # a mirrored face: u flips sign, maps flip
                    xt = torch.flip(xt, dims=[3]).clone()
                    xt[:, 0::2] = -xt[:, 0::2]
                yt = torch.from_numpy(y).to(self.device)
                logits = self.model(xt)
                w = 1 + (pw - 1) * yt
                loss = nn.functional.binary_cross_entropy_with_logits(logits, yt, weight=w)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach())
            self.history.append(total / max(1, len(data)))
        self.model.eval()
        if self.tune_p and videos:
            self.tune(videos)
        return self

    # ------------------------------------------------------------ inference
    @torch.no_grad()
    def curves(self, feats: VideoFeatures) -> Dict[str, np.ndarray]:
        if self.model is None:
            raise RuntimeError('LearnedFlowSpotter: call fit() (or load_state()) first')
        x = torch.from_numpy(frame_inputs(feats) / self.scale).to(self.device)
        s = torch.sigmoid(self.model(x)).cpu().numpy().astype(np.float64)
        return {t: s[:, c] for c, t in enumerate(TYPES)}

    def state(self) -> Dict:
        """What :meth:`load_state` needs (weights, scale, p)."""
        return dict(model=self.model.state_dict(), scale=self.scale, p=dict(self.p),
                    width=self.width)

    def load_state(self, state: Dict, in_channels: int = 8) -> 'LearnedFlowSpotter':
        self.width = int(state.get('width', self.width))
        self.model = FlowScoreNet(in_channels, self.width).to(self.device)
        self.model.load_state_dict(state['model'])
        self.model.eval()
        self.scale = float(state['scale'])
        self.p = dict(state['p'])
        return self
