"""Unit tests of the Siamese recognizer (paper Sec. 3.2, Eq. 15): gradients, the
loss weights, predict modes, composition with other backbones, the data
preprocessor, paired initial weights and teacher scoring.

Every expected value is computed independently of the code under test (by
hand on tiny tensors, or by an explicit loop), so each test can fail.
"""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import raicl_mm  # noqa: F401  (compat fixes + registration)
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope

init_default_scope('mmaction')

from mmaction.registry import MODELS  # noqa: E402
from raicl_mm.models import InstanceDataPreprocessor, hflip  # noqa: E402

# tiny_model_env: autouse (the registry scope, one intra-op thread)
from model_parts import (tiny_model_env, NO_AUG, SIZE, TINY_MRD, build,  # noqa: E402,F401
                         pair_batch, samples, total)


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
