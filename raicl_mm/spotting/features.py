"""Long video -> window flows: the motion signal both spotters read.

For a time scale ``k`` (frames; one for micro, one for macro expressions),
every centre frame ``t`` has a sliding window ``[t - k, t + k]`` whose head
frame ``HF = t - k`` is the window's onset. Two onset-relative flows are
computed with the project's flow code (:func:`raicl_mm.flow.tvl1.compute_flow`,
Farneback by default, TV-L1 on request):

* ``F_hc``: head -> centre, the motion the window has built up at ``t``;
* ``F_ht``: head -> tail (``t + k``), what is left at the window's end.

Each flow has its per-frame median removed (a global head translation moves
every pixel alike), and the window's motion is ``|F_hc - F_ht / 2|``, the
flow analogue of the feature-difference contrast of Moilanen et al. (ICPR
2014) used by the MEGC 2019/2020 baselines (the current frame against the
average of the head and tail frames): a transient expression, neutral at both
ends of the window, keeps its full size, a lasting change (a head that moved
and stays) is halved. Its mean over each facial region of interest (brows,
nose, mouth; the eyes are left out, as SOFTNet masks them against blinks) gives
one curve per region; the motion signal of a scale is the maximum over the
regions. The maps themselves, pooled to ``map_size``, are the learned
spotter's input.

:class:`WindowFlowExtractor` consumes frames one by one (a video is never
held in memory, only ``2k + 1`` frames of the largest scale).
"""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

#: Region boxes ``(x0, y0, x1, y1)`` as fractions of the face crop.
ROI_PRESETS: Dict[str, Dict[str, Tuple[float, float, float, float]]] = {
    # The synthetic faces (raicl_mm.synthetic): brows ~0.36, eyes ~0.45
    # (left out), nose tip ~0.63, mouth ~0.73 of the frame height.
    'synthetic': dict(brows=(0.15, 0.18, 0.85, 0.39), nose=(0.32, 0.48, 0.68, 0.68),
                      mouth=(0.18, 0.64, 0.82, 0.90)),
    # A landmark-aligned square crop (raicl_mm.flow.face, crop_margin 0.1):
    # brows ~0.1-0.25, eyes ~0.25-0.4 (left out), nose, mouth.
    'landmark_crop': dict(brows=(0.1, 0.02, 0.9, 0.24), nose=(0.3, 0.42, 0.7, 0.62),
                          mouth=(0.2, 0.62, 0.8, 0.92)),
}


@dataclass
class WindowFlowConfig:
    """Settings of the window flows.

    Attributes:
        method: ``'farneback'`` (default, fast) or ``'tvl1'`` /
            ``'tvl1_torch'`` (raicl_mm.flow).
        size: Frames are resized to ``(H, W)`` before the flow.
        half_window_s: Half window ``k`` of each scale in seconds; ``k`` in
            frames is ``max(1, round(half_window_s * fps))``.
        rois: Region preset name or a dict ``name -> (x0, y0, x1, y1)``.
        map_size: Side of the pooled flow maps kept for the learned spotter
            (0 = keep none).
    """

    method: str = 'farneback'
    size: Tuple[int, int] = (64, 64)
    half_window_s: Dict[str, float] = field(
        default_factory=lambda: dict(micro=0.17, macro=0.8))
    rois: object = 'synthetic'
    map_size: int = 16

    def k(self, fps: float) -> Dict[str, int]:
        return {s: max(1, int(round(h * fps))) for s, h in self.half_window_s.items()}

    def roi_boxes(self) -> Dict[str, Tuple[float, float, float, float]]:
        if isinstance(self.rois, str):
            if self.rois not in ROI_PRESETS:
                raise ValueError(f'rois={self.rois!r} unknown; choose from '
                                 f'{sorted(ROI_PRESETS)} or give boxes')
            return ROI_PRESETS[self.rois]
        return {k: tuple(v) for k, v in dict(self.rois).items()}


@dataclass
class VideoFeatures:
    """Per-frame motion of one video at every scale.

    ``signal[s]``: ``(T,)`` motion (max over regions), 0 where the window
    leaves the video; ``regions[s]``: ``(T, R)``; ``maps[s]``: ``(T, 4, m, m)``
    float16 pooled ``[F_hc, F_ht]`` maps (None when not kept).
    """

    fps: float
    num_frames: int
    k: Dict[str, int]
    signal: Dict[str, np.ndarray]
    regions: Dict[str, np.ndarray]
    region_names: List[str]
    maps: Dict[str, Optional[np.ndarray]]
    seconds: float = 0.0

    def to_npz(self, path: str) -> None:
        arrays = {}
        for s in self.k:
            arrays[f'signal_{s}'] = self.signal[s]
            arrays[f'regions_{s}'] = self.regions[s]
            if self.maps.get(s) is not None:
                arrays[f'maps_{s}'] = self.maps[s]
        np.savez_compressed(path, fps=self.fps, num_frames=self.num_frames,
                            scales=np.array(list(self.k)), ks=np.array(list(self.k.values())),
                            region_names=np.array(self.region_names),
                            seconds=self.seconds, **arrays)

    @classmethod
    def from_npz(cls, path: str) -> 'VideoFeatures':
        z = np.load(path, allow_pickle=False)
        scales = [str(s) for s in z['scales']]
        return cls(fps=float(z['fps']), num_frames=int(z['num_frames']),
                   k={s: int(k) for s, k in zip(scales, z['ks'])},
                   signal={s: z[f'signal_{s}'] for s in scales},
                   regions={s: z[f'regions_{s}'] for s in scales},
                   region_names=[str(r) for r in z['region_names']],
                   maps={s: (z[f'maps_{s}'] if f'maps_{s}' in z.files else None)
                         for s in scales}, seconds=float(z['seconds']))


