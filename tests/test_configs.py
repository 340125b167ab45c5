"""Every shipped config loads, builds its real model and trains one iteration.

Configs are discovered at test time (every folder of configs/ but _base_), so new ones are covered automatically.
"""
import glob
import os.path as osp

import pytest
import torch

import raicl_mm  # noqa: F401
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

from mmaction.registry import HOOKS, MODELS
from mmaction.structures import ActionDataSample

from raicl_mm.engine.config import check_config, data_settings

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                                      recursive=True)
                 # spotting/ configs drive tools/str_benchmark.py, not a
                 # recognizer (tests/test_spotting*.py load them)
                 if not {'_base_', 'spotting'} & set(p.split(osp.sep)))
BATCH = 2


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    """Tiny tensors: one intra-op thread is faster, and much faster on a
    loaded 2-core machine (no OpenMP spin-waiting); restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _ids(paths):
    return [osp.relpath(p, osp.join(ROOT, 'configs')) for p in paths]


def test_configs_discovered():
    names = _ids(CONFIGS)
    assert 'raicl_synthetic.py' in names and 'raicl_cde.py' in names
    assert not any(n.startswith('_base_') for n in names)


def _hw(size):
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


@pytest.mark.parametrize('path', CONFIGS, ids=_ids(CONFIGS))
def test_config_trains_one_iteration(path):
    cfg = Config.fromfile(path)
    check_config(cfg)  # no dead top-level key, loaders agree
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    num_classes = cfg.model.num_classes
    assert model.online.fc.out_features == num_classes
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    hooks = [HOOKS.build(h) for h in cfg.get('custom_hooks', [])]
    ema = [h for h in hooks if type(h).__name__ == 'TargetEMAHook']

    h, w = _hw(data_settings(cfg)['flow_cfg']['size'])
    inputs = [torch.randn(2, 3, h, w) for _ in range(BATCH)]
    data_samples = []
    for i in range(BATCH):
        ds = ActionDataSample()
        ds.set_gt_label(i % num_classes)
        data_samples.append(ds)
    data = dict(inputs=inputs, data_samples=data_samples)

    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    log_vars = model.train_step(data, optim_wrapper)
    assert 'loss' in log_vars and torch.isfinite(
        torch.as_tensor(log_vars['loss']))
    for key in ('loss_cls', 'loss_acl', 'loss_align', 'loss_c'):
        weight = {'loss_cls': cfg.model.get('cls_loss_weight', 0.5),
                  'loss_acl': (cfg.model.get('cam_head') or {}).get(
                      'loss_weight', 0.5),
                  'loss_align': (cfg.model.get('mrd_head') or {}).get(
                      'loss_weight', 0.5),
                  'loss_c': (cfg.model.get('mrd_head') or {}).get(
                      'loss_weight', 0.5)}[key]
        head = {'loss_acl': 'cam_head', 'loss_align': 'mrd_head',
                'loss_c': 'mrd_head'}.get(key)
        enabled = weight and (head is None or cfg.model.get(
            head, 'default') is not None)
        assert (key in log_vars) == bool(enabled), key
    after = dict(model.named_parameters())
    changed = [k for k in before if k.startswith('online.')
               and not torch.equal(before[k], after[k])]
    assert changed, 'the optimizer step changed no online parameter'
    # the optimizer never moves the target branch; the EMA hook does
    for k in before:
        if k.startswith('target.'):
            assert torch.equal(before[k], after[k]), k
    if ema:
        class Runner:  # the part of mmengine's Runner that the hook reads
            iter = 0
        runner = Runner()
        runner.model = model
        ema[0].before_run(runner)
        ema[0].after_train_iter(runner, 0)
        tau = model.tau
        k = 'fc.weight'
        expected = tau * before['target.module.' + k] + \
            (1 - tau) * after['online.' + k].detach()
        assert torch.allclose(model.target_branch.fc.weight, expected,
                              atol=1e-6)


# Seed 004's apex noise (STD in 200-fps CASME II frames) scaled to the
# benchmark's clip length: STD x 20.99 / 67.21 (the configs' comments).
CASME2_MEAN_LEN = 67.21   # onset->offset, frames (reference sheet)
BENCHMARK_MEAN_LEN = 20.99  # the same on benchmark v2's 320 clips


@pytest.mark.parametrize('method', ['m1', 'm3', 'm7'])
@pytest.mark.parametrize('std', [10, 20, 30])
def test_benchmark_robust_noise_is_scaled(method, std):
    path = osp.join(ROOT, 'configs', 'benchmark', 'robust',
                    f'{method}_std{std}.py')
    cfg = Config.fromfile(path)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        sampling = cfg[loader].dataset.sampling
        assert sampling.apex_jitter_std == round(
            std * BENCHMARK_MEAN_LEN / CASME2_MEAN_LEN, 2)
        assert sampling.strategy == {'m1': 'apex_single', 'm3': 'apex_single',
                                     'm7': 'apex_window'}[method]
    assert (cfg.model.mrd_head is None) == (method == 'm1')


def test_casme2_mean_clip_length_matches_reference_sheet():
    sheet = osp.join(ROOT, '..', 'shared', 'reference', 'annotations',
                     'CASME2-coding-20190701.xlsx')
    if not osp.isfile(sheet):
        pytest.skip('the reference CASME II sheet (../shared) is not here')
    import pandas as pd
    d = pd.read_excel(sheet)
    onset = pd.to_numeric(d['OnsetFrame'], errors='coerce')
    offset = pd.to_numeric(d['OffsetFrame'], errors='coerce')
    assert round(float((offset - onset + 1).mean()), 2) == CASME2_MEAN_LEN
