"""``cv2.optflow`` (TV-L1) needs the contrib build of OpenCV.

Upstream problem: mmengine/mmcv-lite pull in ``opencv-python``, which
overwrites the ``cv2`` of ``opencv-contrib-python-headless``; TV-L1 lives in
``cv2.optflow`` (contrib only). Flow extraction asks for it through
:func:`require_optflow` and gets a message naming the package to reinstall
(:data:`OPTFLOW_FIX`).
"""
from __future__ import annotations

import os.path as osp

OPTFLOW_FIX = ('pip install --force-reinstall --no-deps '
               'opencv-contrib-python-headless')


def require_optflow():
    """Return ``cv2.optflow`` or explain which package to reinstall.

    Raises:
        RuntimeError: The installed ``cv2`` is not the contrib build.
    """
    import cv2
    optflow = getattr(cv2, 'optflow', None)
    if optflow is None or not hasattr(optflow,
                                      'DualTVL1OpticalFlow_create'):
        raise RuntimeError(
            f'cv2 {cv2.__version__} at {osp.dirname(cv2.__file__)} has no '
            'cv2.optflow (TV-L1): another package (opencv-python, pulled in '
            'by mmengine/mmcv) overwrote the contrib build. Fix it with:\n  '
            f'{OPTFLOW_FIX}\n(tools/setup_venv.sh does this last), or use '
            "flow_cfg=dict(method='farneback').")
    return optflow
