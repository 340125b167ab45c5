"""Backbones compose: mmaction2, mmpretrain and torchvision ones build and
train a step; one that ends in no feature map is refused when built."""
import pytest
import torch
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import raicl_mm  # noqa: F401
from raicl_mm.models.backbones import TorchvisionFeatures

HEADS = dict(
    cam_head=dict(type='CAMConsistencyHead', loss_weight=0.5),
    mrd_head=dict(type='RegionDiscoveryHead', num_queries=4, embed_dim=16,
                  proj_hidden=16, pred_hidden=16, num_decoder_layers=1,
                  num_heads=2))

BACKBONES = {
    'mmaction2 ResNet': dict(type='ResNet', depth=18, pretrained=None,
                             out_indices=(3,)),
    'mmaction2 MobileNetV2': dict(type='MobileNetV2', widen_factor=0.5),
    'mmpretrain ResNet': dict(type='mmpretrain.ResNet', depth=18,
                              out_indices=(3,), base_channels=16),
    'mmpretrain ConvNeXt': dict(type='mmpretrain.ConvNeXt', arch='atto',
                                gap_before_final_norm=False),
    'mmpretrain ViT': dict(type='mmpretrain.VisionTransformer', arch='deit-t',
                           img_size=64, patch_size=16, out_type='featmap'),
    'torchvision resnet18': dict(type='torchvision.resnet18'),
    'torchvision mobilenet_v3_small': dict(
        type='torchvision.mobilenet_v3_small'),
}


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('mmaction')
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize('name', list(BACKBONES))
def test_backbone_builds_and_trains_a_step(name):
    torch.manual_seed(0)
    model = MODELS.build(dict(type='RaICLRecognizer', num_classes=3,
                              backbone=BACKBONES[name], **HEADS))
    model.init_weights()
    model.train()
    optim = build_optim_wrapper(model, dict(optimizer=dict(type='Adam',
                                                           lr=1e-3)))
    samples = []
    for i in range(2):
        ds = ActionDataSample()
        ds.set_gt_label(i)
        samples.append(ds)
    data = dict(inputs=[torch.randn(2, 3, 64, 64) for _ in range(2)],
                data_samples=samples)
    before = {k: v.detach().clone() for k, v in model.online.named_parameters()}
    log = model.train_step(data, optim)
    assert torch.isfinite(torch.as_tensor(log['loss']))
    for key in ('loss_cls', 'loss_acl', 'loss_align', 'loss_c'):
        assert key in log, key
    moved = [k for k, v in model.online.named_parameters()
             if k.startswith('backbone.') and not torch.equal(before[k], v)]
    assert moved, 'no backbone parameter was trained'


@pytest.mark.parametrize('cfg,fix', [
    (dict(type='mmpretrain.VisionTransformer', arch='deit-t', img_size=64,
          patch_size=16), "out_type='featmap'"),
    (dict(type='mmpretrain.ConvNeXt', arch='atto'),
     'gap_before_final_norm=False'),
])
def test_pooled_backbone_is_refused_when_built_with_the_fix(cfg, fix):
    with pytest.raises(ValueError) as err:
        MODELS.build(dict(type='RaICLRecognizer', num_classes=3, backbone=cfg,
                          **HEADS))
    msg = str(err.value)
    assert 'not a (B, C, H, W) feature map' in msg and fix in msg
    assert cfg['type'] in msg


def test_torchvision_names_are_checked_and_nothing_is_downloaded():
    with pytest.raises(KeyError, match='torchvision.models has no such'):
        TorchvisionFeatures('no_such_net')
    net = TorchvisionFeatures('resnet18')
    assert net(torch.zeros(1, 3, 64, 64)).shape == (1, 512, 2, 2)
