"""CAM / Grad-CAM pictures: raicl_mm.visualization.cam and tools/visualize.py."""
import json

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import raicl_mm  # noqa: F401
from raicl_mm.visualization.cam import (cam_maps, grad_cam, guided_grad_cam,
                                        instance_strip, mask_mass, overlay)

from conftest import run_tool


# --------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------
@pytest.fixture(scope='module')
def tiny_model():
    from mmaction.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='RaICLRecognizer', num_classes=3, cam_head=None, mrd_head=None,
        backbone=dict(type='mmpretrain.ResNet', depth=18, out_indices=(3, ),
                      stem_channels=8, base_channels=8,
                      strides=(1, 2, 2, 1))))
    model.init_weights()
    # Non-trivial classifier so that the classes' CAMs differ clearly.
    with torch.no_grad():
        model.online.fc.weight.normal_()
    return model


def _no_param_grads(model):
    return all(p.grad is None for p in model.parameters())


class PatternBranch(nn.Module):
    """Features = two input channels (a 1x1 conv picking them); the head is
    a max-pool + FC, so the gradient is not uniform over the map."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1, bias=False)
        self.fc = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, 0] = 1.0
            self.conv.weight[1, 1] = 1.0
            self.fc.weight.copy_(torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))

    def forward_features(self, x):
        return self.conv(x)

    def forward_head(self, feats):
        return self.fc(feats.amax(dim=(2, 3)))


def _pattern_input():
    x = torch.zeros(1, 3, 8, 8)
    x[0, 0, 2, 5] = 3.0   # class 0's channel: a bump at (2, 5)
    x[0, 1, 6, 1] = 2.0   # class 1's channel: a bump at (6, 1)
    return x


# --------------------------------------------------------------------------
# maps
# --------------------------------------------------------------------------
def test_cam_maps_matches_eq5(tiny_model):
    torch.manual_seed(1)
    x = torch.randn(3, 3, 32, 32)
    got = cam_maps(tiny_model, x)
    tiny_model.eval()
    with torch.no_grad():
        feats = tiny_model.online.forward_features(x)
        logits = tiny_model.online.forward_head(feats)
        w = tiny_model.online.fc.weight
        pred = logits.argmax(1)
        want = []
        for b in range(3):
            m = (w[pred[b]][:, None, None] * feats[b]).sum(0)      # Eq. 5
            m = F.interpolate(m.clamp(min=0)[None, None], size=(32, 32),
                              mode='bilinear', align_corners=False)[0, 0]
            want.append((m / m.max()).numpy())
    assert got.shape == (3, 32, 32) and got.dtype == np.float32
    np.testing.assert_allclose(got, np.stack(want), atol=1e-5)
    assert got.min() >= 0 and np.allclose(got.reshape(3, -1).max(1), 1)
    # An explicit class differs from another class's map.
    assert not np.allclose(cam_maps(tiny_model, x, 0), cam_maps(tiny_model, x, 1))


def test_grad_cam_peaks_at_pattern_and_leaves_no_grads():
    branch = PatternBranch()
    x = _pattern_input()
    for cls, peak in ((0, (2, 5)), (1, (6, 1))):
        heat = grad_cam(branch, x, cls)
        assert heat.shape == (1, 8, 8)
        assert np.unravel_index(heat[0].argmax(), (8, 8)) == peak
        assert heat[0].max() == pytest.approx(1.0)
        # The other class's bump gets no attention (negative weight, ReLU).
        other = (6, 1) if cls == 0 else (2, 5)
        assert heat[0][other] == pytest.approx(0.0, abs=1e-6)
    assert _no_param_grads(branch)
    # The predicted class (default) of this input is class 0.
    np.testing.assert_allclose(grad_cam(branch, x), grad_cam(branch, x, 0))


def test_grad_cam_on_recognizer(tiny_model):
    tiny_model.train()
    x = torch.randn(2, 3, 32, 32)
    last = grad_cam(tiny_model, x, 1)
    # GAP + FC head: Grad-CAM of the last map equals the CAM (up to scale).
    np.testing.assert_allclose(last, cam_maps(tiny_model, x, 1), atol=1e-5)
    earlier = grad_cam(tiny_model, x, 1, target_layer='backbone.layer3')
    guided = guided_grad_cam(tiny_model, x, 1)
    for h in (earlier, guided):
        assert h.shape == (2, 32, 32) and np.isfinite(h).all()
        assert h.min() >= 0 and h.max() <= 1
    assert _no_param_grads(tiny_model)
    assert tiny_model.training and tiny_model.online.backbone.training
    relus = [m for m in tiny_model.modules() if isinstance(m, nn.ReLU)]
    assert relus and all(m.inplace for m in relus)  # restored
    with pytest.raises(KeyError, match='nope'):
        grad_cam(tiny_model, x, target_layer='nope')


# --------------------------------------------------------------------------
# scores and pictures
# --------------------------------------------------------------------------
def test_mask_mass():
    mask = np.zeros((10, 10), bool)
    mask[2:6, 3:8] = True                       # area 20 / 100
    heat = np.zeros((10, 10))
    heat[3, 4] = 1.0
    heat[5, 7] = 0.5
    assert mask_mass(heat, mask) == pytest.approx(1.0)
    assert mask_mass(np.ones((10, 10)), mask) == pytest.approx(0.2)
    assert mask_mass(1 - mask.astype(float), mask) == pytest.approx(0.0)
    # The mask is resized (nearest) to the heat's size.
    big = np.kron(mask, np.ones((4, 4), bool))  # 40 x 40
    assert mask_mass(np.ones((10, 10)), big) == pytest.approx(0.2)
    assert mask_mass(heat, big.astype(np.uint8) * 255) == pytest.approx(1.0)
    assert np.isnan(mask_mass(np.zeros((10, 10)), mask))


def test_overlay_and_strip():
    base = np.full((20, 30, 3), 128, np.uint8)
    heat = np.linspace(0, 1, 50).reshape(5, 10)
    out = overlay(heat, base, alpha=0.5)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    assert overlay(heat, base[..., 0]).shape == (20, 30, 3)
    assert np.array_equal(overlay(heat, base, alpha=0.0), base)

    rng = np.random.default_rng(0)
    inst = rng.normal(size=(3, 16, 16, 3)).astype(np.float16)
    heats = {'CAM': rng.uniform(size=(3, 16, 16)),
             'Grad-CAM': rng.uniform(size=(3, 8, 8))}
    strip = instance_strip(inst, heats, ['a', 'b', 'c'],
                           frame_numbers=[7, 5, 6], header='title', tile=40)
    assert strip.dtype == np.uint8 and strip.ndim == 3 and strip.shape[2] == 3
    assert strip.shape[0] >= 3 * 40 and strip.shape[1] >= 3 * 40
    # Columns follow the frame numbers: the first column is instance 1.
    sorted_strip = instance_strip(inst[[1, 2, 0]], {k: v[[1, 2, 0]] for k, v
                                                    in heats.items()},
                                  ['b', 'c', 'a'], header='title', tile=40)
    assert np.array_equal(strip, sorted_strip)
    with pytest.raises(ValueError):
        instance_strip(inst, heats, ['a', 'b'])


def test_strip_over_aligned_frames_with_region_outline():
    rng = np.random.default_rng(1)
    inst = rng.normal(size=(2, 16, 16, 3)).astype(np.float32)
    heats = {'CAM': np.zeros((2, 16, 16), np.float32)}
    frames = np.full((2, 16, 16), 200, np.uint8)
    frames[1] = 50
    mask = np.zeros((16, 16), np.uint8)
    mask[4:12, 4:12] = 1
    tile = 32
    strip = instance_strip(inst, heats, ['a', 'b'], tile=tile, frames=frames,
                           outline=mask)
    plain = instance_strip(inst, heats, ['a', 'b'], tile=tile)
    # One more row (the aligned frame) than without frames.
    assert strip.shape[0] == plain.shape[0] + tile + 4
    # The frame row shows the frames; the zero CAM over them keeps their
    # grey (JET's dark blue blended at 0.5), different per instance.
    x0, y0 = 136 + 4, 20 + 4
    assert (strip[y0 + 2, x0 + 2] == 200).all()
    assert (strip[y0 + 2, x0 + tile + 4 + 2] == 50).all()
    cam_y = y0 + 2 * (tile + 4)
    a = strip[cam_y + 1, x0 + 1].astype(int)
    b = strip[cam_y + 1, x0 + tile + 4 + 1].astype(int)
    assert a.sum() > b.sum() + 100
    # The outline: white pixels on the region's border only.
    cam = strip[cam_y:cam_y + tile, x0:x0 + tile]
    white = (cam == 255).all(axis=2)
    assert white[8, 8:24].any() and not white[16, 16]
    assert not white[0:4, 0:4].any()
    with pytest.raises(ValueError, match='frames'):
        instance_strip(inst, heats, ['a', 'b'], frames=frames[:1])


def test_pictures_go_through_the_mmengine_visualizer(tmp_path):
    from mmengine.visualization import Visualizer

    from raicl_mm.visualization import add_image, plot_confusion
    from raicl_mm.visualization.publish import current_visualizer
    img = np.zeros((10, 12, 3), np.uint8)
    img[..., 0] = 255  # blue in BGR
    vis = Visualizer(name='raicl_test_publish',
                     vis_backends=[dict(type='LocalVisBackend')],
                     save_dir=str(tmp_path / 'run'))
    assert add_image('cam_x', img, step=3, visualizer=vis)
    saved = tmp_path / 'run' / 'vis_data' / 'vis_image' / 'cam_x_3.png'
    back = cv2.imread(str(saved))
    assert back is not None and (back[..., 0] == 255).all() and \
        (back[..., 2] == 0).all()  # the BGR -> RGB -> BGR round trip
    # A run's visualizer (built through get_instance, as the Runner does)
    # gets the confusion matrix that the report draws.
    from mmengine.logging import MessageHub
    MessageHub.get_instance('raicl_test_run')  # as the Runner names both
    run_vis = Visualizer.get_instance(
        'raicl_test_run', vis_backends=[dict(type='LocalVisBackend')],
        save_dir=str(tmp_path / 'run2'))
    assert current_visualizer() is run_vis
    plot_confusion(np.array([[2, 1], [0, 3]]), ['a', 'b'], 't',
                   str(tmp_path / 'confusion_fold_x.png'), step=5)
    sent = tmp_path / 'run2' / 'vis_data' / 'vis_image' / \
        'confusion_confusion_fold_x_5.png'
    assert sent.is_file()
    with pytest.raises(ValueError, match='cam_bad'):
        add_image('cam_bad', np.zeros((4, 4, 2), np.uint8), visualizer=vis)


# --------------------------------------------------------------------------
# the tool, end to end
# --------------------------------------------------------------------------
@pytest.fixture(scope='module')
def trained(tiny_config, tmp_path_factory):
    work = tmp_path_factory.mktemp('vis_train')
    res = run_tool('train.py', tiny_config, '--fold', '0', '--work-dir', work)
    assert res.returncode == 0, res.stderr[-3000:]
    ckpt = work / 'epoch_2.pth'
    assert ckpt.is_file()
    return ckpt


def test_visualize_tool(tiny_config, trained, tmp_path):
    out = tmp_path / 'vis'
    res = run_tool('visualize.py', tiny_config, trained, '--fold', '0',
                   '--max-samples', '2', '--out', out)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((out / 'summary.json').read_text())
    assert len(summary['samples']) == 2
    for s in summary['samples']:
        assert s['sample_id'].startswith('casme2/01/')
        assert s['gt'] in ('negative', 'positive', 'surprise')
        assert s['pred'] in ('negative', 'positive', 'surprise')
        assert len(s['pictures']) == 2
        for pic in s['pictures']:
            img = cv2.imread(pic)
            assert img is not None and img.ndim == 3 and img.size > 0
        assert (out / (s['sample_id'].replace('/', '_') + '.png')).is_file()
        assert s['mask'].endswith('.png')
        # None = an all-zero CAM on every instance (no attention to place,
        # mask_mass's NaN): a 2-epoch tiny model can have one.
        for key in ('cam_in_mask', 'gradcam_in_mask'):
            assert s[key] is None or 0.0 <= s[key] <= 1.0
        assert 0.0 < s['mask_area'] < 1.0
        # The strip: frame, flow and 3 heat rows, over the aligned frames.
        strip = cv2.imread(s['pictures'][0])
        assert strip.shape[0] > 5 * 96
        assert s['frame_numbers'] == sorted(s['frame_numbers'])
    assert 0.0 <= summary['mean_cam_in_mask'] <= 1.0
    # The strips also went to the visualizer (LocalVisBackend under OUT).
    sent = list((out / 'vis_data' / 'vis_image').glob('cam_*_*.png'))
    assert len(sent) == 2
    assert 0.0 < summary['mean_mask_area'] < 1.0


def _tool_main(argv):
    """tools/visualize.py's main() in this process (no interpreter start)."""
    import importlib.util
    from conftest import REPO
    spec = importlib.util.spec_from_file_location(
        'visualize_tool', REPO / 'tools' / 'visualize.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main([str(a) for a in argv])


def test_visualize_tool_errors(tiny_config, trained, tmp_path, capsys):
    # An unknown sample id: one line, exit 2, naming it and valid ones.
    rc = _tool_main([tiny_config, trained, '--fold', '0', '--samples',
                     'casme2/01/NOPE', '--out', tmp_path / 'v2'])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert 'casme2/01/NOPE' in err[0]
    assert 'casme2/01/' in err[0].replace('casme2/01/NOPE', '')
    assert not (tmp_path / 'v2').exists()
    # A missing checkpoint, an unknown fold.
    rc = _tool_main([tiny_config, tmp_path / 'missing.pth'])
    err = capsys.readouterr().err
    assert rc == 2 and 'missing.pth' in err and 'does not exist' in err
    rc = _tool_main([tiny_config, trained, '--fold', 'sub77'])
    err = capsys.readouterr().err
    assert rc == 2 and 'sub77' in err


def test_every_picture_of_the_tool_reaches_the_event_file(tiny_config,
                                                          trained, tmp_path):
    """Each PNG the tool writes (strip and flow picture per sample) is an
    image of its TensorBoard event file: the visualizer is closed (flushed)
    before the tool returns."""
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    out = tmp_path / 'vis_tb'
    rc = _tool_main([tiny_config, trained, '--fold', '0', '--max-samples',
                     '3', '--out', out])
    assert rc == 0
    pngs = sorted(p.stem for p in out.glob('*.png'))
    assert len(pngs) == 6
    files = list((out / 'vis_data').glob('events.out.tfevents.*'))
    assert len(files) == 1
    acc = EventAccumulator(str(files[0]), size_guidance={'images': 0})
    acc.Reload()
    tags = acc.Tags()['images']
    assert sorted(tags) == sorted(
        ('flow_' + p[:-len('_flow')]) if p.endswith('_flow') else 'cam_' + p
        for p in pngs)
    summary = json.loads((out / 'summary.json').read_text())
    # Grad-CAM on layer3 by default: on the last map it repeats the CAM
    assert summary['gradcam_layer'] == 'backbone.layer3'
    flow = cv2.imread(summary['samples'][0]['pictures'][1])
    assert flow.shape[0] >= 256 and flow.shape[1] >= 256 + 64


def test_strip_legend_and_middle_mark():
    from raicl_mm.visualization.flow_colour import colour_wheel, flow_picture
    rng = np.random.default_rng(2)
    inst = rng.normal(size=(3, 16, 16, 3)).astype(np.float32)
    heats = {'CAM': rng.uniform(size=(3, 16, 16))}
    plain = instance_strip(inst, heats, ['a', 'b', 'c'], tile=40,
                           legend=False)
    keyed = instance_strip(inst, heats, ['a', 'b', 'c'], tile=40, mark=1,
                           notes=['a note'])
    assert keyed.shape[0] > plain.shape[0] + 80  # the key and two notes
    # the red frame around the middle column (BGR red)
    x = 136 + (40 + 4) + 4 - 2
    column = keyed[30:plain.shape[0] - 10, x]
    assert ((column[:, 2] > 200) & (column[:, 0] < 60)).mean() > 0.8
    wheel = colour_wheel(64)
    assert wheel.shape == (64, 64, 3) and (wheel[0, 0] == 255).all()
    pic = flow_picture(inst[0, ..., :2], size=256, title='t')
    assert pic.shape[0] >= 256 + 24 and pic.shape[1] >= 256 + 64
