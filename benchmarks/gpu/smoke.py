"""GPU suite, section ``smoke``: every path of the package on the device.

    python -m benchmarks.gpu.smoke --out OUT/smoke.json [--tiny] [--device D]

Checks, each pass/fail with its error text (``checks`` of the JSON):
``build`` (the model of configs/raicl_synthetic.py, RaICLRecognizer, on the
device), ``train_step`` (mmengine's ``model.train_step`` through
``InstanceDataPreprocessor`` and an ``OptimWrapper`` with Adam: the data's
move to the device, loss, backward, one optimizer step; the weights must
change), ``loss_terms`` (every loss finite), ``ema_hook`` (``TargetEMAHook``
after an iteration: target = tau * target + (1 - tau) * online, to float32
rounding), ``predict`` (scores on the device sum to 1), ``amp_bf16`` (a
step under bf16 autocast: mmengine's ``AmpOptimWrapper(dtype='bfloat16')`` on
CUDA, ``torch.autocast('cpu', bfloat16)`` on CPU; the convolutions must run
in bf16 and the loss be finite), ``tvl1_torch`` (the batched TV-L1 on a pair
on the device against the same solver on CPU: mean end-point error under
0.02 px), ``checkpoint`` (mmengine ``save_checkpoint`` with the message hub
as the Runner writes it, read back with raicl_mm's weights-only loader,
``load_checked`` into a fresh model on the device, identical outputs).
"""
from __future__ import annotations

import os
import os.path as osp
import sys
import tempfile

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

from benchmarks.gpu import _common as gc  # noqa: E402

TINY_MODEL = dict(backbone=dict(stem_channels=8, base_channels=8),
                  mrd_head=dict(embed_dim=16, proj_hidden=16, pred_hidden=16))


