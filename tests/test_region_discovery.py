"""Unit tests of MRD, multi-region discovery with learnable facial queries
(paper Sec. 3.4, Eq. 7-14), its targets and its switches.

Every expected value is computed independently of the code under test (by
hand on tiny tensors, or by an explicit loop), so each test can fail.
"""
import math

import pytest
import torch
import torch.nn.functional as F

import raicl_mm  # noqa: F401  (compat fixes + registration)
from mmengine.registry import init_default_scope

init_default_scope('mmaction')

from mmaction.registry import MODELS  # noqa: E402
from mmaction.structures import ActionDataSample  # noqa: E402
from raicl_mm.models import MultiRegionEncoder, RegionDiscoveryHead  # noqa: E402

# tiny_model_env: autouse (the registry scope, one intra-op thread)
from model_parts import (tiny_model_env, NO_AUG, SIZE, TINY_BACKBONE,  # noqa: E402,F401
                         TINY_MRD, build, pair_batch, samples)


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


def _cosine_head(shift_factor, scale_factor):
    """A small MRD head whose L_c is mmpretrain's CosineSimilarityLoss
    ``scale * (shift - cos)``, in eval mode, and a (2, 3, 8) batch of z."""
    torch.manual_seed(0)
    head = RegionDiscoveryHead(
        num_queries=3, embed_dim=8, pred_hidden=8,
        consistency_loss=dict(type='mmpretrain.CosineSimilarityLoss',
                              shift_factor=shift_factor,
                              scale_factor=scale_factor))
    head.eval()
    return head, torch.randn(2, 3, 8)


def test_consistency_byol_form():
    head, z = _cosine_head(2.0, 2.0)
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
    head, z = _cosine_head(0.0, 1.0)
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
