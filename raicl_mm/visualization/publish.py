"""Pictures into the run's mmengine visualizer (TensorBoard beside the losses).

Every picture the package writes as a file (confusion matrices, CAM strips)
also goes through ``Visualizer.add_image`` of the visualizer that the current
run built (``cfg.visualizer``: ``LocalVisBackend`` writes it under
``vis_data/vis_image``, ``TensorboardVisBackend`` into the event file, next
to the losses). Outside a run (no visualizer instance) nothing is sent.
"""
from __future__ import annotations

from typing import Optional

import numpy as np


def current_visualizer():
    """The visualizer of the current run, or the latest one, or None.

    mmengine keeps instances per class (``ManagerMixin``) and a run builds
    the config's class (``ActionVisualizer``), so every subclass of
    ``mmengine.visualization.Visualizer`` is looked at. A Runner names its
    visualizer and its message hub after the experiment, so the instance
    named like the current message hub is the current run's; without one,
    the most recent instance of the last class that has any.
    """
    try:
        from mmengine.logging import MessageHub
        from mmengine.visualization import Visualizer
    except ImportError:  # pragma: no cover
        return None
    run_name = None
    if MessageHub._instance_dict:
        run_name = MessageHub.get_current_instance().instance_name
    todo, seen, found = [Visualizer], set(), None
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        todo.extend(cls.__subclasses__())
        instances = getattr(cls, '_instance_dict', None)
        if instances:
            if run_name in instances:
                return instances[run_name]
            found = cls.get_current_instance()
    return found


def add_image(name: str, image_bgr: np.ndarray, step: int = 0,
              visualizer=None) -> bool:
    """Send a BGR uint8 picture to the run's visualizer as ``name``.

    Args:
        name: Tag (e.g. ``'confusion_fold_casme2_01'``; no '/': LocalVisBackend
            writes ``<name>_<step>.png`` into one folder).
        image_bgr: ``(H, W, 3)`` uint8 BGR (OpenCV order; converted to the
            RGB that ``add_image`` expects) or ``(H, W)`` grey.
        step: Global step of the picture.
        visualizer: The visualizer; None = :func:`current_visualizer`.

    Returns:
        True if a visualizer took it.
    """
    vis = visualizer if visualizer is not None else current_visualizer()
    if vis is None:
        return False
    img = np.asarray(image_bgr)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'add_image({name!r}): expected (H, W, 3) or '
                         f'(H, W), got {img.shape}')
    vis.add_image(name, np.ascontiguousarray(img[..., ::-1]), step=step)
    return True


def add_image_file(name: str, path: str, step: int = 0,
                   visualizer: Optional[object] = None) -> bool:
    """:func:`add_image` of a picture file already written (PNG/JPEG)."""
    vis = visualizer if visualizer is not None else current_visualizer()
    if vis is None:
        return False
    import cv2
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f'add_image_file: cannot read {path!r}')
    return add_image(name, img, step, vis)