def body(sec: gc.Section, device: str) -> None:
    import torch
    os.chdir(gc.REPO)
    state = {}
    tiny = sec.data['tiny']
    size = 32 if tiny else 64
    batch = 4 if tiny else 16

    def build_model():
        import raicl_mm  # noqa: F401
        from mmaction.registry import MODELS
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        cfg = Config.fromfile(osp.join(gc.REPO, 'configs',
                                       'raicl_synthetic.py'))
        if tiny:
            cfg.merge_from_dict(dict(model=TINY_MODEL))
        init_default_scope(cfg.get('default_scope', 'mmaction'))
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        model.init_weights()
        return cfg, model.to(device)

    def data(n_views=2, seed=0):
        from mmaction.structures import ActionDataSample
        g = torch.Generator().manual_seed(seed)
        inputs = [torch.randn(n_views, 3, size, size, generator=g)
                  for _ in range(batch)]
        samples = [ActionDataSample().set_gt_label(i % 3)
                   for i in range(batch)]
        return dict(inputs=inputs, data_samples=samples)

    def c_build():
        cfg, model = build_model()
        state.update(cfg=cfg, model=model)
        n = sum(p.numel() for p in model.parameters())
        dev = {str(p.device) for p in model.parameters()}
        return dict(type=type(model).__name__, params=n, param_devices=sorted(
            dev), input_size=size, batch=batch,
            ok=all(d.startswith(device) for d in dev))

    def c_train_step():
        from mmengine.optim import OptimWrapper
        model = state['model'].train()
        opt = OptimWrapper(torch.optim.Adam(model.parameters(), lr=1e-3))
        state['optim'] = opt
        before = {k: v.detach().clone() for k, v in
                  model.named_parameters() if 'target' not in k}
        log = model.train_step(data(), opt)
        gc.sync(device)
        changed = sum(int(not torch.equal(before[k], v.detach()))
                      for k, v in model.named_parameters() if k in before)
        state['log'] = {k: float(v) for k, v in log.items()}
        return dict(losses=state['log'], params_changed=changed,
                    params_total=len(before), ok=changed > 0)

    def c_loss_terms():
        log = state['log']
        bad = [k for k, v in log.items() if not torch.isfinite(
            torch.tensor(v))]
        return dict(terms=sorted(log), not_finite=bad, ok=not bad)

    def c_ema_hook():
        from raicl_mm.engine.hooks import TargetEMAHook
        model = state['model']
        pairs = _online_target_pairs(model)
        if not pairs:
            raise RuntimeError('no online/target parameter pairs found')
        before = [(o.detach().clone(), t.detach().clone()) for o, t in pairs]

        class _Runner:
            iter = 0
        runner = _Runner()
        runner.model = model
        hook = TargetEMAHook(interval=1)
        hook.before_run(runner)
        # mmengine's EMA copies the online weights at its first update (its
        # step 0, as a Runner's first iteration): run that one, then test
        # the formula on the next.
        if int(model.target.steps) == 0:
            hook.after_train_iter(runner, 0)
            runner.iter = 1
            with torch.no_grad():
                for o, _ in pairs:
                    o.add_(0.01 * torch.randn_like(o))
            before = [(o.detach().clone(), t.detach().clone())
                      for o, t in pairs]
        hook.after_train_iter(runner, runner.iter)
        gc.sync(device)
        tau = float(getattr(model, 'tau', 0.99))
        err = 0.0
        moved = 0
        for (o0, t0), (_, t1) in zip(before, pairs):
            want = tau * t0.float() + (1 - tau) * o0.float()
            err = max(err, float((t1.detach().float() - want).abs().max()))
            moved += int(not torch.equal(t0, t1.detach()))
        return dict(tau=tau, pairs=len(pairs), moved=moved,
                    max_abs_err=err, ok=err < 1e-5 and moved > 0)

    def c_predict():
        model = state['model'].eval()
        with torch.no_grad():
            out = model.test_step(data(n_views=1, seed=1))
        scores = torch.stack([d.pred_score for d in out])
        sums = scores.sum(-1)
        return dict(samples=len(out), score_device=str(scores.device),
                    max_sum_err=float((sums - 1).abs().max()),
                    ok=len(out) == batch and float(
                        (sums - 1).abs().max()) < 1e-4)

    def c_amp():
        model = state['model'].train()
        seen = set()
        hooks = [m.register_forward_hook(
            lambda m, i, o: seen.add(str(o.dtype)))
            for m in model.modules() if isinstance(m, torch.nn.Conv2d)][:3]
        try:
            if device == 'cuda':
                from mmengine.optim import AmpOptimWrapper
                opt = AmpOptimWrapper(
                    optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
                    dtype='bfloat16', loss_scale='dynamic')
                log = model.train_step(data(seed=2), opt)
                how = "mmengine AmpOptimWrapper(dtype='bfloat16')"
            else:
                opt = torch.optim.Adam(model.parameters(), lr=1e-3)
                batch_ = model.data_preprocessor(data(seed=2), True)
                with torch.autocast('cpu', dtype=torch.bfloat16):
                    losses = model(**batch_, mode='loss')
                loss, log = model.parse_losses(losses)
                opt.zero_grad()
                loss.backward()
                opt.step()
                how = "torch.autocast('cpu', bfloat16) (mmengine's " \
                      'AmpOptimWrapper asserts CUDA)'
            gc.sync(device)
        finally:
            for h in hooks:
                h.remove()
        log = {k: float(v) for k, v in log.items()}
        finite = all(torch.isfinite(torch.tensor(v)) for v in log.values())
        return dict(how=how, conv_output_dtypes=sorted(seen), losses=log,
                    ok=finite and 'torch.bfloat16' in seen)

    def c_tvl1():
        import numpy as np
        from benchmarks.gpu.frames import make_pairs
        from raicl_mm.flow.tvl1_torch import tvl1_batch
        refs, tgts = make_pairs(2, 32 if tiny else 64)
        a, b = torch.from_numpy(refs), torch.from_numpy(tgts)
        on_dev = tvl1_batch(a, b, device=device)
        gc.sync(device)
        flow_dev = on_dev.cpu().numpy()
        flow_cpu = tvl1_batch(a, b, device='cpu').numpy()
        d = np.hypot(*(flow_dev - flow_cpu).transpose(3, 0, 1, 2))
        mag = float(np.hypot(*flow_cpu.transpose(3, 0, 1, 2)).mean())
        return dict(result_device=str(on_dev.device), pairs=2,
                    mean_flow_px=mag, mean_epe_vs_cpu_px=float(d.mean()),
                    max_epe_vs_cpu_px=float(d.max()),
                    ok=bool(np.isfinite(flow_dev).all()) and float(
                        d.mean()) < 0.02)

    def c_checkpoint():
        from mmengine.logging import MessageHub
        from mmengine.runner.checkpoint import save_checkpoint
        from raicl_mm.engine.checkpoint import load_checked
        model = state['model'].eval()
        hub = MessageHub.get_current_instance()
        hub.update_scalar('train/loss', 1.0)
        hub.update_scalar('train/loss', 0.5)
        ckpt = dict(meta=dict(epoch=1, iter=1, seed=0),
                    state_dict=model.state_dict(),
                    message_hub=hub.state_dict())
        if 'optim' in state:
            ckpt['optimizer'] = state['optim'].state_dict()
        with tempfile.TemporaryDirectory() as tmp:
            path = osp.join(tmp, 'epoch_1.pth')
            save_checkpoint(ckpt, path)
            _, fresh = build_model()
            torch.manual_seed(123)
            for p in fresh.parameters():  # make sure it is not equal
                p.data.add_(torch.randn_like(p))
            loaded = load_checked(fresh, path)
            fresh.eval()
            x = data(n_views=1, seed=3)
            with torch.no_grad():
                a = torch.stack([d.pred_score for d in model.test_step(x)])
                b = torch.stack([d.pred_score for d in fresh.test_step(x)])
            nbytes = os.path.getsize(path)
        diff = float((a - b).abs().max())
        return dict(bytes=nbytes, keys=sorted(loaded)[:8],
                    max_score_diff=diff, ok=diff == 0.0)

    sec.check('build', c_build)
    if 'model' not in state:
        for name in ('train_step', 'loss_terms', 'ema_hook', 'predict',
                     'amp_bf16', 'checkpoint'):
            sec.skip(name, 'the model could not be built (see build)')
            sec.failed = True
    else:
        sec.check('train_step', c_train_step)
        if 'log' in state:
            sec.check('loss_terms', c_loss_terms)
        else:
            sec.skip('loss_terms', 'train_step failed')
            sec.failed = True
        sec.check('ema_hook', c_ema_hook)
        sec.check('predict', c_predict)
        sec.check('amp_bf16', c_amp)
        sec.check('checkpoint', c_checkpoint)
    sec.check('tvl1_torch', c_tvl1)
    if device == 'cuda':
        sec.data['figures']['max_memory_allocated_mib'] = round(
            torch.cuda.max_memory_allocated() / 2 ** 20, 1)


def _online_target_pairs(model):
    """(online, target) parameter pairs the EMA updates: the recognizer's
    ``online`` branch and its ``target`` (mmengine
    ``ExponentialMovingAverage``) ``module``, matched by name."""
    online = dict(model.online.named_parameters())
    target = dict(model.target.module.named_parameters())
    return [(online[k], target[k]) for k in online if k in target]


def main(argv=None):
    args = gc.parse_args(__doc__.split('\n')[0], argv)
    return gc.run_section('smoke', args, body)


if __name__ == '__main__':
    sys.exit(main())
