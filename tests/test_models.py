"""Unit tests of the Ra-ICL model parts (paper Sec. 3.2-3.4, Eq. 3-15).

Every expected value is computed independently of the code under test (by
hand on tiny tensors, or by an explicit loop), so each test can fail.
"""
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import raicl_mm  # noqa: F401  (compat fixes + registration)
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope

init_default_scope('mmaction')

from mmaction.registry import HOOKS, MODELS  # noqa: E402
from mmaction.structures import ActionDataSample  # noqa: E402

from raicl_mm.engine.hooks import EpochSeedHook, TargetEMAHook  # noqa: E402
from raicl_mm.models import (BranchAugment, CAMConsistencyHead,  # noqa: E402
                             InstanceDataPreprocessor, MultiRegionEncoder,
                             RegionDiscoveryHead, class_activation_maps,
                             flip_back, hflip)

TINY_BACKBONE = dict(type='mmpretrain.ResNet', depth=18, stem_channels=8,
                     base_channels=8, strides=(1, 2, 2, 1))
TINY_MRD = dict(type='RegionDiscoveryHead', num_queries=4, embed_dim=16,
                proj_hidden=16, pred_hidden=16, num_heads=2)
SIZE = 48  # -> 3x3 feature maps with the tiny backbone (odd width: flips bite)
NO_AUG = dict(jitter=0.0, blur_prob=0.0)


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    """Tiny tensors: one intra-op thread is faster, and much faster on a
    loaded 2-core machine (no OpenMP spin-waiting); restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
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


# ------------------------------------------------------------------ Eq. 9-10
def test_align_hand_value():
    # pixel 0: logits [0, 0] -> log P = [-ln2, -ln2], target [1, 0]
    # pixel 1: logits [ln3, 0] -> P = [3/4, 1/4], target [1/2, 1/2]
    logits = torch.tensor([[[[0., math.log(3.)]], [[0., 0.]]]])
    target = torch.tensor([[[[1., 0.5]], [[0., 0.5]]]])
    ce0 = math.log(2.)
    ce1 = -(0.5 * math.log(0.75) + 0.5 * math.log(0.25))
    loss = RegionDiscoveryHead.loss_align(logits, target)
    assert loss.item() == pytest.approx((ce0 + ce1) / 2, rel=1e-6)


def test_align_matches_loop_on_random_maps():
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(2, 3, 2, 4, generator=g)
    target = torch.randn(2, 3, 2, 4, generator=g).softmax(1)
    acc = 0.0
    for b in range(2):
        for u in range(2):
            for v in range(4):
                z = [math.exp(logits[b, m, u, v].item()) for m in range(3)]
                for m in range(3):
                    acc -= target[b, m, u, v].item() * math.log(z[m] / sum(z))
    expected = acc / (2 * 2 * 4)
    assert RegionDiscoveryHead.loss_align(logits, target).item() == \
        pytest.approx(expected, rel=1e-5)


def test_align_minimum_is_entropy_and_target_is_constant():
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 4, 3, 3, generator=g)
    p = logits.softmax(1)
    entropy = -(p * p.log()).sum(1).mean()
    # logits shifted by a per-pixel constant give the same distribution
    same = (logits + 7.0).requires_grad_(True)
    target = p.clone().requires_grad_(True)
    loss = RegionDiscoveryHead.loss_align(same, target)
    assert loss.item() == pytest.approx(entropy.item(), rel=1e-5)
    other = RegionDiscoveryHead.loss_align(
        torch.randn(2, 4, 3, 3, generator=g), p)
    assert other.item() > entropy.item() + 1e-3
    loss.backward()
    assert target.grad is None
    # at the minimum the gradient w.r.t. the logits vanishes
    assert same.grad.abs().max() < 1e-6


def test_align_grows_when_target_assignment_is_shifted():
    # 2 regions: left columns belong to query 0, right ones to query 1.
    h, w = 4, 6

    def assignment(boundary):
        col = torch.arange(w).float()
        s0 = 4.0 * (boundary - 0.5 - col)  # > 0 left of the boundary
        return torch.stack([s0, -s0])[None, :, None, :].expand(1, 2, h, w)

    logits = assignment(3)
    l0 = RegionDiscoveryHead.loss_align(logits, assignment(3).softmax(1))
    l1 = RegionDiscoveryHead.loss_align(logits, assignment(4).softmax(1))
    l2 = RegionDiscoveryHead.loss_align(logits, assignment(5).softmax(1))
    assert l0 < l1 < l2


# ------------------------------------------------------------ Eq. 7, 8, 11-12
@pytest.fixture
def encoder_and_feats():
    torch.manual_seed(0)
    enc = MultiRegionEncoder(in_channels=6, num_queries=3, embed_dim=8,
                             proj_hidden=8, num_decoder_layers=1, num_heads=2)
    feats = torch.randn(2, 6, 3, 4)
    return enc, feats


def test_encoder_shapes_and_probs_sum_to_one(encoder_and_feats):
    enc, feats = encoder_and_feats
    out = enc(feats)
    assert out['logits'].shape == (2, 3, 3, 4)
    assert out['probs'].shape == (2, 3, 3, 4)
    assert out['mask_embed'].shape == (2, 3, 8)
    assert out['region'].shape == (2, 3, 6)
    assert out['z'].shape == (2, 3, 8)
    assert torch.allclose(out['probs'].sum(1), torch.ones(2, 3, 4), atol=1e-6)
    assert (out['probs'] > 0).all()
    assert torch.allclose(out['probs'], out['logits'].softmax(1))


def test_encoder_region_is_weighted_average_eq11(encoder_and_feats):
    enc, feats = encoder_and_feats
    out = enc(feats)
    probs = out['probs'].detach()
    expected = torch.zeros(2, 3, 6)
    for b in range(2):
        for m in range(3):
            num = torch.zeros(6)
            den = 0.0
            for u in range(3):
                for v in range(4):
                    num += probs[b, m, u, v] * feats[b, :, u, v]
                    den += probs[b, m, u, v].item()
            expected[b, m] = num / den
    assert torch.allclose(out['region'], expected, atol=1e-5)


def test_encoder_logits_are_cosine_similarities_eq7(encoder_and_feats):
    enc, feats = encoder_and_feats
    enc.eval()  # BN1d of the projector on running stats: row-independent
    with torch.no_grad():
        out = enc(feats)
        q = out['mask_embed']
        for b in range(2):
            for u in range(3):
                for v in range(4):
                    dense = enc.project(feats[b, :, u, v][None])[0]
                    for m in range(3):
                        cos = F.cosine_similarity(q[b, m], dense, dim=0)
                        assert out['logits'][b, m, u, v].item() == \
                            pytest.approx(cos.item(), abs=1e-5)
        # Eq. 12: z = H(h) row by row
        for b in range(2):
            for m in range(3):
                z = enc.project(out['region'][b, m][None])[0]
                assert torch.allclose(out['z'][b, m], z, atol=1e-5)
    enc2 = MultiRegionEncoder(in_channels=6, num_queries=3, embed_dim=8,
                              proj_hidden=8, num_decoder_layers=1,
                              num_heads=2, temperature=0.5)
    enc2.load_state_dict(enc.state_dict())
    enc2.eval()
    with torch.no_grad():
        assert torch.allclose(enc2(feats)['logits'], 2 * out['logits'],
                              atol=1e-5)


# ------------------------------------------------------------ Eq. 13-14 (L_c)
def _predict(head, z):
    d = z.shape[-1]
    return head.predictor.predictor([z.reshape(-1, d)])[0].reshape(z.shape)


def test_consistency_byol_form():
    torch.manual_seed(0)
    head = RegionDiscoveryHead(
        num_queries=3, embed_dim=8, pred_hidden=8,
        consistency_loss=dict(type='mmpretrain.CosineSimilarityLoss',
                              shift_factor=2.0, scale_factor=2.0))
    head.eval()
    z = torch.randn(2, 3, 8)
    with torch.no_grad():
        pred = _predict(head, z)
        assert head.loss_consistency(z, pred).item() == pytest.approx(
            0.0, abs=1e-5)
        assert head.loss_consistency(z, -pred).item() == pytest.approx(
            4.0, abs=1e-5)
        # scale invariance of the cosine
        assert head.loss_consistency(z, 3 * pred).item() == pytest.approx(
            0.0, abs=1e-5)


def test_consistency_negative_cosine_form_and_sign():
    torch.manual_seed(0)
    head = RegionDiscoveryHead(
        num_queries=3, embed_dim=8, pred_hidden=8,
        consistency_loss=dict(type='mmpretrain.CosineSimilarityLoss',
                              shift_factor=0.0, scale_factor=1.0))
    head.eval()
    z = torch.randn(2, 3, 8)
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(2, 3, 8, generator=g)
    with torch.no_grad():
        pred = _predict(head, z)
        assert head.loss_consistency(z, pred).item() == pytest.approx(
            -1.0, abs=1e-5)
        # cosine between pred and target decreases as alpha grows -> loss up
        vals = []
        for alpha in (0.0, 0.5, 1.0, 3.0):
            target = pred + alpha * noise * pred.norm(dim=-1, keepdim=True)
            loss = head.loss_consistency(z, target).item()
            cos = F.cosine_similarity(pred, target, dim=-1).mean().item()
            assert loss == pytest.approx(-cos, abs=1e-5)
            vals.append(loss)
    assert vals == sorted(vals) and vals[0] < vals[-1]


def test_consistency_target_gets_no_grad():
    head = RegionDiscoveryHead(num_queries=3, embed_dim=8, pred_hidden=8)
    z = torch.randn(2, 3, 8, requires_grad=True)
    zt = torch.randn(2, 3, 8, requires_grad=True)
    head.loss_consistency(z, zt).backward()
    assert z.grad is not None and zt.grad is None


# ----------------------------------------------------------- Eq. 3 (EMA hook)
def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


@pytest.mark.parametrize('tau', [0.99, 0.6])
def test_ema_hook_updates_target_exactly(tau):
    torch.manual_seed(0)
    model = build(tau=tau)
    target, online = model.target_branch, model.online
    # xi_0 = theta_0
    for (kt, t), (ko, o) in zip(target.named_parameters(),
                                online.named_parameters()):
        assert kt == ko and torch.equal(t, o)
        assert not t.requires_grad
    assert all(not p.requires_grad for p in model.target.parameters())
    optim = torch.optim.Adam(model.parameters(), lr=1e-2)
    hook = HOOKS.build(dict(type='TargetEMAHook'))
    runner = SimpleNamespace(model=model, iter=0)
    hook.before_run(runner)
    x, ds = pair_batch(), samples([0, 2])
    for it in range(2):
        runner.iter = it
        xi_old = _snapshot(target)
        theta_old = _snapshot(online)
        optim.zero_grad()
        total(model.loss(x, ds)).backward()
        optim.step()
        theta_new = _snapshot(online)
        # the optimizer never touches the target
        for k, v in _snapshot(target).items():
            assert torch.equal(v, xi_old[k]), k
        assert any(not torch.equal(theta_new[k], theta_old[k])
                   for k in theta_new)
        hook.after_train_iter(runner, it)
        for k, v in target.named_parameters():
            expected = tau * xi_old[k] + (1 - tau) * theta_new[k]
            assert torch.allclose(v, expected, rtol=1e-5, atol=1e-7), (it, k)
        # the first update is Eq. 3 too, not a copy of theta
        assert any(not torch.allclose(v, theta_new[k], atol=1e-6)
                   for k, v in target.named_parameters())
        # buffers (BN statistics) follow the online branch
        for bt, bo in zip(target.buffers(), online.buffers()):
            assert torch.equal(bt, bo)


def test_ema_hook_interval_and_type_check():
    torch.manual_seed(0)
    model = build()
    hook = TargetEMAHook(interval=2)
    runner = SimpleNamespace(model=model, iter=0)
    with torch.no_grad():
        for p in model.online.parameters():
            p.add_(1.0)
    before = _snapshot(model.target_branch)
    hook.after_train_iter(runner, 0)  # iteration 1 of 2: no update
    for k, v in _snapshot(model.target_branch).items():
        assert torch.equal(v, before[k])
    runner.iter = 1
    hook.after_train_iter(runner, 1)
    fc = model.target_branch.fc.weight
    assert torch.allclose(fc, before['fc.weight'] + 0.01, atol=1e-6)
    with pytest.raises(ValueError):
        TargetEMAHook(interval=0)
    with pytest.raises(TypeError):
        hook.before_run(SimpleNamespace(model=nn.Linear(2, 2)))


@pytest.mark.parametrize('tau', [0.0, 1.0])
def test_tau_bounds_of_eq3(tau):
    """tau in [0, 1] (Eq. 3): 1 = frozen target, 0 = target copies online."""
    torch.manual_seed(0)
    model = build(tau=tau)
    before = _snapshot(model.target_branch)
    with torch.no_grad():
        for p in model.online.parameters():
            p.add_(0.5)
    model.update_target()
    for k, v in model.target_branch.named_parameters():
        expected = before[k] if tau == 1.0 else \
            dict(model.online.named_parameters())[k]
        assert torch.allclose(v, expected, atol=1e-6), k


def test_tau_out_of_range_rejected():
    with pytest.raises(ValueError):
        build(tau=1.5)


def test_init_weights_reaches_backbone_and_syncs_target():
    """The runner calls model.init_weights(): the backbone's own init_cfg /
    init_weights (mmpretrain ResNet: zero_init_residual) must run, and the
    target must start as a copy of the online branch."""
    torch.manual_seed(0)
    model = build()
    model.init_weights()
    for t, o in zip(model.target_branch.state_dict().values(),
                    model.online.state_dict().values()):
        assert torch.equal(t, o)
    bb = model.online.backbone
    assert bb.zero_init_residual
    assert torch.count_nonzero(bb.layer1[0].norm2.weight) == 0, \
        'backbone.init_weights() was never called'


def test_epoch_seed_hook():
    hook = EpochSeedHook(seed=3)
    hook.before_train_epoch(SimpleNamespace(seed=None, epoch=2))
    a = torch.rand(4)
    torch.manual_seed(5)
    assert torch.equal(a, torch.rand(4))
    hook.before_train_epoch(SimpleNamespace(seed=10, epoch=1))
    b = torch.rand(4)
    torch.manual_seed(11)
    assert torch.equal(b, torch.rand(4))


# ----------------------------------------------------------------- gradients
def test_gradients_online_only():
    torch.manual_seed(0)
    model = build()
    total(model.loss(pair_batch(), samples([1, 2]))).backward()
    groups = dict(backbone=model.online.backbone, fc=model.online.fc,
                  region=model.online.region,
                  predictor=model.mrd_head.predictor)
    for name, module in groups.items():
        params = [(k, p) for k, p in module.named_parameters()
                  if p.requires_grad]
        assert params, name
        missing = [k for k, p in params if p.grad is None]
        assert not missing, (name, missing)
        assert any(p.grad.abs().sum() > 0 for _, p in params), name
    for k, p in model.target.named_parameters():
        assert p.grad is None, k
        assert not p.requires_grad, k


# --------------------------------------------------------- Eq. 15 (lambdas)
def _losses(model, state, x, ds, seed=7):
    model.load_state_dict(state, strict=False)
    torch.manual_seed(seed)
    model.reseed_streams(seed)  # the branches' augmentations
    return {k: v.item() for k, v in model.loss(x, ds).items()}


def test_each_lambda_removes_or_scales_its_term():
    torch.manual_seed(0)
    full = build()
    state = full.state_dict()
    x, ds = pair_batch(), samples([0, 1])
    ref = _losses(full, state, x, ds)
    assert {'loss_cls', 'loss_acl', 'loss_align', 'loss_c'} <= set(ref)
    ref_total = sum(v for k, v in ref.items() if k.startswith('loss'))

    def check(model, removed):
        out = _losses(model, state, x, ds)
        for k in removed:
            assert k not in out
        for k, v in ref.items():
            if k not in removed and k.startswith('loss'):
                assert out[k] == pytest.approx(v, rel=1e-5), k
        tot = sum(v for k, v in out.items() if k.startswith('loss'))
        assert tot == pytest.approx(
            ref_total - sum(ref[k] for k in removed), rel=1e-5)

    check(build(cls_loss_weight=0), ['loss_cls'])
    check(build(cam_head=dict(type='CAMConsistencyHead', loss_weight=0)),
          ['loss_acl'])
    check(build(cam_head=None), ['loss_acl'])
    check(build(mrd_head=dict(TINY_MRD, loss_weight=0)),
          ['loss_align', 'loss_c'])
    check(build(mrd_head=None), ['loss_align', 'loss_c'])
    check(build(cam_head=None, mrd_head=None),
          ['loss_acl', 'loss_align', 'loss_c'])
    # weights multiply their terms exactly once
    out = _losses(build(cls_loss_weight=1.0,
                        cam_head=dict(type='CAMConsistencyHead',
                                      loss_weight=1.0),
                        mrd_head=dict(TINY_MRD, loss_weight=1.0)),
                  state, x, ds)
    for k in ('loss_cls', 'loss_acl', 'loss_align', 'loss_c'):
        assert out[k] == pytest.approx(2 * ref[k], rel=1e-5), k


BYOL_SUM = dict(sum_directions=True, consistency_loss=dict(
    type='mmpretrain.CosineSimilarityLoss', shift_factor=2.0, scale_factor=2.0))


@pytest.mark.parametrize('reading', ['default', 'byol_sum'])
@pytest.mark.parametrize('symmetric', [True, False])
def test_loss_wiring_matches_manual_computation(symmetric, reading):
    """Recompute Eq. 4, 6, 10, 14 from the branches by hand (no random aug).

    ``default``: -cos, every term the mean over the directions;
    ``byol_sum``: BYOL's 2 - 2cos, MRD's terms summed over the directions.
    """
    torch.manual_seed(0)
    mrd = dict(TINY_MRD, **(BYOL_SUM if reading == 'byol_sum' else {}))
    model = build(symmetric=symmetric, augment_online=NO_AUG, mrd_head=mrd,
                  augment_target=dict(NO_AUG, flip=True))
    with torch.no_grad():
        for p in model.online.parameters():  # target != online
            p.add_(0.01 * torch.randn_like(p))
    x, ds = pair_batch(seed=3), samples([2, 0])
    labels = torch.tensor([2, 0])
    losses = model.loss(x, ds)
    xp, xq = x[:, 0], x[:, 1]
    if symmetric:
        on_in, tg_in, labels, d = (torch.cat([xp, xq]), torch.cat([xq, xp]),
                                   torch.cat([labels, labels]), 2)
    else:
        on_in, tg_in, d = xp, xq, 1
    if reading == 'default':
        d = 1                       # direction means: no factor
    with torch.no_grad():
        on = model.online(on_in)
        tg = model.target_branch(hflip(tg_in, flow_aware=True))
        cam_on = torch.einsum('lc,bchw->blhw', model.online.fc.weight,
                              on['feats'])
        cam_tg = torch.einsum('lc,bchw->blhw', model.target_branch.fc.weight,
                              tg['feats']).flip(-1)
        exp_cls = 0.5 * F.cross_entropy(on['logits'], labels)
        exp_acl = 0.5 * ((cam_on - cam_tg) ** 2).sum((1, 2, 3)).mean() / (
            cam_on[0].numel())
        logp = on['region']['logits'].log_softmax(1)
        exp_align = 0.5 * d * (-(tg['region']['probs'].flip(-1) * logp)
                               .sum(1).mean())
        n = on['region']['z'].shape[-1]
        pred = model.mrd_head.predictor.predictor(
            [on['region']['z'].reshape(-1, n)])[0]
        cos = F.cosine_similarity(pred, tg['region']['z'].reshape(-1, n))
        exp_c = 0.5 * d * ((2 - 2 * cos).mean() if reading == 'byol_sum'
                           else (-cos).mean())
    assert losses['loss_cls'].item() == pytest.approx(exp_cls.item(), rel=1e-4)
    assert losses['loss_acl'].item() == pytest.approx(exp_acl.item(), rel=1e-4)
    assert losses['loss_align'].item() == pytest.approx(exp_align.item(),
                                                        rel=1e-4)
    assert losses['loss_c'].item() == pytest.approx(exp_c.item(), rel=1e-4)


@MODELS.register_module(name='RaICLTestPointwiseNet', force=True)
class PointwiseNet(nn.Module):
    """1x1 convs + non-overlapping pooling: exactly flip-equivariant."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 1)
        self.conv2 = nn.Conv2d(8, 8, 1)
        self.pool = nn.AvgPool2d(4)

    def forward(self, x):
        return self.pool(self.conv2(torch.relu(self.conv1(x))))


