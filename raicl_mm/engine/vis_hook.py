"""Pictures in the run's visualizer at each validation (and test).

:class:`RaICLVisualizationHook` is in every config's ``custom_hooks``
(``configs/_base_/default_runtime.py``), so every runner has it: ours,
mmaction2's ``tools/train.py`` and ``mim train``. After each validation it
sends to the visualizer's backends (``LocalVisBackend``: PNGs under
``vis_data/vis_image``; ``TensorboardVisBackend``: the event file, beside the
losses):

* ``val_confusion``: the confusion matrix of the validation predictions
  (rows: true class; colour: share of the true class; cells: counts), titled
  with UF1 / UAR;
* ``val_cam_strip``: a CAM strip of the first ``num_clips`` validation clips:
  per clip, every instance's flow (direction colours, max magnitude in px)
  and the CAM of the predicted class, the middle instance (the one scored)
  framed.

Tests send ``test_confusion`` and ``test_cam_strip`` the same way. The step
is the epoch (the iteration for iteration-based loops). Only rank 0 draws.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np
from mmaction.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper


def _stack_rows(images: Sequence[np.ndarray], gap: int = 6) -> np.ndarray:
    """BGR images one under the other on white (left-aligned)."""
    width = max(im.shape[1] for im in images)
    height = sum(im.shape[0] for im in images) + gap * (len(images) - 1)
    out = np.full((height, width, 3), 255, np.uint8)
    y = 0
    for im in images:
        out[y:y + im.shape[0], :im.shape[1]] = im
        y += im.shape[0] + gap
    return out


@HOOKS.register_module()
class RaICLVisualizationHook(Hook):
    """Confusion matrix and CAM strips into the visualizer at each
    validation / test.

    Args:
        num_clips: Validation clips drawn in the CAM strip (the first ones of
            the loader's dataset, so the same clips at every validation); 0
            turns the strip off.
        tile: Tile side of the strip in pixels.
        confusion: Send the confusion matrix.
        test: Also draw after a test run.
    """

    priority = 'LOW'

    def __init__(self, num_clips: int = 3, tile: int = 64,
                 confusion: bool = True, test: bool = True):
        if num_clips < 0:
            raise ValueError(f'RaICLVisualizationHook: num_clips must be '
                             f'>= 0, got {num_clips}')
        self.num_clips = int(num_clips)
        self.tile = int(tile)
        self.confusion = confusion
        self.test = test
        self._gt: List[int] = []
        self._pred: List[int] = []

    # ------------------------------------------------------------ collect
    def _reset(self) -> None:
        self._gt, self._pred = [], []

    def _collect(self, outputs) -> None:
        for sample in outputs or []:
            score = getattr(sample, 'pred_score', None)
            gt = getattr(sample, 'gt_label', None)
            if score is None or gt is None:
                continue
            self._pred.append(int(np.asarray(score.detach().cpu()).argmax()))
            self._gt.append(int(np.asarray(gt.detach().cpu()).reshape(-1)[0]))

    def before_val_epoch(self, runner) -> None:
        self._reset()

    def before_test_epoch(self, runner) -> None:
        self._reset()

    def after_val_iter(self, runner, batch_idx, data_batch=None,
                       outputs=None) -> None:
        self._collect(outputs)

    def after_test_iter(self, runner, batch_idx, data_batch=None,
                        outputs=None) -> None:
        self._collect(outputs)

    # --------------------------------------------------------------- draw
    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self._draw(runner, 'val', runner.val_dataloader, metrics)

    def after_test_epoch(self, runner, metrics: Optional[dict] = None
                         ) -> None:
        if self.test:
            self._draw(runner, 'test', runner.test_dataloader, metrics)

    @staticmethod
    def _step(runner) -> int:
        """The epoch (by-epoch training), else the iteration."""
        return int(runner.epoch or runner.iter)

    def _draw(self, runner, mode: str, loader, metrics) -> None:
        if not is_main_process():
            return
        dataset = getattr(loader, 'dataset', None)
        classes = list((getattr(dataset, 'metainfo', None) or {}).get(
            'classes') or [])
        step = self._step(runner)
        vis = runner.visualizer
        from raicl_mm.visualization.publish import add_image
        if self.confusion and self._gt:
            from raicl_mm.evaluation.metrics import confusion_matrix, uf1_uar
            from raicl_mm.visualization.confusion import confusion_image
            n = max(len(classes), 1 + max(self._gt + self._pred))
            names = classes if len(classes) == n else [str(i)
                                                       for i in range(n)]
            cm = confusion_matrix(self._gt, self._pred, n)
            s = uf1_uar(cm)
            title = (f'{mode} epoch {runner.epoch}: UF1 {s["UF1"]:.2%} '
                     f'UAR {s["UAR"]:.2%} ({len(self._gt)} clips)')
            add_image(f'{mode}_confusion', confusion_image(cm, names, title),
                      step=step, visualizer=vis)
        if self.num_clips and dataset is not None and len(dataset):
            try:
                strip = self.cam_strip(runner, dataset, classes)
            except (KeyError, ValueError, TypeError) as err:
                runner.logger.warning(f'RaICLVisualizationHook: no CAM strip '
                                      f'({str(err).splitlines()[0]})')
                strip = None
            if strip is not None:
                add_image(f'{mode}_cam_strip', strip, step=step,
                          visualizer=vis)

    def cam_strip(self, runner, dataset, classes) -> Optional[np.ndarray]:
        """The CAM strips of the first ``num_clips`` clips, stacked."""
        from raicl_mm.visualization.cam import (cam_maps, instance_strip,
                                                predict_logits)
        from raicl_mm.visualization.strips import model_inputs
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        strips = []
        for i in range(min(self.num_clips, len(dataset))):
            info = dataset.get_data_info(i)
            inst = np.asarray(info['instances'], dtype=np.float32)
            frames = list(info.get('frame_numbers') or range(len(inst)))
            order = np.argsort(np.asarray(frames), kind='stable')
            inst = inst[order]
            frames = [int(frames[k]) for k in order]
            x = model_inputs(runner.cfg, model, inst)
            logits = predict_logits(model, x)
            mid = len(inst) // 2
            pred = int(logits[mid].argmax())
            name = (lambda k: classes[k] if k < len(classes) else str(k))
            gt = info.get('label')
            header = (f'{info.get("sample_id", i)}  gt: '
                      f'{name(int(gt)) if gt is not None else "?"}  pred: '
                      f'{name(pred)}')
            titles = [f'#{f} {name(int(p))[:3]}'
                      for f, p in zip(frames, logits.argmax(1))]
            notes = (['CAM (Eq. 5) of the predicted class, over the flow'
                      ] if i == min(self.num_clips, len(dataset)) - 1 else [])
            strips.append(instance_strip(
                inst, {'CAM (pred)': cam_maps(model, x, pred)}, titles,
                header=header, tile=self.tile, mark=mid, notes=notes,
                legend=i == min(self.num_clips, len(dataset)) - 1,
                flow_unit='px'))
        return _stack_rows(strips) if strips else None
