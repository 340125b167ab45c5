"""Unit tests of IRC, the CAM attention consistency (paper Sec. 3.3, Eq. 5-6), and
of its readings (spatial normalisation, the fc gradient, the online reference).

Every expected value is computed independently of the code under test (by
hand on tiny tensors, or by an explicit loop), so each test can fail.
"""
import math

import pytest
import torch

import raicl_mm  # noqa: F401  (compat fixes + registration)
from mmengine.registry import init_default_scope

init_default_scope('mmaction')

from mmaction.registry import MODELS  # noqa: E402
from raicl_mm.models import (CAMConsistencyHead,  # noqa: E402
                             class_activation_maps, flip_back)

# tiny_model_env: autouse (the registry scope, one intra-op thread)
from model_parts import (tiny_model_env, SIZE, build, pair_batch, samples)  # noqa: E402,F401


# --------------------------------------------------------------------- Eq. 5
def test_cam_matches_explicit_loop():
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(2, 5, 3, 4, generator=g)
    weight = torch.randn(3, 5, generator=g)
    expected = torch.zeros(2, 3, 3, 4)
    for b in range(2):
        for j in range(3):
            for x in range(3):
                for y in range(4):
                    expected[b, j, x, y] = sum(
                        weight[j, c] * feats[b, c, x, y] for c in range(5))
    out = class_activation_maps(feats, weight)
    assert out.shape == (2, 3, 3, 4)
    assert torch.allclose(out, expected, atol=1e-5)


def test_cam_hand_value():
    # F_0 = [[1, 2]], F_1 = [[3, 4]]; W = [[1, -1], [2, 0.5]]
    feats = torch.tensor([[[[1., 2.]], [[3., 4.]]]])
    weight = torch.tensor([[1., -1.], [2., 0.5]])
    out = class_activation_maps(feats, weight)
    assert torch.equal(out, torch.tensor([[[[-2., -2.]], [[3.5, 6.]]]]))


def test_model_cam_is_fc_weight_on_feature_map():
    torch.manual_seed(0)
    model = build().eval()
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        cam = model.cam(x)
        feats = model.online.forward_features(x)
        expected = torch.einsum('lc,bchw->blhw', model.online.fc.weight, feats)
        logits = model(x[:, None], mode='tensor')
    assert cam.shape == (2, 3) + feats.shape[2:]
    assert torch.allclose(cam, expected, atol=1e-5)
    # GAP + FC of Eq. 4 is the spatial mean of the CAM plus the FC bias.
    assert torch.allclose(cam.mean(dim=(2, 3)) + model.online.fc.bias, logits,
                          atol=1e-5)


# --------------------------------------------------------------------- Eq. 6
def _acl_example():
    online = torch.tensor([[[[1., 2.], [3., 4.]],
                            [[0., 0.], [0., 0.]]]])
    target = torch.tensor([[[[1., 1.], [1., 1.]],
                            [[1., 0.], [0., -1.]]]])
    return online, target


def test_acl_hand_value_squared():
    # diff class 0 = [[0,1],[2,3]] -> 14; class 1 = [[-1,0],[0,1]] -> 2.
    online, target = _acl_example()
    loss = CAMConsistencyHead(distance='squared').loss(online, target)
    assert loss.item() == pytest.approx((14 + 2) / (2 * 2 * 2))


def test_acl_hand_value_l2():
    online, target = _acl_example()
    loss = CAMConsistencyHead(distance='l2').loss(online, target)
    assert loss.item() == pytest.approx(
        (math.sqrt(14) + math.sqrt(2)) / (2 * 2 * 2), rel=1e-6)


def test_acl_batch_mean_and_no_grad_to_target():
    online, target = _acl_example()
    online2 = torch.cat([online, target]).requires_grad_(True)
    target2 = torch.cat([target, target]).requires_grad_(True)
    loss = CAMConsistencyHead(distance='squared').loss(online2, target2)
    assert loss.item() == pytest.approx((2.0 + 0.0) / 2)  # sample 2 is exact
    loss.backward()
    assert online2.grad is not None and online2.grad.abs().sum() > 0
    assert target2.grad is None  # the target is a constant


def test_acl_invalid_distance_and_shape():
    with pytest.raises(ValueError):
        CAMConsistencyHead(distance='l1')
    with pytest.raises(ValueError):
        CAMConsistencyHead().loss(torch.zeros(1, 2, 2, 2),
                                  torch.zeros(1, 2, 2, 3))