def test_model_flips_target_cam_back():
    """Flip-equivariant backbone, xi = theta, I_p = I_q, plain flip: the
    flipped-back target CAM equals the online CAM, so L_acl = 0."""
    torch.manual_seed(0)
    x = torch.randn(2, 1, 3, 32, 32).expand(2, 2, 3, 32, 32).contiguous()
    model = build(backbone=dict(type='RaICLTestPointwiseNet'), mrd_head=None,
                  augment_online=NO_AUG,
                  augment_target=dict(NO_AUG, flip=True,
                                      flow_aware_flip=False))
    loss = model.loss(x, samples([0, 1]))['loss_acl'].item()
    assert loss == pytest.approx(0.0, abs=1e-9)
    # sanity: the CAMs are not mirror-symmetric, so a missing flip-back shows
    with torch.no_grad():
        cam = model.cam(x[:, 0])
    assert (cam - cam.flip(-1)).abs().max() > 1e-3


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


# ------------------------------------------------------- modes and predict
@pytest.mark.parametrize('symmetric', [True, False])
def test_symmetric_and_one_direction_run(symmetric):
    torch.manual_seed(0)
    model = build(symmetric=symmetric)
    losses = model.loss(pair_batch(), samples([0, 1]))
    assert {'loss_cls', 'loss_acl', 'loss_align', 'loss_c', 'acc'} <= \
        set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    total(losses).backward()


