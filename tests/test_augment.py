"""Unit tests of the flow-aware flips and the per-branch augmentation.

Every expected value is computed independently of the code under test (by
hand on tiny tensors, or by an explicit loop), so each test can fail.
"""
import pytest
import torch

import raicl_mm  # noqa: F401  (compat fixes + registration)
from mmengine.registry import init_default_scope

init_default_scope('mmaction')

from raicl_mm.models import BranchAugment, flip_back, hflip  # noqa: E402

# tiny_model_env: autouse (the registry scope, one intra-op thread)
from model_parts import tiny_model_env  # noqa: E402,F401


# ---------------------------------------------------------------------- flip
def test_hflip_flow_aware_and_plain():
    u = torch.tensor([[1., 2., 3.], [4., 5., 6.]])
    x = torch.stack([u, 10 * u, 100 * u])[None]  # (1, 3, 2, 3)
    out = hflip(x, flow_aware=True)
    assert torch.equal(out[0, 0], torch.tensor([[-3., -2., -1.],
                                                [-6., -5., -4.]]))
    assert torch.equal(out[0, 1], 10 * torch.tensor([[3., 2., 1.],
                                                     [6., 5., 4.]]))
    assert torch.equal(out[0, 2], 100 * torch.tensor([[3., 2., 1.],
                                                      [6., 5., 4.]]))
    plain = hflip(x, flow_aware=False)
    assert torch.equal(plain[0, 0], torch.tensor([[3., 2., 1.],
                                                  [6., 5., 4.]]))
    assert torch.equal(plain[:, 1:], out[:, 1:])
    assert torch.equal(x[0, 0], u)  # input untouched


def test_flip_back_restores_layout():
    g = torch.Generator().manual_seed(0)
    maps = torch.randn(2, 3, 4, 5, generator=g)
    assert torch.equal(flip_back(hflip(maps, flow_aware=False)), maps)
    restored = flip_back(hflip(maps, flow_aware=True))
    assert torch.equal(restored[:, 1:], maps[:, 1:])
    assert torch.equal(restored[:, 0], -maps[:, 0])
    assert torch.equal(flip_back(maps)[..., 0], maps[..., -1])


def test_branch_augment():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 8, 8, generator=g) + 0.5
    assert torch.equal(BranchAugment(jitter=0, blur_prob=0, flip=True)(x),
                       hflip(x, True))
    assert torch.equal(BranchAugment(jitter=0, blur_prob=0)(x), x)
    out = BranchAugment(jitter=0.2, blur_prob=0)(x)
    gain = out / x
    per = gain.flatten(2)
    assert torch.allclose(per, per[..., :1].expand_as(per), atol=1e-5)
    assert ((gain >= 0.8 - 1e-6) & (gain <= 1.2 + 1e-6)).all()
    blurred = BranchAugment(jitter=0, blur_prob=1.0)(x)
    assert not torch.equal(blurred, x)
    assert torch.allclose(blurred.mean(), x.mean(), atol=0.05)
    with pytest.raises(ValueError):
        BranchAugment(blur_kernel=4)


def test_branch_augment_under_bf16_autocast():
    """The H200 run of 2026-12-04: the blur ran in bf16 under autocast and
    was written into the float32 batch ('Index put requires the source and
    destination dtypes match')."""
    aug = BranchAugment(jitter=0.2, blur_prob=1.0)
    aug.reseed(0)
    x = torch.randn(4, 3, 16, 16)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = aug(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
