"""Confusion-matrix pictures in the style of the paper's Fig. 4 / Fig. 11."""
from __future__ import annotations

import os
import os.path as osp
import tempfile
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def confusion_figure(cm: np.ndarray, classes: Sequence[str], title: str
                     ) -> Figure:
    """The confusion-matrix figure of :func:`plot_confusion` (Agg canvas)."""
    counts = np.asarray(cm)
    n = len(classes)
    if counts.shape != (n, n):
        raise ValueError(f'confusion matrix shape {counts.shape} does not '
                         f'match {n} classes')
    row_sum = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, row_sum, out=np.zeros(counts.shape, float),
                      where=row_sum > 0)
    size = 1.2 + 0.9 * n
    fig = Figure(figsize=(size + 1.2, size), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(rates, cmap='Blues', vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04,
                 label='share of the true class (0-1)')
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels([str(c) for c in classes], rotation=45, ha='right')
    ax.set_yticklabels([str(c) for c in classes])
    ax.set_xlabel('Predicted label')
    ax.set_ylabel('True label (cell: number of clips)')
    ax.set_title(title)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(int(counts[i, j])), ha='center', va='center',
                    color='white' if rates[i, j] > 0.5 else 'black')
    fig.tight_layout()
    return fig


def confusion_image(cm: np.ndarray, classes: Sequence[str], title: str
                    ) -> np.ndarray:
    """:func:`confusion_figure` as a ``(H, W, 3)`` uint8 BGR array."""
    fig = confusion_figure(cm, classes, title)
    canvas = fig.canvas
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., 2::-1])


def plot_confusion(cm: np.ndarray, classes: Sequence[str], title: str,
                   out_path: str, step: int = 0) -> str:
    """Draw a confusion matrix and save it as a PNG, atomically.

    Colour is the row-normalised rate (each ground-truth row sums to 1, so a
    rare class is as readable as a frequent one); each cell shows the raw
    count. Uses the Agg canvas directly, so no display or pyplot state is
    needed.

    Args:
        cm: ``(C, C)`` counts, rows ground truth, columns predictions.
        classes: ``C`` class names for both axes.
        title: Figure title (e.g. with UF1/UAR).
        out_path: Destination ``.png`` path; its folder is created.
        step: Step under which the picture also goes to the run's mmengine
            visualizer as ``confusion_<file stem>`` (see
            :mod:`raicl_mm.visualization.publish`; nothing outside a run).

    Returns:
        ``out_path``.

    Raises:
        ValueError: If ``cm`` is not ``(C, C)`` with ``C = len(classes)``.
    """
    try:
        fig = confusion_figure(cm, classes, title)
    except ValueError as err:
        raise ValueError(f'plot_confusion({out_path}): {err}') from None

    folder = osp.dirname(osp.abspath(out_path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix='.png.tmp')
    os.close(fd)
    try:
        fig.savefig(tmp, format='png')
        os.replace(tmp, out_path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    # Also into the run's visualizer (TensorBoard), when there is a run.
    from .publish import add_image_file
    add_image_file('confusion_' + osp.splitext(osp.basename(out_path))[0],
                   out_path, step=step)
    return out_path