def test_predict_and_tensor_modes():
    torch.manual_seed(0)
    model = build().eval()
    x = torch.randn(3, 1, 3, SIZE, SIZE)
    with torch.no_grad():
        logits = model(x, mode='tensor')
        assert logits.shape == (3, 3)
        # the first view only
        x2 = torch.cat([x, torch.randn_like(x)], 1)
        assert torch.allclose(model(x2, mode='tensor'), logits)
        out = model(x, samples([0, 1, 2]), mode='predict')
    assert len(out) == 3
    for ds, lg in zip(out, logits):
        assert ds.pred_score.shape == (3,)
        assert ds.pred_score.sum().item() == pytest.approx(1.0, abs=1e-5)
        assert torch.allclose(ds.pred_score, lg.softmax(-1))
        assert int(ds.pred_label) == int(lg.argmax())
    with pytest.raises(RuntimeError):
        model(x, mode='bogus')


def test_loss_needs_pairs():
    model = build()
    with pytest.raises(ValueError, match='pair'):
        model.loss(torch.randn(2, 1, 3, SIZE, SIZE), samples([0, 1]))


# ---------------------------------------------------------------- non-finite
def test_non_finite_loss_raises_with_term_and_iteration():
    torch.manual_seed(0)
    model = build()
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', 17)
    x = pair_batch()
    x[0, 0, 0, 5, 5] = float('nan')
    with pytest.raises(FloatingPointError) as err:
        model.loss(x, samples([0, 1]))
    msg = str(err.value)
    assert 'iteration' in msg and '17' in msg
    assert 'loss_cls' in msg


