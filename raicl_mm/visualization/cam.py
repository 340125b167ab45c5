"""Attention pictures of a Ra-ICL model: CAM, Grad-CAM, Guided Grad-CAM.

The paper's Fig. 5 (and supplement Fig. 14) shows the instances of a clip in a
row with the model's attention heat maps under them. This module computes
those maps for the online branch (the branch used at test time) and draws the
strip:

* :func:`cam_maps` -- the class activation map of Eq. 5,
  ``M_j = sum_c W(j, c) F_c``, of one class per instance.
* :func:`grad_cam` -- Grad-CAM (Selvaraju et al., ICCV 2017): channel weights
  are the spatial mean of ``d logit_c / d A`` for an activation ``A``
  (default: the last feature map ``F``), map = ``ReLU(sum_k w_k A_k)``.
  Note: with ``A = F`` and the GAP + FC head of Ra-ICL,
  ``d logit_c / d F = W_c / (h w)`` everywhere, so Grad-CAM equals the CAM up
  to a positive factor (Selvaraju et al. show Grad-CAM generalises CAM this
  way). Pass ``target_layer`` (a module name of the branch, e.g.
  ``'backbone.layer3'``) for a Grad-CAM on an earlier, finer activation,
  which does differ from the CAM.
* :func:`guided_grad_cam` -- guided backpropagation (gradients of the logit
  w.r.t. the input, negative gradients zeroed at every ``nn.ReLU``) times the
  up-sampled Grad-CAM, reduced over the 3 input channels by the largest
  absolute value.

Every map is ``(B, H_in, W_in)`` float32, up-sampled bilinearly to the input
size and normalised to ``[0, 1]`` per map (divided by its maximum, so that
"no attention" stays 0; an all-zero map stays all zero). The model is put in
eval mode for the computation (and put back as it was) and no parameter
``.grad`` is left behind: gradients are taken with ``torch.autograd.grad``
w.r.t. activations / the input only.
"""
from __future__ import annotations

import contextlib
from typing import Dict, Iterator, Optional, Sequence, Union

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .flow_colour import flow_to_colour

ClassIdx = Union[None, int, Sequence[int], np.ndarray, torch.Tensor]


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _branch(model: nn.Module) -> nn.Module:
    """The online branch of a RaICLRecognizer, or ``model`` itself when it
    already offers ``forward_features`` / ``forward_head`` / ``fc``."""
    br = getattr(model, 'online', model)
    for name in ('forward_features', 'forward_head', 'fc'):
        if not hasattr(br, name):
            raise TypeError(f'{type(model).__name__} has no online branch with '
                            f'{name!r} (need forward_features, forward_head '
                            'and fc)')
    return br


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for the duration; every module's flag restored afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


def _as_input(model: nn.Module, x) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x)
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4:
        raise ValueError(f'instances must be (B, C, H, W), got {tuple(x.shape)}')
    try:
        dev = next(model.parameters()).device
    except StopIteration:
        dev = torch.device('cpu')
    return x.detach().to(dev, torch.float32)


def _class_index(class_idx: ClassIdx, logits: torch.Tensor) -> torch.Tensor:
    b, n_cls = logits.shape
    if class_idx is None:
        idx = logits.argmax(dim=1)
    else:
        idx = torch.as_tensor(np.asarray(class_idx) if not torch.is_tensor(class_idx)
                              else class_idx).long().reshape(-1).to(logits.device)
        if idx.numel() == 1:
            idx = idx.expand(b)
        if idx.numel() != b:
            raise ValueError(f'class_idx has {idx.numel()} entries for {b} '
                             'instances')
        if (idx < 0).any() or (idx >= n_cls).any():
            raise ValueError(f'class_idx {idx.tolist()} out of range for '
                             f'{n_cls} classes')
    return idx


def _finish(maps: torch.Tensor, size) -> np.ndarray:
    """(B, h, w) -> ReLU, bilinear to ``size``, each map divided by its max."""
    maps = F.relu(maps.detach().float())[:, None]
    if tuple(maps.shape[-2:]) != tuple(size):
        maps = F.interpolate(maps, size=tuple(size), mode='bilinear',
                             align_corners=False)
    maps = maps[:, 0].clamp(min=0)
    peak = maps.flatten(1).max(dim=1).values.view(-1, 1, 1)
    maps = torch.where(peak > 0, maps / peak.clamp(min=1e-12),
                       torch.zeros_like(maps))
    return maps.cpu().numpy().astype(np.float32)


