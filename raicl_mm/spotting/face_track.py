"""A face crop taken once per stable head pose, for long videos.

A long video is cropped the way raicl_mm crops a clip
(:func:`raicl_mm.flow.face.align_clip` on a reference frame, the same
transform for the frames that follow), but a head that moves far enough
needs a new crop: the crop is re-taken when the head has moved from the
reference frame by more than ``max_shift`` of the frame size (phase
correlation of the down-scaled grey frames) for ``patience`` frames in a row.
Small motion stays in the flow, where the spotters remove the median.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import cv2
import numpy as np


class StableFaceCrop:
    """Callable ``(frame, index) -> grey face crop`` for the window flows.

    Args:
        flow_cfg: A :class:`raicl_mm.flow.FlowConfig` (its ``face_crop``,
            ``crop_margin``, ``no_face``, ``size``).
        max_shift: Re-crop when the head moved by more than this fraction of
            the frame's smaller side.
        patience: ... for this many consecutive frames.
        probe: Side of the down-scaled frames the shift is measured on.
    """

    def __init__(self, flow_cfg, max_shift: float = 0.04, patience: int = 5,
                 probe: int = 96, name: str = 'video'):
        self.flow_cfg = flow_cfg
        self.max_shift = float(max_shift)
        self.patience = int(patience)
        self.probe = int(probe)
        self.name = name
        self.align = None
        self._ref = None
        self._scale = 1.0
        self._over = 0
        self.segments: List[Dict[str, Any]] = []
        self.seconds = 0.0

    def _small(self, grey: np.ndarray) -> np.ndarray:
        h, w = grey.shape[:2]
        self._scale = self.probe / float(max(h, w))
        small = cv2.resize(grey, (max(8, int(w * self._scale)), max(8, int(h * self._scale))),
                           interpolation=cv2.INTER_AREA)
        return np.float32(small)

    def _realign(self, grey: np.ndarray, index: int) -> None:
        from raicl_mm.flow.face import align_clip
        self.align = align_clip(grey, self.flow_cfg, f'{self.name} frame {index}', self.name)
        self._ref = self._small(grey)
        self._over = 0
        self.segments.append(dict(start=int(index), face=self.align.to_dict()))

    def shift_px(self, grey: np.ndarray) -> float:
        """Head shift of ``grey`` from the reference frame, in source pixels."""
        (dx, dy), _ = cv2.phaseCorrelate(self._ref, self._small(grey))
        return float(np.hypot(dx, dy) / self._scale)

    def __call__(self, grey: np.ndarray, index: int) -> np.ndarray:
        import time
        t0 = time.perf_counter()
        if self.align is None:
            self._realign(grey, index)
        else:
            limit = self.max_shift * min(grey.shape[:2])
            self._over = self._over + 1 if self.shift_px(grey) > limit else 0
            if self._over >= self.patience:
                self._realign(grey, index)
        out = self.align.apply(grey)
        self.seconds += time.perf_counter() - t0
        return out


def crop_for(face: Optional[Dict[str, Any]], size, name: str = 'video'
             ) -> Optional[StableFaceCrop]:
    """A :class:`StableFaceCrop` from a config's ``face`` dict (None = no crop)."""
    if not face or face.get('face_crop') in (None, 'none'):
        return None
    from raicl_mm.flow import FlowConfig
    face = dict(face)
    track = {k: face.pop(k) for k in ('max_shift', 'patience') if k in face}
    return StableFaceCrop(FlowConfig(size=tuple(size), **face), name=name, **track)