def test_non_finite_single_term_is_named():
    torch.manual_seed(0)
    model = build()
    model.cam_head.loss = lambda a, b: torch.tensor(float('inf'))
    with pytest.raises(FloatingPointError) as err:
        model.loss(pair_batch(), samples([0, 1]))
    msg = str(err.value)
    assert 'loss_acl' in msg and 'iteration' in msg
    assert 'loss_cls' not in msg and 'loss_align' not in msg


# --------------------------------------------------------------- composition
@pytest.mark.parametrize('backbone,channels', [
    (dict(type='mmpretrain.MobileNetV2', widen_factor=0.25), 1280),
    (dict(type='ResNet', depth=18, pretrained=None), 512),
])
def test_other_backbones(backbone, channels):
    torch.manual_seed(0)
    model = build(backbone=backbone)
    assert model.online.fc.in_features == channels
    assert model.online.region.input_proj.in_channels == channels
    losses = model.loss(pair_batch(size=64), samples([0, 2]))
    assert all(torch.isfinite(v) for v in losses.values())
    total(losses).backward()
    grads = [p.grad for p in model.online.backbone.parameters()
             if p.requires_grad]
    assert grads and all(g is not None for g in grads)


def test_non_map_backbone_rejected():
    model = build()
    model.online.backbone = nn.Sequential(nn.Flatten(), nn.Linear(3, 2))
    with pytest.raises(ValueError, match='feature map|B, C, H, W'):
        model.online.forward_features(torch.randn(1, 3, 1, 1))