@torch.no_grad()
def predict_logits(model: nn.Module, x) -> np.ndarray:
    """Logits of the online branch for (B, 3, H, W) instances, eval mode."""
    br = _branch(model)
    with _eval_mode(model):
        x = _as_input(model, x)
        return br.forward_head(br.forward_features(x)).float().cpu().numpy()


# --------------------------------------------------------------------------
# maps
# --------------------------------------------------------------------------
@torch.no_grad()
def cam_maps(model: nn.Module, x, class_idx: ClassIdx = None) -> np.ndarray:
    """CAM (Eq. 5) of one class per instance.

    Args:
        model: A ``RaICLRecognizer`` (its online branch is used) or a branch.
        x: ``(B, 3, H, W)`` instances, already normalised as the model's
            input (tensor or array).
        class_idx: Class of each map: None (the predicted class of each
            instance), one int for all, or one per instance.

    Returns:
        ``(B, H, W)`` float32 maps in ``[0, 1]``.
    """
    from raicl_mm.models.heads.cam_consistency import class_activation_maps
    br = _branch(model)
    with _eval_mode(model):
        x = _as_input(model, x)
        feats = br.forward_features(x)
        idx = _class_index(class_idx, br.forward_head(feats))
        cams = class_activation_maps(feats, br.fc.weight)        # (B, L, h, w)
        cams = cams[torch.arange(len(idx), device=cams.device), idx]
    return _finish(cams, x.shape[-2:])


def _activation_and_grad(model: nn.Module, x: torch.Tensor,
                         class_idx: ClassIdx,
                         target_layer: Optional[str]):
    """(A, dlogit_c/dA) for the chosen activation, no parameter grads."""
    br = _branch(model)
    if target_layer is None:
        with torch.no_grad():
            feats = br.forward_features(x)
        feats = feats.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = br.forward_head(feats)
            idx = _class_index(class_idx, logits)
            score = logits.gather(1, idx[:, None]).sum()
            grad, = torch.autograd.grad(score, feats)
        return feats.detach(), grad
    modules = dict(br.named_modules())
    if target_layer not in modules:
        some = [n for n in modules if n][:8]
        raise KeyError(f'target_layer {target_layer!r} is not a module of the '
                       f'online branch (e.g. {some})')
    store = {}

    def hook(_m, _inp, out):
        store['act'] = out[-1] if isinstance(out, (list, tuple)) else out

    handle = modules[target_layer].register_forward_hook(hook)
    try:
        with torch.enable_grad():
            xg = x.detach().clone().requires_grad_(True)  # graph even if frozen
            logits = br.forward_head(br.forward_features(xg))
            idx = _class_index(class_idx, logits)
            score = logits.gather(1, idx[:, None]).sum()
            act = store['act']
            if act.dim() != 4:
                raise ValueError(f'target_layer {target_layer!r} gives '
                                 f'{tuple(act.shape)}, not (B, C, h, w)')
            grad, = torch.autograd.grad(score, act)
    finally:
        handle.remove()
    return act.detach(), grad


def grad_cam(model: nn.Module, x, class_idx: ClassIdx = None,
             target_layer: Optional[str] = None) -> np.ndarray:
    """Grad-CAM of one class per instance.

    Args:
        model: A ``RaICLRecognizer`` or a branch.
        x: ``(B, 3, H, W)`` model inputs.
        class_idx: As :func:`cam_maps`.
        target_layer: None = the online branch's last feature map (equal to
            the CAM up to scale for a GAP + FC head), or the name of a module
            of the branch (``'backbone.layer3'``) whose 4-D output is used.

    Returns:
        ``(B, H, W)`` float32 maps in ``[0, 1]``.
    """
    with _eval_mode(model):
        x = _as_input(model, x)
        act, grad = _activation_and_grad(model, x, class_idx, target_layer)
        weights = grad.mean(dim=(2, 3), keepdim=True)            # (B, C, 1, 1)
        maps = (weights * act).sum(dim=1)
    return _finish(maps, x.shape[-2:])


