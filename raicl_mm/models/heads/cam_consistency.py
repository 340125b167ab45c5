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


@MODELS.register_module()
class CAMConsistencyHead(nn.Module):
    """Attention consistency loss between online and (flipped-back) target CAMs.

    Eq. 6: L_acl = 1 / (L H W) * sum_j || M_theta_j - Flip(M_xi_j) ||, over the
    CAMs of all L classes. The flip-back is done by the recognizer (it knows
    how the target's input was transformed); this head compares maps that are
    already on the same pixel grid.

    Args:
        loss_weight: lambda_2 of Eq. 15.
        distance: ``'squared'`` (default: the text calls Eq. 6 a *mean square
            difference*, as in Guo et al. 2019) or ``'l2'`` (the norm as
            printed in Eq. 6, summed over classes, not squared).
    """

    def __init__(self, loss_weight: float = 0.5, distance: str = 'squared'):
        super().__init__()
        if distance not in ('squared', 'l2'):
            raise ValueError(f"CAMConsistencyHead: distance must be 'squared' "
                             f"or 'l2', got {distance!r}")
        self.loss_weight = loss_weight
        self.distance = distance

    def loss(self, cam_online: torch.Tensor,
             cam_target: torch.Tensor) -> torch.Tensor:
        """L_acl for a batch, averaged over samples.

        Args:
            cam_online: (B, L, H, W) CAMs of the online branch.
            cam_target: (B, L, H, W) CAMs of the target branch, flipped back.
        """
        if cam_online.shape != cam_target.shape:
            raise ValueError(f'CAM shapes differ: {tuple(cam_online.shape)} '
                             f'vs {tuple(cam_target.shape)}')
        b, l, h, w = cam_online.shape
        diff = cam_online - cam_target.detach()
        if self.distance == 'squared':
            per_sample = diff.pow(2).flatten(1).sum(1)
        else:
            per_sample = diff.flatten(2).norm(dim=2).sum(1)
        return (per_sample / (l * h * w)).mean()