# --------------------------------------------------------- data preprocessor
def test_data_preprocessor_stacks_and_normalises():
    pre = InstanceDataPreprocessor(mean=[1., 2., 3.], std=[2., 4., 8.])
    inputs = [torch.full((2, 3, 4, 4), 5.), torch.full((2, 3, 4, 4), 9.)]
    ds = samples([0, 1])
    out = pre(dict(inputs=inputs, data_samples=ds), training=True)
    x = out['inputs']
    assert x.shape == (2, 2, 3, 4, 4)
    assert x.dtype == torch.float32
    assert torch.allclose(x[0, :, 0], torch.full((2, 4, 4), 2.))     # (5-1)/2
    assert torch.allclose(x[0, :, 1], torch.full((2, 4, 4), 0.75))   # (5-2)/4
    assert torch.allclose(x[1, :, 2], torch.full((2, 4, 4), 0.75))   # (9-3)/8
    assert [int(d.gt_label) for d in out['data_samples']] == [0, 1]
    # one instance per sample -> a view axis of 1
    one = pre(dict(inputs=[torch.zeros(3, 4, 4)] * 3), training=False)
    assert one['inputs'].shape == (3, 1, 3, 4, 4)
    assert torch.allclose(one['inputs'][0, 0, :, 0, 0],
                          torch.tensor([-0.5, -0.5, -0.375]))
    # defaults: identity
    ident = InstanceDataPreprocessor()(dict(inputs=inputs), training=True)
    assert torch.equal(ident['inputs'], torch.stack(inputs))
    with pytest.raises(ValueError):
        pre(dict(inputs=[torch.zeros(2, 4, 4, 4)]))


def test_model_preprocessor_then_loss():
    torch.manual_seed(0)
    model = build(data_preprocessor=dict(type='InstanceDataPreprocessor',
                                         mean=[0., 0., 0.],
                                         std=[1., 1., 1.],
                                         channels_last=True))
    data = dict(inputs=[torch.randn(2, 3, SIZE, SIZE) for _ in range(2)],
                data_samples=samples([0, 1]))
    data = model.data_preprocessor(data, True)
    assert data['inputs'].shape == (2, 2, 3, SIZE, SIZE)
    losses = model(**data, mode='loss')
    assert torch.isfinite(total(losses))


# --------------------------------------------------------------------------
# MRD targets (align_target), assignment statistics, position encoding
# --------------------------------------------------------------------------
def test_literal_target_is_eq8_softmax_of_cosines():
    head = MODELS.build(dict(TINY_MRD, temperature=0.5))
    sim = torch.rand(2, 4, 3, 3) * 2 - 1
    assert torch.allclose(head.target_assignments(sim), (sim / 0.5).softmax(1))


