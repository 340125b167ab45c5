"""What decides how a flow instance is computed: :class:`FlowConfig`.

The configuration is also the flow part of every cache key
(:meth:`FlowConfig.key_dict`), so anything that changes a flow must live here.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Tuple

import cv2

from .face_models import (ALIGN_VERSION, HAAR_CASCADE,  # noqa: F401
                          cascade_candidate, landmark_model_path)

FLOW_METHODS = ('tvl1', 'farneback', 'tvl1_torch')
FACE_CROPS = (None, 'haar', 'box', 'landmarks')

#: What a face crop does when the onset shows no face.
NO_FACE_POLICIES = ('error', 'whole_frame')

#: Farneback parameters (the values of OpenCV's own optical-flow sample):
#: pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags.
FARNEBACK_PARAMS = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3,
                        poly_n=5, poly_sigma=1.2, flags=0)



@dataclass
class FlowConfig:
    """Everything that decides how a flow instance is computed.

    Attributes:
        method: ``'tvl1'`` (OpenCV DualTVL1, default parameters),
            ``'farneback'`` or ``'tvl1_torch'`` (the batched PyTorch port of
            OpenCV's TV-L1, same defaults).
        size: ``(H, W)`` of the frames after crop and resize; the flow is
            computed, and expressed in pixels, at this size.
        face_crop: None (whole frame), ``'haar'`` (OpenCV's frontal-face Haar
            cascade on the onset frame, box enlarged by ``crop_margin``; needs
            a cascade file, see ``haar_cascade``), ``'box'`` (the fixed
            ``crop_box``) or ``'landmarks'`` (dlib's HOG face detector and
            68-point landmarks on the onset: the eye line is levelled and a
            square box around the landmarks, enlarged by ``crop_margin``, is
            cut out; see :mod:`raicl_mm.flow.face`). The crop found on the
            onset is reused for every frame of the clip so it adds no motion.
        crop_margin: Fraction of the face box's width/height added on each
            side (``'haar'`` and ``'landmarks'``).
        no_face: ``'haar'`` / ``'landmarks'`` when the onset shows no face:
            ``'error'`` (a ValueError naming the clip and the frame) or
            ``'whole_frame'`` (the whole frame is used, a warning names the
            clip and :func:`raicl_mm.flow.face.no_face_clips` counts it).
        landmark_model: ``'landmarks'`` only: path of a dlib 68-point shape
            predictor ``.dat``; None = the one of the
            ``face-recognition-models`` package.
        crop_box: ``(x, y, w, h)`` in source-frame pixels for ``'box'``.
        haar_cascade: Path of the Haar cascade XML for ``'haar'``; None uses
            OpenCV's bundled ``haarcascade_frontalface_default.xml`` (the
            opencv 5.0 wheels ship none: then a path is required).
        device: ``'tvl1_torch'`` only: torch device (``'cpu'``,
            ``'cuda'``, ``'cuda:1'``); None = CUDA when available, else CPU.
            Not part of the cache key: the device changes the flow only by
            float32 rounding (see :meth:`key_dict`).
    """

    method: str = 'tvl1'
    size: Tuple[int, int] = (112, 112)
    face_crop: Optional[str] = None
    crop_margin: float = 0.1
    crop_box: Optional[Tuple[int, int, int, int]] = None
    haar_cascade: Optional[str] = None
    device: Optional[str] = None
    no_face: str = 'error'
    landmark_model: Optional[str] = None

    def __post_init__(self) -> None:
        if self.method not in FLOW_METHODS:
            raise ValueError(f'FlowConfig.method={self.method!r} is unknown; '
                             f'valid: {FLOW_METHODS}')
        self.size = tuple(int(s) for s in self.size)
        if len(self.size) != 2 or min(self.size) < 8:
            raise ValueError(f'FlowConfig.size must be (H, W) with both >= 8, '
                             f'got {self.size}')
        if self.face_crop not in FACE_CROPS:
            raise ValueError(f'FlowConfig.face_crop={self.face_crop!r} is '
                             f'unknown; valid: {FACE_CROPS}')
        if self.no_face not in NO_FACE_POLICIES:
            raise ValueError(f'FlowConfig.no_face={self.no_face!r} is '
                             f'unknown; valid: {NO_FACE_POLICIES}')
        if self.crop_margin < 0:
            raise ValueError(f'FlowConfig.crop_margin must be >= 0, got '
                             f'{self.crop_margin}')
        if self.face_crop == 'box':
            if self.crop_box is None or len(self.crop_box) != 4:
                raise ValueError("FlowConfig.face_crop='box' needs crop_box="
                                 f'(x, y, w, h), got {self.crop_box}')
            self.crop_box = tuple(int(c) for c in self.crop_box)
            if self.crop_box[2] <= 0 or self.crop_box[3] <= 0:
                raise ValueError(f'FlowConfig.crop_box width and height must '
                                 f'be positive, got {self.crop_box}')

    def key_dict(self) -> Dict[str, Any]:
        """Every parameter that changes the result, for cache keys.

        Returns:
            A JSON-serialisable dict: the fields that matter for the chosen
            crop mode, the solver parameters and the OpenCV version (a new
            OpenCV may give different flows).
        """
        key = asdict(self)
        # Where the flow is computed is not what it is: CPU and CUDA runs of
        # 'tvl1_torch' differ by float32 rounding only, far below the
        # solver's own error, so one cache serves both.
        key.pop('device')
        key['size'] = list(self.size)
        if self.face_crop not in ('haar', 'landmarks'):
            key.pop('crop_margin')
            key.pop('no_face')
        if self.face_crop != 'box':
            key.pop('crop_box')
        else:
            key['crop_box'] = list(self.crop_box)
        if self.face_crop == 'haar':
            # The cascade by name and size, not by path: moving it is harmless.
            path = cascade_candidate(self.haar_cascade)
            key['haar_cascade'] = [os.path.basename(path),
                                   os.path.getsize(path)
                                   if os.path.isfile(path) else None]
        else:
            key.pop('haar_cascade')
        if self.face_crop == 'landmarks':
            # The model by name and size (as the cascade), and the version of
            # face.py's alignment recipe (face_models.ALIGN_VERSION: bump it
            # when the recipe changes).
            path = landmark_model_path(self.landmark_model, must_exist=False)
            key['landmark_model'] = [os.path.basename(path),
                                     os.path.getsize(path)
                                     if os.path.isfile(path) else None]
            key['align'] = ALIGN_VERSION
        else:
            key.pop('landmark_model')
        if self.method == 'tvl1':
            key['solver'] = 'opencv-defaults'
        elif self.method == 'tvl1_torch':
            from .tvl1_torch import TVL1Params
            key['solver'] = dict(TVL1Params().key(), impl='raicl_mm-torch-1')
        else:
            key['solver'] = dict(FARNEBACK_PARAMS)
        key['resize'] = 'INTER_AREA'
        key['opencv'] = cv2.__version__
        return key