@pytest.mark.parametrize('distance', ['squared', 'l2'])
def test_acl_zero_for_identical_and_flipped_back(distance):
    head = CAMConsistencyHead(distance=distance)
    g = torch.Generator().manual_seed(3)
    cam = torch.randn(2, 3, 4, 5, generator=g)
    assert head.loss(cam, cam.clone()).item() == 0.0
    # The target saw the mirrored instance: its CAM is the mirror image.
    target_cam = cam.flip(-1)
    assert head.loss(cam, flip_back(target_cam)).item() == 0.0
    assert head.loss(cam, target_cam).item() > 0.1  # without the flip-back


def _blob(h, w, cx, cy, sigma=1.5):
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float32),
                          torch.arange(w, dtype=torch.float32), indexing='ij')
    return torch.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma ** 2))


@pytest.mark.parametrize('distance', ['squared', 'l2'])
def test_acl_grows_with_shift(distance):
    head = CAMConsistencyHead(distance=distance)
    ref = _blob(11, 11, 5, 5)[None, None]
    l0 = head.loss(ref, _blob(11, 11, 5, 5)[None, None]).item()
    l1 = head.loss(ref, _blob(11, 11, 6, 5)[None, None]).item()
    l2 = head.loss(ref, _blob(11, 11, 7, 5)[None, None]).item()
    assert l0 == 0.0
    assert 0 < l1 < l2


# --------------------------------------------------- IRC readings (switches)
def test_spatial_normalize_is_shape_only():
    from raicl_mm.models.heads.cam_consistency import spatial_normalize
    g = torch.Generator().manual_seed(0)
    m = torch.randn(2, 3, 4, 4, generator=g)
    for mode in ('zscore', 'softmax'):
        out = spatial_normalize(m, mode)
        if mode == 'zscore':
            assert torch.allclose(spatial_normalize(3 * m + 2, mode), out,
                                  atol=1e-5)
            assert torch.allclose(out.flatten(2).std(2, unbiased=False),
                                  torch.ones(2, 3), atol=1e-4)
        else:
            assert torch.allclose(spatial_normalize(m + 5, mode), out,
                                  atol=1e-6)
            assert torch.allclose(out.flatten(2).sum(2), torch.ones(2, 3))
    assert spatial_normalize(m, 'none') is m
    with pytest.raises(ValueError, match='normalize'):
        spatial_normalize(m, 'bad')


def test_raw_acl_is_lowered_by_flattening_but_zscore_is_not():
    """The defect the readings address: shrinking both maps toward their
    mean lowers raw Eq. 6; the z-scored reading does not move."""
    head_raw = MODELS.build(dict(type='CAMConsistencyHead'))
    head_z = MODELS.build(dict(type='CAMConsistencyHead', normalize='zscore'))
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4,
                                                          generator=g)

    def flatten(m, k):
        mean = m.mean(dim=(2, 3), keepdim=True)
        return mean + k * (m - mean)
    raw = [float(head_raw.loss(flatten(a, k), flatten(b, k)))
           for k in (1.0, 0.5, 0.1)]
    z = [float(head_z.loss(flatten(a, k), flatten(b, k)))
         for k in (1.0, 0.5, 0.1)]
    assert raw[0] > raw[1] > raw[2]
    assert z == pytest.approx([z[0]] * 3, rel=1e-4)


def test_fc_grad_detached_keeps_acl_out_of_the_fc():
    torch.manual_seed(0)
    grads = {}
    for fc_grad in (True, False):
        model = build(mrd_head=None, cls_loss_weight=0,
                      cam_head=dict(type='CAMConsistencyHead', fc_grad=fc_grad))
        with torch.no_grad():
            for p in model.online.parameters():
                p.add_(0.01 * torch.randn_like(p))
        model.reseed_streams(0)
        losses = model.loss(pair_batch(), samples([0, 1]))
        losses['loss_acl'].backward()
        grads[fc_grad] = (model.online.fc.weight.grad,
                          model.online.backbone.conv1.weight.grad)
        assert float(losses['cam_spatial_std']) > 0
    assert grads[True][0] is not None and grads[True][0].abs().sum() > 0
    assert grads[False][0] is None or grads[False][0].abs().sum() == 0
    assert grads[False][1].abs().sum() > 0      # the features still learn


def test_online_reference_trains_both_sides_and_bad_options_are_named():
    torch.manual_seed(0)
    model = build(mrd_head=None, cls_loss_weight=0,
                  cam_head=dict(type='CAMConsistencyHead', reference='online',
                                normalize='softmax'))
    losses = model.loss(pair_batch(), samples([0, 1]))
    assert float(losses['loss_acl']) > 0
    losses['loss_acl'].backward()
    assert all(p.grad is None for p in model.target_branch.parameters())
    for kw, match in ((dict(normalize='l1'), 'normalize'),
                      (dict(reference='ema'), 'reference')):
        with pytest.raises(ValueError, match=match):
            MODELS.build(dict(type='CAMConsistencyHead', **kw))