def _median_free(flow: np.ndarray) -> np.ndarray:
    return flow - np.median(flow.reshape(-1, 2), axis=0)


class WindowFlowExtractor:
    """Streaming window flows: :meth:`push` frames in order, then :meth:`result`.

    Args:
        cfg: The settings.
        fps: The video's frame rate (sets ``k`` of each scale).
        prepare: Optional function applied to each grey frame before the flow
            (a face crop); it gets ``(frame, index)`` and returns a grey image.
    """

    def __init__(self, cfg: WindowFlowConfig, fps: float,
                 prepare: Optional[Callable[[np.ndarray, int], np.ndarray]] = None):
        from raicl_mm.flow.tvl1 import compute_flow
        self._flow = compute_flow
        self.cfg = cfg
        self.fps = float(fps)
        self.k = cfg.k(fps)
        self.prepare = prepare
        self.boxes = cfg.roi_boxes()
        h, w = cfg.size
        self._roi_slices = [(slice(int(round(y0 * h)), max(int(round(y1 * h)), int(round(y0 * h)) + 1)),
                             slice(int(round(x0 * w)), max(int(round(x1 * w)), int(round(x0 * w)) + 1)))
                            for x0, y0, x1, y1 in self.boxes.values()]
        self._buf: collections.deque = collections.deque(maxlen=2 * max(self.k.values()) + 1)
        self._n = 0
        self._sig: Dict[str, Dict[int, float]] = {s: {} for s in self.k}
        self._reg: Dict[str, Dict[int, np.ndarray]] = {s: {} for s in self.k}
        self._maps: Dict[str, Dict[int, np.ndarray]] = {s: {} for s in self.k}
        self.flow_seconds = 0.0
        self.frames_seen = 0

    def _prep(self, frame: np.ndarray, index: int) -> np.ndarray:
        if frame.ndim == 3:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if self.prepare is not None:
            frame = self.prepare(frame, index)
        h, w = self.cfg.size
        if frame.shape[:2] != (h, w):
            frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(frame, dtype=np.uint8)

    def push(self, frame: np.ndarray) -> None:
        """Add the next frame (grey or BGR uint8)."""
        n = self._n
        self._buf.append(self._prep(frame, n))
        self._n += 1
        self.frames_seen += 1
        t0 = time.perf_counter()
        for s, k in self.k.items():
            if n - 2 * k < 0:
                continue
            head = self._buf[-1 - 2 * k]
            centre = self._buf[-1 - k]
            tail = self._buf[-1]
            f_hc = _median_free(self._flow(head, centre, self.cfg.method))
            f_ht = _median_free(self._flow(head, tail, self.cfg.method))
            d = np.sqrt(((f_hc - 0.5 * f_ht) ** 2).sum(-1))
            regs = np.array([float(d[ys, xs].mean()) for ys, xs in self._roi_slices])
            t = n - k
            self._reg[s][t] = regs
            self._sig[s][t] = float(regs.max()) if len(regs) else float(d.mean())
            m = self.cfg.map_size
            if m:
                stack = np.concatenate([f_hc, f_ht], axis=-1)
                pooled = cv2.resize(stack, (m, m), interpolation=cv2.INTER_AREA)
                self._maps[s][t] = pooled.transpose(2, 0, 1).astype(np.float16)
        self.flow_seconds += time.perf_counter() - t0

    def result(self) -> VideoFeatures:
        """The features of every frame pushed so far."""
        T = self._n
        names = list(self.boxes)
        signal, regions, maps = {}, {}, {}
        for s in self.k:
            sig = np.zeros(T)
            reg = np.zeros((T, len(names)))
            for t, v in self._sig[s].items():
                sig[t] = v
                reg[t] = self._reg[s][t]
            signal[s], regions[s] = sig, reg
            if self.cfg.map_size:
                mp = np.zeros((T, 4, self.cfg.map_size, self.cfg.map_size), np.float16)
                for t, v in self._maps[s].items():
                    mp[t] = v
                maps[s] = mp
            else:
                maps[s] = None
        return VideoFeatures(fps=self.fps, num_frames=T, k=dict(self.k), signal=signal,
                             regions=regions, region_names=names, maps=maps,
                             seconds=self.flow_seconds)


def extract_features(frames: Iterable[np.ndarray], fps: float,
                     cfg: Optional[WindowFlowConfig] = None,
                     prepare: Optional[Callable[[np.ndarray, int], np.ndarray]] = None
                     ) -> VideoFeatures:
    """Window flows of a whole video (any iterable of frames, consumed once)."""
    ext = WindowFlowExtractor(cfg or WindowFlowConfig(), fps, prepare)
    for f in frames:
        ext.push(f)
    return ext.result()


def read_frames(paths: Sequence[str]) -> Iterable[np.ndarray]:
    """Grey frames of a list of image files, one at a time."""
    for p in paths:
        img = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise ValueError(f'{p}: could not be decoded as an image')
        yield img
