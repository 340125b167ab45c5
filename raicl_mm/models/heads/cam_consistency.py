"""Instance Region Consistency: class activation maps and L_acl (Eq. 5-6)."""
from __future__ import annotations

import torch
import torch.nn as nn
from mmaction.registry import MODELS


def class_activation_maps(feats: torch.Tensor,
                          fc_weight: torch.Tensor) -> torch.Tensor:
    """CAM of every class (Eq. 5): M_j(x, y) = sum_c W(j, c) F_c(x, y).

    Args:
        feats: Feature maps of the last conv layer, (B, C, H, W).
        fc_weight: Weights W of the classifier, (L, C).

    Returns:
        torch.Tensor: (B, L, H, W) attention heat maps (the FC bias is not part
        of Eq. 5 and is left out).
    """
    return torch.einsum('lc,bchw->blhw', fc_weight, feats)


def spatial_normalize(cams: torch.Tensor, mode: str,
                      eps: float = 1e-6) -> torch.Tensor:
    """Each map of (B, L, H, W) normalised over space (shape only).

    ``'zscore'``: (M - mean) / std over H x W, so two maps that differ only
    in offset or scale are equal and a flat map cannot be reached by shrinking
    it; ``'softmax'``: a spatial softmax (the map as a distribution over
    pixels); ``'none'``: the raw map (Eq. 6 as printed).
    """
    if mode == 'none':
        return cams
    flat = cams.flatten(2)
    if mode == 'zscore':
        mean = flat.mean(dim=2, keepdim=True)
        std = flat.std(dim=2, keepdim=True, unbiased=False)
        return ((flat - mean) / (std + eps)).view_as(cams)
    if mode == 'softmax':
        return flat.softmax(dim=2).view_as(cams)
    raise ValueError(f"normalize must be 'none', 'zscore' or 'softmax', "
                     f'got {mode!r}')


@MODELS.register_module()
class CAMConsistencyHead(nn.Module):
    """Attention consistency loss between online and (flipped-back) target CAMs.

    Eq. 6: L_acl = 1 / (L H W) * sum_j || M_theta_j - Flip(M_xi_j) ||, over the
    CAMs of all L classes. The flip-back is done by the recognizer (it knows
    how the target's input was transformed); this head compares maps that are
    already on the same pixel grid.

    On raw CAMs with a GAP + FC classifier, Eq. 6 can be lowered by removing a
    map's spatial variation (the logits depend only on its spatial mean), so
    three readings are switches (docs/benchmark.md measures them):

    Args:
        loss_weight: lambda_2 of Eq. 15.
        distance: ``'squared'`` (default: the text calls Eq. 6 a *mean square
            difference*, as in Guo et al. 2019) or ``'l2'`` (the norm as
            printed in Eq. 6, summed over classes, not squared).
        fc_grad: True (Eq. 5-6 as printed): L_acl's gradient reaches the FC
            weights W inside the online CAM. False: W is detached inside the
            CAM, as in the code of Guo et al. 2019 (attention consistency
            trains the features only).
        normalize: ``'none'`` (raw maps, Eq. 6 as printed), ``'zscore'`` or
            ``'softmax'`` (each map normalised over space before Eq. 6: a
            shape-only consistency, see :func:`spatial_normalize`).
        reference: ``'target'`` (Ra-ICL: the EMA target's CAM of the other
            instance, flipped back) or ``'online'`` (Guo et al. 2019: the
            current network's CAM of the flipped view, both sides trained).
    """

    def __init__(self, loss_weight: float = 0.5, distance: str = 'squared',
                 fc_grad: bool = True, normalize: str = 'none',
                 reference: str = 'target'):
        super().__init__()
        if distance not in ('squared', 'l2'):
            raise ValueError(f"CAMConsistencyHead: distance must be 'squared' "
                             f"or 'l2', got {distance!r}")
        if normalize not in ('none', 'zscore', 'softmax'):
            raise ValueError("CAMConsistencyHead: normalize must be 'none', "
                             f"'zscore' or 'softmax', got {normalize!r}")
        if reference not in ('target', 'online'):
            raise ValueError("CAMConsistencyHead: reference must be 'target' "
                             f"or 'online', got {reference!r}")
        self.loss_weight = loss_weight
        self.distance = distance
        self.fc_grad = bool(fc_grad)
        self.normalize = normalize
        self.reference = reference

    def online_cams(self, feats: torch.Tensor,
                    fc_weight: torch.Tensor) -> torch.Tensor:
        """Eq. 5 for the online branch, W detached unless ``fc_grad``."""
        return class_activation_maps(
            feats, fc_weight if self.fc_grad else fc_weight.detach())

    @staticmethod
    def spatial_std(cams: torch.Tensor) -> torch.Tensor:
        """Mean over samples and classes of each map's std over space: how
        far a map is from flat (logged as ``cam_spatial_std``)."""
        return cams.detach().flatten(2).std(dim=2, unbiased=False).mean()

    def loss(self, cam_online: torch.Tensor,
             cam_target: torch.Tensor) -> torch.Tensor:
        """L_acl for a batch, averaged over samples.

        Args:
            cam_online: (B, L, H, W) CAMs of the online branch.
            cam_target: (B, L, H, W) CAMs of the target branch, flipped back
                (detached here unless ``reference='online'``).
        """
        if cam_online.shape != cam_target.shape:
            raise ValueError(f'CAM shapes differ: {tuple(cam_online.shape)} '
                             f'vs {tuple(cam_target.shape)}')
        b, l, h, w = cam_online.shape
        if self.reference == 'target':
            cam_target = cam_target.detach()
        diff = (spatial_normalize(cam_online, self.normalize)
                - spatial_normalize(cam_target, self.normalize))
        if self.distance == 'squared':
            per_sample = diff.pow(2).flatten(1).sum(1)
        else:
            per_sample = diff.flatten(2).norm(dim=2).sum(1)
        return (per_sample / (l * h * w)).mean()