def test_sharpen_target_is_sharper_and_centers_move():
    head = MODELS.build(dict(TINY_MRD, align_target='sharpen', temperature=0.1,
                             teacher_temperature=0.04, center_momentum=0.9))
    head.train()
    sim = torch.rand(2, 4, 3, 3) * 2 - 1
    sim[:, 0] += 0.5  # query 0 is everyone's favourite
    p = head.target_assignments(sim)
    # First call: center 0, so the target is softmax(S / 0.04).
    assert torch.allclose(p, (sim / 0.04).softmax(1), atol=1e-6)
    ent = RegionDiscoveryHead.assignment_stats
    assert ent(p)['mrd_entropy_pixel'] < ent((sim / 1.0).softmax(1))['mrd_entropy_pixel']
    expect = 0.1 * sim.mean(dim=(0, 2, 3)).reshape(1, 4, 1, 1)
    assert torch.allclose(head.center, expect, atol=1e-6)
    # The center removes the favourite's lead: fewer pixels go to query 0.
    for _ in range(50):
        q = head.target_assignments(sim)
    assert q.argmax(1).eq(0).float().mean() < p.argmax(1).eq(0).float().mean()
    head.eval()
    before = head.center.clone()
    head.target_assignments(sim)
    assert torch.equal(head.center, before)  # no update outside training


def test_sinkhorn_target_equipartitions_the_batch():
    head = MODELS.build(dict(TINY_MRD, align_target='sinkhorn',
                             teacher_temperature=0.05, sinkhorn_iters=50))
    sim = torch.rand(4, 4, 3, 3) * 2 - 1
    sim[:, 0] += 1.0
    q = head.target_assignments(sim)
    assert torch.allclose(q.sum(1), torch.ones(4, 3, 3), atol=1e-4)
    share = q.mean(dim=(0, 2, 3))
    assert torch.allclose(share, torch.full((4, ), 0.25), atol=1e-3)
    # The literal target gives query 0 most of the mass instead.
    assert (sim / 0.05).softmax(1).mean(dim=(0, 2, 3))[0] > 0.5


def test_assignment_stats_hand_values():
    stats = RegionDiscoveryHead.assignment_stats
    uniform = torch.full((2, 4, 3, 3), 0.25)
    s = stats(uniform)
    assert s['mrd_entropy_pixel'].item() == pytest.approx(math.log(4), abs=1e-6)
    assert s['mrd_entropy_batch'].item() == pytest.approx(math.log(4), abs=1e-6)
    onehot = F.one_hot(torch.tensor([[0, 1, 2], [3, 0, 1], [2, 3, 0]]), 4)
    onehot = onehot.permute(2, 0, 1)[None].float()        # (1, 4, 3, 3)
    s = stats(onehot)
    assert s['mrd_entropy_pixel'].item() == pytest.approx(0.0, abs=1e-6)
    marg = torch.tensor([3, 2, 2, 2]) / 9.0
    assert s['mrd_entropy_batch'].item() == pytest.approx(
        float(-(marg * marg.log()).sum()), abs=1e-6)
    assert s['mrd_queries_used'].item() == 4
    assert stats(torch.zeros(1, 4, 2, 2).index_fill_(1, torch.tensor([2]), 1.0)
                 )['mrd_queries_used'].item() == 1


@pytest.mark.parametrize('kwargs, match', [
    (dict(align_target='dino'), 'align_target'),
    (dict(temperature=0.0), 'temperature must be > 0'),
    (dict(teacher_temperature=-1.0), 'teacher_temperature must be > 0'),
    (dict(center_momentum=1.0), 'center_momentum'),
    (dict(sinkhorn_iters=0), 'sinkhorn_iters'),
])
def test_bad_mrd_option_is_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(TINY_MRD, **kwargs))


@pytest.mark.parametrize('target', ['literal', 'sharpen', 'sinkhorn'])
def test_model_losses_and_stats_with_each_target(target):
    model = MODELS.build(dict(
        type='RaICLRecognizer', backbone=TINY_BACKBONE, num_classes=3,
        mrd_head=dict(TINY_MRD, align_target=target, temperature=0.1),
        augment_online=NO_AUG, augment_target=dict(NO_AUG, flip=True)))
    model.init_weights()
    x = torch.randn(4, 2, 3, SIZE, SIZE)
    ds = [ActionDataSample().set_gt_label(i % 3) for i in range(4)]
    losses = model.loss(x, ds)
    for key in ('loss_align', 'mrd_entropy_pixel', 'mrd_entropy_batch',
                'mrd_queries_used'):
        assert torch.isfinite(losses[key])
    assert 0 < losses['mrd_queries_used'].item() <= 4
    sum(v for k, v in losses.items() if k.startswith('loss')).backward()
    assert model.online.region.queries.weight.grad is not None


def test_literal_eq8_cannot_leave_uniform_but_sharpen_can():
    """The defect of issue 11: with the printed Eq. 8-9 the per-pixel CE between
    two softmaxes of bounded cosines is minimised by (near) uniform
    assignments, so L_align sits near ln N; a sharpened target pulls it down."""
    torch.manual_seed(0)
    results = {}
    for target, temp in (('literal', 1.0), ('sharpen', 0.1)):
        enc = MultiRegionEncoder(8, num_queries=4, embed_dim=16, proj_hidden=16,
                                 num_decoder_layers=1, num_heads=2,
                                 temperature=temp)
        head = MODELS.build(dict(TINY_MRD, align_target=target, temperature=temp))
        head.train()
        opt = torch.optim.Adam(enc.parameters(), lr=1e-2)
        feats = torch.randn(8, 8, 4, 4)
        for _ in range(60):
            out = enc(feats)
            loss = head.loss_align(out['logits'],
                                   head.target_assignments(out['sim'].detach()))
            opt.zero_grad()
            loss.backward()
            opt.step()
        results[target] = (loss.item(), head.assignment_stats(out['probs']))
    lit_loss, lit = results['literal']
    sh_loss, sh = results['sharpen']
    assert lit_loss > 0.8 * math.log(4)            # stays near ln N
    assert lit['mrd_entropy_pixel'] > 0.8 * math.log(4)
    assert sh['mrd_entropy_pixel'] < 0.5 * lit['mrd_entropy_pixel']
    assert sh_loss < 0.5 * lit_loss


