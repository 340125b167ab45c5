"""Backbones from mmaction2, mmpretrain and torchvision, as feature maps.

Ra-ICL needs the last convolutional feature map ``F`` (B, C, H, W): the CAM of
Eq. 6 and the per-pixel assignments of Eq. 8-9 are read from it. A backbone is
a config entry, resolved as mmaction2's ``BaseRecognizer`` resolves it
(``mmpretrain.`` through the shared registry, ``torchvision.`` by name), with
one difference: mmaction2 replaces a torchvision model's classifier by an
identity and keeps its global pooling, which leaves a vector; here the
pooling and classifier are cut off (:class:`TorchvisionFeatures`), so the
map survives. A backbone whose last output is not a map is refused when the
model is built, with the option that fixes it.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
from mmaction.registry import MODELS

TORCHVISION_PREFIX = 'torchvision.'

#: Options that make an mmpretrain backbone end in a feature map.
FEATMAP_FIXES = {
    'VisionTransformer': "out_type='featmap'",
    'DistilledVisionTransformer': "out_type='featmap'",
    'DeiT3': "out_type='featmap'",
    'ConvNeXt': 'gap_before_final_norm=False',
}


class TorchvisionFeatures(nn.Module):
    """A torchvision classification model without its pooling and classifier.

    Args:
        name: A constructor of ``torchvision.models`` (``resnet18``,
            ``mobilenet_v3_small``, ``efficientnet_b0``, ``convnext_tiny``...).
        **kwargs: Its arguments. ``weights`` defaults to None: nothing is
            downloaded at run time (pass a local checkpoint with mmengine's
            ``init_cfg`` / ``load_from`` instead).
    """

    def __init__(self, name: str, **kwargs):
        super().__init__()
        import torchvision.models as tvm
        ctor = getattr(tvm, name, None)
        if ctor is None or not callable(ctor) or name.startswith('_'):
            raise KeyError(f"backbone type 'torchvision.{name}': torchvision."
                           f'models has no such model')
        kwargs.setdefault('weights', None)
        model = ctor(**kwargs)
        if hasattr(model, 'features') and isinstance(model.features,
                                                     nn.Module):
            # VGG, AlexNet, MobileNet, EfficientNet, DenseNet, ConvNeXt,
            # MNASNet: every conv layer lives in ``features``.
            self.body = model.features
        elif all(hasattr(model, n) for n in ('conv1', 'layer4')):
            # ResNet / ResNeXt / Wide ResNet: everything before avgpool.
            self.body = nn.Sequential(model.conv1, model.bn1, model.relu,
                                      model.maxpool, model.layer1,
                                      model.layer2, model.layer3,
                                      model.layer4)
        else:
            raise ValueError(f"backbone type 'torchvision.{name}': no "
                             f'convolutional trunk found (neither .features '
                             f'nor a ResNet layout); use a convolutional '
                             f'torchvision model or a registered backbone')
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def build_backbone(cfg: dict) -> nn.Module:
    """Build a backbone config with mmaction2's prefixes (see module doc)."""
    cfg = dict(cfg)
    kind = cfg.get('type')
    if isinstance(kind, str) and kind.startswith(TORCHVISION_PREFIX):
        cfg.pop('type')
        return TorchvisionFeatures(kind[len(TORCHVISION_PREFIX):], **cfg)
    if isinstance(kind, str) and kind.startswith('mmpretrain.'):
        import mmpretrain.models  # noqa: F401  (registers mmpretrain's parts)
    return MODELS.build(cfg)


def last_feature_map(backbone: nn.Module, cfg: Optional[dict],
                     size: int = 64) -> torch.Tensor:
    """The backbone's last output for a ``size`` x ``size`` dry run.

    Raises:
        ValueError: The output is not ``(B, C, H, W)``; for mmpretrain's
            ViT / ConvNeXt the message gives the option that fixes it.
    """
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            out = backbone(torch.zeros(1, 3, size, size))
    finally:
        backbone.train(was_training)
    if isinstance(out, (list, tuple)):
        out = out[-1]
    if isinstance(out, (list, tuple)):  # ViT's (patch_token, cls_token)
        out = out[0]
    if not torch.is_tensor(out) or out.dim() != 4:
        kind = str((cfg or {}).get('type', type(backbone).__name__))
        short = kind.split('.')[-1]
        fix = FEATMAP_FIXES.get(short)
        shape = tuple(out.shape) if torch.is_tensor(out) else type(out)
        hint = (f'; set backbone.{fix}' if fix else
                '; choose a backbone (or its option) that ends in a feature '
                'map, e.g. out_indices of the last stage')
        raise ValueError(f"model.backbone type '{kind}' ends in {shape}, "
                         f'not a (B, C, H, W) feature map: CAM (Eq. 6) and '
                         f'MRD (Eq. 8) need one{hint}')
    return out
