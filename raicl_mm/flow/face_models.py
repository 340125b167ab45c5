"""Which face models a face crop uses: the files and the recipe's version.

:class:`~raicl_mm.flow.config.FlowConfig` puts them in the cache key (by name
and size, and the alignment recipe's version) and :mod:`raicl_mm.flow.face`
loads them; both import this module, which imports neither.
"""
from __future__ import annotations

import importlib.util
import os
from typing import Optional

import cv2

#: OpenCV's frontal-face cascade, used by ``face_crop='haar'`` by default.
HAAR_CASCADE = 'haarcascade_frontalface_default.xml'

#: Version of the landmark alignment recipe of :mod:`raicl_mm.flow.face`
#: (part of the cache key: bump it when the recipe changes).
ALIGN_VERSION = 'dlib-hog-68-eyes-level-square-1'
LANDMARK_MODEL = 'shape_predictor_68_face_landmarks.dat'
INSTALL_HINT = 'pip install dlib-bin face-recognition-models'


def cascade_candidate(haar_cascade: Optional[str]) -> str:
    """The configured cascade path, or OpenCV's bundled one (may not exist)."""
    if haar_cascade:
        return os.path.expanduser(haar_cascade)
    data = getattr(cv2, 'data', None)
    folder = getattr(data, 'haarcascades', '') if data is not None else ''
    return os.path.join(folder, HAAR_CASCADE)


def landmark_model_path(path: Optional[str] = None,
                        must_exist: bool = True) -> str:
    """The 68-point landmark model used by ``face_crop='landmarks'``.

    Args:
        path: ``FlowConfig.landmark_model``; None = the file shipped in the
            ``face-recognition-models`` package (found without importing it:
            its ``__init__`` needs ``pkg_resources``, gone from setuptools).
        must_exist: Raise when the file is missing.

    Returns:
        The model's path (may not exist when ``must_exist`` is False).

    Raises:
        RuntimeError: no such file; the message names the package to install.
    """
    if path:
        found = os.path.expanduser(path)
    else:
        spec = importlib.util.find_spec('face_recognition_models')
        locs = list(spec.submodule_search_locations or []) if spec else []
        found = os.path.join(locs[0] if locs else '<face_recognition_models '
                             'not installed>', 'models', LANDMARK_MODEL)
    if must_exist and not os.path.isfile(found):
        raise RuntimeError(
            f"face_crop='landmarks' needs the dlib landmark model {found!r}, "
            f'which does not exist: {INSTALL_HINT} (or set '
            'flow_cfg.landmark_model to a 68-point shape predictor .dat)')
    return found