def test_sine_position_is_mmpretrain_helper_in_row_major_order():
    from mmpretrain.models.utils import build_2d_sincos_position_embedding
    from raicl_mm.models.heads.region_discovery import sine_position_encoding
    h, w, d = 3, 5, 8
    pe = sine_position_encoding(h, w, d)
    assert pe.shape == (h * w, d)
    assert torch.equal(pe, build_2d_sincos_position_embedding((w, h), d)[0])
    # Row-major: pixel (y, x) at y * w + x; first half encodes y, second x.
    q = d // 4
    omega = 1.0 / (10000 ** (torch.arange(q, dtype=torch.float32) / q))
    for y, x in ((0, 0), (2, 1), (1, 4)):
        row = pe[y * w + x]
        assert torch.allclose(row[:q], torch.sin(y * omega), atol=1e-6)
        assert torch.allclose(row[q:2 * q], torch.cos(y * omega), atol=1e-6)
        assert torch.allclose(row[2 * q:3 * q], torch.sin(x * omega), atol=1e-6)
        assert torch.allclose(row[3 * q:], torch.cos(x * omega), atol=1e-6)
    with pytest.raises(ValueError, match='divisible by 4'):
        sine_position_encoding(2, 2, 6)


# --------------------------------------------------------------------------
# FlowNormalize (the model's input scale)
# --------------------------------------------------------------------------
def test_flow_normalize_keeps_a_motionless_instance_near_zero():
    import numpy as np
    from raicl_mm.datasets.transforms import FlowNormalize
    x = np.zeros((2, 16, 16, 3), np.float32)
    x[0, 5, 5, 0] = 1e-4                         # sensor-level residue only
    x[1, 4:8, 4:8, :2] = 0.5                     # a real motion of 0.5 px
    for mode in ('standardize', 'max_abs'):
        out = FlowNormalize(mode).transform({'imgs': x.copy()})['imgs']
        assert np.abs(out[0]).max() < 0.02, mode  # floor 0.01: stays ~0
        assert np.abs(out[1]).max() > 0.5, mode   # a real motion keeps its scale
        raw = FlowNormalize(mode, floor=0).transform({'imgs': x.copy()})['imgs']
        assert np.abs(raw[0]).max() > 0.9, mode   # unguarded: blown up
    std = FlowNormalize('standardize').transform({'imgs': x.copy()})['imgs'][1]
    assert np.allclose(std[..., 0].std(), 1.0, atol=1e-3)
    with pytest.raises(ValueError, match='floor must be >= 0'):
        FlowNormalize('standardize', floor=-1)


# ------------------------------------------- MRD switches (diagnosis, readings)
def _mrd_losses(seed=0, **mrd):
    torch.manual_seed(seed)
    model = build(mrd_head=dict(TINY_MRD, **mrd), cam_head=None)
    model.init_weights()
    model.train()
    torch.manual_seed(seed + 1)
    return model, model.loss(pair_batch(b=4), samples([0, 1, 2, 0]))


def test_mrd_sum_directions_false_halves_both_terms():
    _, summed = _mrd_losses(sum_directions=True)
    _, mean = _mrd_losses()          # the default: direction means
    for key in ('loss_align', 'loss_c'):
        assert torch.allclose(mean[key], summed[key] / 2, rtol=1e-5), key
    assert torch.allclose(mean['loss_cls'], summed['loss_cls'])


def test_mrd_loss_terms_select_align_or_consistency():
    _, align = _mrd_losses(loss_terms=['align'])
    _, both = _mrd_losses()
    _, c_only = _mrd_losses(loss_terms=('c', ))
    assert 'loss_align' in align and 'loss_c' not in align
    assert 'loss_c' in c_only and 'loss_align' not in c_only
    assert torch.allclose(align['loss_align'], both['loss_align'])
    assert torch.allclose(c_only['loss_c'], both['loss_c'])
    with pytest.raises(ValueError, match='loss_terms'):
        build(mrd_head=dict(TINY_MRD, loss_terms=('align', 'cls')))
    with pytest.raises(ValueError, match='loss_terms'):
        build(mrd_head=dict(TINY_MRD, loss_terms=()))


def _backbone_grad(model, loss):
    params = [p for p in model.online.backbone.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, retain_graph=True,
                                allow_unused=True)
    return sum(float(g.abs().sum()) for g in grads if g is not None)


def test_mrd_detach_input_keeps_mrd_out_of_the_backbone():
    model, losses = _mrd_losses()
    assert _backbone_grad(model, losses['loss_c']) > 0
    assert _backbone_grad(model, losses['loss_align']) > 0
    model, losses = _mrd_losses(detach_input=True)
    assert _backbone_grad(model, losses['loss_c']) == 0
    assert _backbone_grad(model, losses['loss_align']) == 0
    # MRD's own encoder still trains, and L_cls still reaches the backbone
    enc = [p for p in model.online.region.parameters() if p.requires_grad]
    g = torch.autograd.grad(losses['loss_c'], enc, retain_graph=True,
                            allow_unused=True)
    assert any(x is not None and float(x.abs().sum()) > 0 for x in g)
    assert _backbone_grad(model, losses['loss_cls']) > 0


