"""Unit tests of the engine hooks: the EMA target update (paper Eq. 3) and the
per-epoch seeds.

Every expected value is computed independently of the code under test (by
hand on tiny tensors, or by an explicit loop), so each test can fail.
"""
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

import raicl_mm  # noqa: F401  (compat fixes + registration)
from mmengine.registry import init_default_scope

init_default_scope('mmaction')

from mmaction.registry import HOOKS  # noqa: E402
from raicl_mm.engine.hooks import EpochSeedHook, TargetEMAHook  # noqa: E402

# tiny_model_env: autouse (the registry scope, one intra-op thread)
from model_parts import (tiny_model_env, build, pair_batch, samples, total)  # noqa: E402,F401


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
