"""What the model unit tests share: tiny model settings, builders and batches
(test_recognizer, test_cam_consistency, test_region_discovery, test_hooks,
test_augment).
"""
import pytest
import torch

import raicl_mm  # noqa: F401  (compat fixes + registration)
from mmengine.registry import init_default_scope

init_default_scope('mmaction')

from mmaction.registry import MODELS  # noqa: E402
from mmaction.structures import ActionDataSample  # noqa: E402

TINY_BACKBONE = dict(type='mmpretrain.ResNet', depth=18, stem_channels=8,
                     base_channels=8, strides=(1, 2, 2, 1))
TINY_MRD = dict(type='RegionDiscoveryHead', num_queries=4, embed_dim=16,
                proj_hidden=16, pred_hidden=16, num_heads=2)
SIZE = 48  # -> 3x3 feature maps with the tiny backbone (odd width: flips bite)
NO_AUG = dict(jitter=0.0, blur_prob=0.0)


@pytest.fixture(autouse=True)
def tiny_model_env():
    """Every model unit test (autouse where imported): mmaction's registry
    scope, whatever a test of another module left current in this process
    (pytest-xdist runs modules in any order), and one intra-op thread (tiny
    tensors: faster, and no OpenMP spin-waiting on a loaded machine); both
    restored afterwards."""
    from mmengine.registry import DefaultScope
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    with DefaultScope.overwrite_default_scope('mmaction'):
        yield
    torch.set_num_threads(n)


def build(**kwargs):
    cfg = dict(type='RaICLRecognizer', backbone=TINY_BACKBONE, num_classes=3,
               mrd_head=TINY_MRD)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def samples(labels):
    out = []
    for lab in labels:
        d = ActionDataSample()
        d.set_gt_label(int(lab))
        out.append(d)
    return out


def pair_batch(b=2, size=SIZE, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 2, 3, size, size, generator=g)


def total(losses):
    return sum(v for k, v in losses.items() if k.startswith('loss'))