def test_grad_probe_logs_each_terms_backbone_gradient_and_changes_nothing():
    torch.manual_seed(0)
    model = build(mrd_head=TINY_MRD, grad_probe_interval=2)
    model.init_weights()
    model.train()
    x, ds = pair_batch(b=4), samples([0, 1, 2, 0])
    torch.manual_seed(1)
    model.reseed_streams(1)
    first = model.loss(x, ds)
    assert {'grad_cls', 'grad_acl', 'grad_align', 'grad_c'} <= set(first)
    assert all(float(first[k]) > 0 for k in first if k.startswith('grad_'))
    assert not any('loss' in k for k in first if k.startswith('grad_'))
    assert all(p.grad is None for p in model.parameters())
    torch.manual_seed(1)
    model.reseed_streams(1)
    second = model.loss(x, ds)        # call 2: not a probe iteration
    assert not any(k.startswith('grad_') for k in second)
    # the probe's figure is the gradient of that term alone
    params = [p for p in model.online.backbone.parameters() if p.requires_grad]
    g = torch.autograd.grad(second['loss_cls'], params, allow_unused=True,
                            retain_graph=True)
    norm = sum(float(t.pow(2).sum()) for t in g if t is not None) ** 0.5
    assert norm == pytest.approx(float(first['grad_cls']), rel=1e-4)
    with pytest.raises(ValueError, match='grad_probe_interval'):
        build(grad_probe_interval=-1)


# ------------------------------------ paired initial weights (benchmark v3)
def _shared_state(model):
    return {k: v.clone() for k, v in model.online.state_dict().items()
            if k.startswith(('backbone.', 'fc.'))}


def test_paired_initial_weights_do_not_depend_on_the_heads():
    """M2 (no IRC, no MRD) and M6 (both) at one seed: bit-identical backbone
    and FC at step 0, and the same augmentation draws, whatever was built
    before them or in between."""
    states, draws = [], []
    for heads in (dict(cam_head=None, mrd_head=None), {},
                  dict(mrd_head=dict(TINY_MRD, num_queries=8))):
        torch.manual_seed(3)
        torch.randn(7)            # other consumers of the global stream
        model = build(**heads)
        torch.randn(11)
        model.init_weights()
        states.append(_shared_state(model))
        model.reseed_streams(5)
        x = pair_batch(b=4)[:, 0]
        draws.append(model.augment_online(x))
    for other in states[1:]:
        assert other.keys() == states[0].keys()
        for k in states[0]:
            assert torch.equal(states[0][k], other[k]), k
    for d in draws[1:]:
        assert torch.equal(draws[0], d)
    # the target branch starts as the online one
    model = build()
    model.init_weights()
    for k, v in model.target_branch.state_dict().items():
        assert torch.equal(v, model.online.state_dict()[k]), k


def test_init_seed_is_a_second_draw_and_the_run_seed_the_default():
    torch.manual_seed(3)
    a = build(cam_head=None, mrd_head=None)
    b = build(cam_head=None, mrd_head=None, init_seed=3)
    c = build(cam_head=None, mrd_head=None, init_seed=4)
    for m in (a, b, c):
        m.init_weights()
    sa, sb, sc = _shared_state(a), _shared_state(b), _shared_state(c)
    assert a.init_seed == 3
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa['backbone.conv1.weight'],
                           sc['backbone.conv1.weight'])


def test_epoch_seed_hook_reseeds_the_branch_streams():
    from types import SimpleNamespace

    from raicl_mm.engine.hooks import EpochSeedHook
    model = build(cam_head=None, mrd_head=None)
    x = pair_batch(b=4)[:, 0]
    runner = SimpleNamespace(seed=2, epoch=3, model=model)
    EpochSeedHook().before_train_epoch(runner)
    first = model.augment_online(x)
    model.augment_online(x)            # the stream moves on
    EpochSeedHook().before_train_epoch(runner)
    assert torch.equal(model.augment_online(x), first)


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


def test_predict_scores_the_teacher_beside_the_student():
    torch.manual_seed(0)
    model = build()
    model.init_weights()
    with torch.no_grad():
        for p in model.online.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.eval()
    x = pair_batch(b=3)[:, 0]
    out = model.predict(x, samples([0, 1, 2]))
    for ds in out:
        assert ds.target_pred_score.shape == ds.pred_score.shape
    tgt = model.instance_scores(x, branch=model.target_branch)[:, 0]
    assert torch.allclose(torch.stack([d.target_pred_score for d in out]), tgt)
    assert not torch.allclose(tgt, torch.stack([d.pred_score for d in out]))
    quiet = build(score_target=False)
    quiet.eval()
    assert 'target_pred_score' not in quiet.predict(x, samples([0, 1, 2]))[0]


def test_mrd_batch_mean_embeddings_compares_batch_prototypes():
    torch.manual_seed(0)
    head = MODELS.build(dict(TINY_MRD, batch_mean_embeddings=True))
    plain = MODELS.build(dict(TINY_MRD))
    plain.load_state_dict(head.state_dict())
    head.eval(), plain.eval()
    g = torch.Generator().manual_seed(2)
    z_on, z_tg = (torch.randn(5, 4, 16, generator=g) for _ in range(2))
    out = head.loss_consistency(z_on, z_tg)
    ref = plain.loss_consistency(z_on.mean(0, keepdim=True),
                                 z_tg.mean(0, keepdim=True))
    assert torch.allclose(out, ref)
    assert not torch.allclose(out, plain.loss_consistency(z_on, z_tg))


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