def guided_backprop(model: nn.Module, x, class_idx: ClassIdx = None
                    ) -> np.ndarray:
    """Guided backpropagation: ``d logit_c / d x`` with only positive
    gradients let through every ``nn.ReLU`` of the branch.

    ReLUs are made out-of-place for the call (backward hooks cannot wrap an
    in-place op) and restored afterwards. Functional ReLUs (``F.relu``) are
    not guided.

    Returns:
        ``(B, 3, H, W)`` float32 gradients.
    """
    br = _branch(model)
    relus = [m for m in br.modules() if isinstance(m, nn.ReLU)]
    inplace = [m.inplace for m in relus]

    def hook(_m, grad_in, _grad_out):
        return tuple(None if g is None else g.clamp(min=0) for g in grad_in)

    handles = []
    try:
        for m in relus:
            m.inplace = False
            handles.append(m.register_full_backward_hook(hook))
        with _eval_mode(model), torch.enable_grad():
            xg = _as_input(model, x).clone().requires_grad_(True)
            logits = br.forward_head(br.forward_features(xg))
            idx = _class_index(class_idx, logits)
            score = logits.gather(1, idx[:, None]).sum()
            grad, = torch.autograd.grad(score, xg)
    finally:
        for h in handles:
            h.remove()
        for m, flag in zip(relus, inplace):
            m.inplace = flag
    return grad.detach().cpu().numpy().astype(np.float32)


def guided_grad_cam(model: nn.Module, x, class_idx: ClassIdx = None,
                    target_layer: Optional[str] = None) -> np.ndarray:
    """Guided Grad-CAM: ``|guided backprop|`` (max over the input channels)
    times the up-sampled Grad-CAM, normalised to ``[0, 1]`` per map.

    ``class_idx=None`` uses each instance's predicted class for both parts.
    """
    if class_idx is None:
        class_idx = predict_logits(model, x).argmax(axis=1)
    gcam = grad_cam(model, x, class_idx, target_layer)
    guided = np.abs(guided_backprop(model, x, class_idx)).max(axis=1)
    return _finish(torch.from_numpy(guided * gcam), gcam.shape[-2:])


# --------------------------------------------------------------------------
# scores and pictures
# --------------------------------------------------------------------------
def mask_mass(heat: np.ndarray, mask: np.ndarray) -> float:
    """Fraction of a heat map's mass inside a mask.

    Args:
        heat: ``(h, w)`` non-negative map (negative values count as 0).
        mask: Boolean (or 0/non-0) ``(H, W)`` mask; resized to ``heat``'s
            size with nearest-neighbour interpolation.

    Returns:
        ``sum(heat * mask) / sum(heat)`` in ``[0, 1]``; NaN for an all-zero
        heat map (no attention to place). A uniform map scores the mask's
        area fraction (the chance level).
    """
    heat = np.clip(np.asarray(heat, dtype=np.float64), 0, None)
    if heat.ndim != 2:
        raise ValueError(f'heat must be (h, w), got {heat.shape}')
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[..., 0]
    m = (m != 0).astype(np.uint8)
    if m.shape != heat.shape:
        m = cv2.resize(m, (heat.shape[1], heat.shape[0]),
                       interpolation=cv2.INTER_NEAREST)
    total = heat.sum()
    if total <= 0:
        return float('nan')
    return float((heat * m).sum() / total)


def _to_bgr(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.ndim == 3 and img.shape[2] == 1:
        return cv2.cvtColor(img[..., 0], cv2.COLOR_GRAY2BGR)
    if img.ndim == 3 and img.shape[2] == 3:
        return img
    raise ValueError(f'base image must be (H, W) or (H, W, 3), got {img.shape}')


def overlay(heat: np.ndarray, base_bgr: np.ndarray, alpha: float = 0.5
            ) -> np.ndarray:
    """Blend a JET-coloured heat map on an image.

    Args:
        heat: ``(h, w)`` map in ``[0, 1]`` (clipped); resized (bilinear) to
            the base's size.
        base_bgr: ``(H, W, 3)`` (or grey ``(H, W)``) uint8 image.
        alpha: Weight of the heat colours.

    Returns:
        ``(H, W, 3)`` uint8 BGR image.
    """
    base = _to_bgr(base_bgr)
    h, w = base.shape[:2]
    heat = np.nan_to_num(np.asarray(heat, dtype=np.float32))
    if heat.ndim != 2:
        raise ValueError(f'heat must be (h, w), got {heat.shape}')
    if heat.shape != (h, w):
        heat = cv2.resize(heat, (w, h), interpolation=cv2.INTER_LINEAR)
    colour = cv2.applyColorMap(
        np.rint(np.clip(heat, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.addWeighted(base, 1.0 - alpha, colour, alpha, 0.0)


def _text(img, text, org, scale=0.45, colour=(0, 0, 0), thick=1):
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour,
                thick, cv2.LINE_AA)


def _fit(text: str, width: int, scale: float) -> str:
    """Shorten ``text`` so that it fits ``width`` pixels."""
    while text and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale,
                                   1)[0][0] > width:
        text = text[:-2] + '~' if len(text) > 2 else ''
    return text


def instance_strip(instances: np.ndarray, heats: Dict[str, np.ndarray],
                   titles: Sequence[str],
                   frame_numbers: Optional[Sequence[int]] = None,
                   header: Optional[str] = None, tile: int = 96,
                   alpha: float = 0.5, magnitude: bool = True,
                   frames: Optional[np.ndarray] = None,
                   outline: Optional[np.ndarray] = None,
                   mark: Optional[int] = None,
                   notes: Sequence[str] = (),
                   legend: bool = True,
                   flow_unit: str = 'px') -> np.ndarray:
    """The Fig. 5 layout: instances in a row, heat maps under them.

    Row 1 shows the flow colour map (:func:`flow_to_colour` of ``[u, v]``;
    ``magnitude=True`` sets the HSV value to the flow magnitude so that still
    regions are dark, ``False`` is Algorithm 1's full-value map) of each
    instance; each further row, one per entry of ``heats`` (in dict order),
    shows that map blended on a grey version of the instance's flow map.
    Row names are written on the left, ``titles`` above the columns and
    ``header`` above everything (all heat rows of the tool are maps of the
    sample's predicted class).

    Args:
        instances: ``(N, H, W, C)`` flow instances, ``C >= 2`` (``[u, v, ...]``).
        heats: name -> ``(N, h, w)`` maps in ``[0, 1]``.
        titles: ``N`` column titles (e.g. ``'frame 57'``).
        frame_numbers: If given, columns are sorted by it (ascending).
        header: Line written at the top (e.g. ground truth and prediction).
        tile: Side of each tile in pixels (instances are resized to it).
        alpha: Heat weight of the overlays.
        magnitude: See above.
        frames: ``(N, H, W)`` grey (or ``(N, H, W, 3)`` BGR) aligned face
            frames of the instances: a ``frame`` row shows them and the heat
            maps are laid over them (so a person sees where on the face the
            model looked); None = over the grey of the flow colour map.
        outline: ``(H, W)`` mask (e.g. the synthetic set's ground-truth
            motion region) whose outline is drawn on every heat tile.
        mark: Index (in ``instances``' order) of the instance to frame in
            red: the middle instance, the one a test run scores.
        notes: Lines written under the strip (e.g. how two rows relate).
        legend: Add the key under the strip: the heat colour bar (0 to each
            map's own maximum, no unit), the flow direction wheel and what the
            flow's brightness means; each flow tile shows its largest
            magnitude in ``flow_unit``.
        flow_unit: Unit of the flow (pixels of the flow's grid).

    Returns:
        ``(H_img, W_img, 3)`` uint8 BGR image.
    """
    inst = np.asarray(instances, dtype=np.float32)
    if inst.ndim != 4 or inst.shape[-1] < 2:
        raise ValueError(f'instances must be (N, H, W, C>=2), got {inst.shape}')
    n = len(inst)
    if len(titles) != n:
        raise ValueError(f'{len(titles)} titles for {n} instances')
    for name, h in heats.items():
        if len(h) != n:
            raise ValueError(f'heat {name!r} has {len(h)} maps for {n} instances')
    order = (np.argsort(np.asarray(frame_numbers), kind='stable')
             if frame_numbers is not None else np.arange(n))
    h0, w0 = inst.shape[1:3]
    th = tile
    tw = max(1, int(round(tile * w0 / h0)))
    label_w, gap, col_title_h = 136, 4, 20
    header_h = 26 if header else 0
    width = label_w + n * (tw + gap) + gap
    if frames is not None and len(frames) != n:
        raise ValueError(f'{len(frames)} frames for {n} instances')
    row_names = (['frame'] if frames is not None else []) + ['flow'] + \
        list(heats)
    rows = len(row_names)
    body_h = header_h + col_title_h + rows * (th + gap) + gap
    notes = list(notes) + (['red frame: the middle instance (scored at '
                            'test time)'] if mark is not None else [])
    foot_h = (84 if legend else 0) + 16 * len(notes)
    width = max(width, 440) if (legend or notes) else width
    height = body_h + foot_h
    canvas = np.full((height, width, 3), 255, np.uint8)
    if header:
        _text(canvas, _fit(header, width - 8, 0.5), (6, 18), scale=0.5)
    edge = None
    if outline is not None:
        m = (np.asarray(outline) != 0).astype(np.uint8)
        m = cv2.resize(m, (tw, th), interpolation=cv2.INTER_NEAREST)
        edge = cv2.morphologyEx(m, cv2.MORPH_GRADIENT,
                                np.ones((3, 3), np.uint8)) > 0
    for r, name in enumerate(row_names):
        y = header_h + col_title_h + r * (th + gap) + gap
        _text(canvas, _fit(name, label_w - 8, 0.45), (6, y + th // 2 + 5))
    for c, i in enumerate(order):
        x = label_w + c * (tw + gap) + gap
        _text(canvas, _fit(str(titles[i]), tw, 0.4),
              (x + 2, header_h + col_title_h - 6), scale=0.4)
        flow_img = flow_to_colour(inst[i, ..., :2], magnitude=magnitude)
        flow_img = cv2.resize(flow_img, (tw, th), interpolation=cv2.INTER_NEAREST)
        first = 0
        if frames is not None:
            base = cv2.resize(_to_bgr(frames[i]), (tw, th),
                              interpolation=cv2.INTER_AREA)
            y = header_h + col_title_h + gap
            canvas[y:y + th, x:x + tw] = base
            first = 1
        else:
            base = cv2.cvtColor(cv2.cvtColor(flow_img, cv2.COLOR_BGR2GRAY),
                                cv2.COLOR_GRAY2BGR)
        y = header_h + col_title_h + first * (th + gap) + gap
        canvas[y:y + th, x:x + tw] = flow_img
        if True:  # the largest magnitude of the instance, in its unit
            top = float(np.sqrt((inst[i, ..., :2].astype(np.float64) ** 2
                                 ).sum(-1)).max())
            label = _fit(f'{top:.2f}{flow_unit}', tw - 2, 0.35)
            _text(canvas, label, (x + 2, y + th - 4), 0.35, (0, 0, 0), 3)
            _text(canvas, label, (x + 2, y + th - 4), 0.35, (255, 255, 255))
        for r, name in enumerate(heats, start=first + 1):
            y = header_h + col_title_h + r * (th + gap) + gap
            tile_img = overlay(heats[name][i], base, alpha)
            if edge is not None:
                tile_img[edge] = (255, 255, 255)
            canvas[y:y + th, x:x + tw] = tile_img
        if mark is not None and i == mark:
            y_top = header_h + col_title_h + gap - 2
            cv2.rectangle(canvas, (x - 2, y_top),
                          (x + tw + 1, body_h - gap + 1), (0, 0, 255), 2)
    _legend(canvas, body_h, legend, notes, flow_unit)
    return canvas


def _legend(canvas: np.ndarray, y: int, legend: bool, notes: Sequence[str],
            flow_unit: str) -> None:
    """The key under a strip (see :func:`instance_strip`)."""
    width = canvas.shape[1]
    if legend:
        from .flow_colour import colour_wheel
        bar_w = 120
        ramp = np.linspace(0, 255, bar_w).astype(np.uint8)[None, :]
        bar = cv2.applyColorMap(np.repeat(ramp, 10, axis=0),
                                cv2.COLORMAP_JET)
        canvas[y + 6:y + 16, 6:6 + bar_w] = bar
        _text(canvas, '0', (6, y + 28), 0.35)
        _text(canvas, '1', (bar_w, y + 28), 0.35)
        _text(canvas, _fit("heat: share of each map's own max (no unit)",
                           width - bar_w - 20, 0.35), (bar_w + 14, y + 15),
              0.35)
        canvas[y + 36:y + 76, 6:46] = colour_wheel(40)
        _text(canvas, _fit('flow hue = direction (wheel: a flow from its '
                           'centre, v down)', width - 56, 0.35),
              (52, y + 50), 0.35)
        _text(canvas, _fit(f'brightness = |flow|; each flow tile: its max '
                           f'|flow| in {flow_unit}', width - 56, 0.35),
              (52, y + 68), 0.35)
        y += 84
    for line in notes:
        _text(canvas, _fit(line, width - 8, 0.38), (6, y + 12), 0.38)
        y += 16
