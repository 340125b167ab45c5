"""The inference API and tools/infer.py on clips of a real face.

The clips come from tests/test_face.py's builder (matplotlib's photograph,
offset, rotated, a mouth warp growing and fading), written under tmp_path;
the checkpoint is a freshly built model saved with mmengine's
save_checkpoint.
"""
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip('dlib')

from conftest import write_random_checkpoint  # noqa: E402
from test_face import make_face_clip  # noqa: E402  (tests/ is on sys.path)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tools'))
import infer as infer_tool  # noqa: E402

CLASSES = ('negative', 'positive', 'surprise')

CONFIG = """
default_scope = 'mmaction'
custom_imports = dict(imports=['raicl_mm'], allow_failed_imports=False)
model = dict(
    type='RaICLRecognizer',
    backbone=dict(type='mmpretrain.ResNet', depth=18, out_indices=(3, ),
                  stem_channels=8, base_channels=8),
    num_classes=3,
    mrd_head=dict(type='RegionDiscoveryHead', embed_dim=16, proj_hidden=16,
                  pred_hidden=16))
test_pipeline = [
    dict(type='SampleInstancePair', test_mode=True),
    dict(type='FlowNormalize', mode='standardize'),
    dict(type='FormatInstances'),
    dict(type='PackActionInputs', meta_keys=('sample_id', ))
]
test_dataloader = dict(dataset=dict(
    type='MicroExpressionFlowDataset', protocol='casme2_3cls',
    flow_cfg=dict(method='farneback', size=(48, 48), face_crop='landmarks'),
    sampling=dict(strategy='middle', num_instances=5),
    pipeline=test_pipeline))
"""


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('infer')
    cfg_path = root / 'tiny_infer.py'
    cfg_path.write_text(CONFIG)
    ckpt = root / 'model.pth'
    write_random_checkpoint(cfg_path, ckpt, CLASSES)
    clip = make_face_clip(str(root / 'clip'), angle=7.0, n=20)
    return dict(root=root, config=str(cfg_path), ckpt=str(ckpt), clip=clip)


@pytest.fixture(scope='module')
def inferencer(setup):
    from raicl_mm.apis import RaICLInferencer
    return RaICLInferencer(setup['config'], setup['ckpt'], device='cpu')


def test_folder_and_mp4_give_the_same_prediction(setup, inferencer):
    a = inferencer(setup['clip']['frames_dir'])
    b = inferencer(setup['clip']['mp4'])
    assert a.label == b.label
    assert list(a.scores) == list(CLASSES)
    assert sum(a.scores.values()) == pytest.approx(1.0, abs=1e-5)
    # mp4v's lossy coding changes the flows a little: within 0.05.
    for c in CLASSES:
        assert a.scores[c] == pytest.approx(b.scores[c], abs=0.05)
    assert np.allclose(a.face['face_box'], b.face['face_box'], atol=3.0)
    # The codec moves the landmarks a little: measured 0.58 degrees.
    assert a.face['angle'] == pytest.approx(b.face['angle'], abs=1.5)
    assert a.frames_used['fps'] is None and b.frames_used['fps'] == 30.0
    # The same frames: a video counts from 0, the folder's frames are named
    # img001..img020 and keep the numbers of their names.
    assert b.frames_used['instance_frames'] == [8, 9, 10, 11, 12]
    assert a.frames_used['instance_frames'] == [9, 10, 11, 12, 13]
    assert a.frames_used['onset'] == 1 and b.frames_used['onset'] == 0
    for k in ('decode', 'align', 'flow', 'predict', 'total'):
        assert a.timings[k] >= 0
    # An array of frames gives what the folder gives (lossless both).
    c = inferencer(np.stack(setup['clip']['frames']))
    assert c.scores == pytest.approx(a.scores, abs=1e-6)


def test_ensemble_differs_from_middle_only_where_it_should(setup,
                                                           inferencer):
    mid = inferencer(setup['clip']['frames_dir'], mode='middle')
    ens = inferencer(setup['clip']['frames_dir'], mode='ensemble')
    # The same instances, the same per-instance scores and face...
    assert mid.instances == ens.instances and mid.face == ens.face
    per = np.array([[d['scores'][c] for c in CLASSES]
                    for d in ens.instances])
    # ...middle = the middle instance's softmax, ensemble = the mean.
    k = len(per) // 2
    assert [mid.scores[c] for c in CLASSES] == pytest.approx(per[k])
    assert [ens.scores[c] for c in CLASSES] == pytest.approx(per.mean(0))
    assert not np.allclose(per[k], per.mean(0), atol=1e-4)
    # A test run computes the same: the test pipeline with ensemble=True
    # through RaICLRecognizer.predict.
    from mmaction.registry import TRANSFORMS
    from mmengine.dataset import Compose, pseudo_collate
    from mmengine.config import Config
    cfg = Config.fromfile(setup['config'])
    for ensemble, want in ((False, mid), (True, ens)):
        steps = [dict(s) for s in cfg.test_pipeline]
        steps[0].update(ensemble=ensemble, pad_to=7 if ensemble else None)
        pipe = Compose([TRANSFORMS.build(s) for s in steps])
        data = pseudo_collate([pipe(dict(instances=ens.flows.copy(),
                                         sample_id='x'))])
        out = inferencer.model.test_step(data)[0]
        got = out.pred_score.numpy()
        assert got == pytest.approx([want.scores[c] for c in CLASSES],
                                    abs=1e-5)


def test_tool_writes_json_and_cam_picture(setup, tmp_path, capsys):
    out = tmp_path / 'out'
    rc = infer_tool.main([setup['config'], setup['ckpt'],
                          setup['clip']['frames_dir'], setup['clip']['mp4'],
                          '--out-dir', str(out), '--show-cam',
                          '--mode', 'ensemble', '--device', 'cpu'])
    assert rc == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2
    for line in lines:
        data = json.loads(Path(line['json']).read_text())
        assert data['label'] in CLASSES and data['mode'] == 'ensemble'
        assert set(data['scores']) == set(CLASSES)
        assert sum(data['scores'].values()) == pytest.approx(1.0, abs=1e-5)
        assert len(data['face_box']) == 4
        x1, y1, x2, y2 = data['face_box']
        assert 0 <= x1 < x2 <= 320 and 0 <= y1 < y2 <= 240
        assert len(data['instances']) == 5
        assert all(set(d) == {'frame', 'label', 'scores'}
                   for d in data['instances'])
        pic = cv2.imread(data['picture'])
        assert pic is not None and pic.shape[1] > 5 * 96
        # 3 rows (frame, flow, CAM): the top row shows the aligned face.
        assert pic.shape[0] > 3 * 96
    # --face-crop none: the whole frame, so the box is the frame.
    rc = infer_tool.main([setup['config'], setup['ckpt'],
                          setup['clip']['mp4'], '--out-dir', str(out / 'n'),
                          '--face-crop', 'none', '--device', 'cpu'])
    assert rc == 0
    data = json.loads((out / 'n' / 'clip.mp4.json').read_text())
    assert data['face']['mode'] is None and data['face_box'] is None


def test_onset_offset_and_target_fps(setup, inferencer):
    res = inferencer(setup['clip']['mp4'], onset=2, offset=17)
    assert res.frames_used['onset'] == 2 and res.frames_used['offset'] == 17
    assert res.frames_used['frames_read'] == 16
    from raicl_mm.apis import RaICLInferencer
    half = RaICLInferencer(setup['config'], setup['ckpt'], device='cpu',
                           target_fps=15.0)
    res = half(setup['clip']['mp4'])
    assert res.frames_used['target_fps'] == 15.0
    # 20 frames at 30 fps resampled to 15 fps: every other frame.
    assert all(f % 2 == 0 for f in res.frames_used['instance_frames'])
    from raicl_mm.apis import InferenceError
    with pytest.raises(InferenceError, match='frame rate'):
        half(setup['clip']['frames_dir'])  # a folder has no rate
    assert half(setup['clip']['frames_dir'], fps=30.0).label in CLASSES


def test_bad_inputs_one_line_exit_2(setup, tmp_path, capsys):
    # No face: the error names the clip and the frame.
    blank = tmp_path / 'blank'
    blank.mkdir()
    for i in range(4):
        cv2.imwrite(str(blank / f'{i}.png'), np.full((120, 160), 90,
                                                     np.uint8))
    args = [setup['config'], setup['ckpt']]
    assert infer_tool.main(args + [str(blank), '--out-dir',
                                   str(tmp_path / 'o')]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'no face' in err
    assert f'{blank} frame 0' in err
    for bad, words in (([str(tmp_path / 'nope.mp4')], 'no such'),
                       ([setup['clip']['mp4'], '--offset', '40'], 'offset'),
                       ([setup['config']], 'not a folder of frames')):
        assert infer_tool.main(args + bad + ['--out-dir',
                                             str(tmp_path / 'o')]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and words in err, err
    # A model setting that builds nothing: one line naming the config.
    assert infer_tool.main(args + [setup['clip']['mp4'], '--cfg-options',
                                   'model.backbone.depth=19']) == 2
    err = capsys.readouterr().err.strip()
    assert 'model cannot be built' in err and len(err.splitlines()) == 1
    # A checkpoint of another model: refused, one line.
    from mmengine.runner.checkpoint import save_checkpoint
    other = tmp_path / 'other.pth'
    save_checkpoint({'state_dict': {'online.fc.weight': torch.zeros(2, 2)}},
                    str(other))
    assert infer_tool.main([setup['config'], str(other),
                            setup['clip']['mp4']]) == 2
    err = capsys.readouterr().err.strip()
    assert 'does not fit the model' in err and len(err.splitlines()) == 1
    assert str(other) in err
    # A hostile pickle: refused by the weights-only policy, one line.
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ('echo pwned',))

    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': Evil()}, str(evil))
    assert infer_tool.main([setup['config'], str(evil),
                            setup['clip']['mp4']]) == 2
    err = capsys.readouterr().err.strip()
    assert 'refus' in err.lower() and len(err.splitlines()) == 1
    assert pickle  # noqa


def test_sample_instance_pair_ensemble_mode():
    from raicl_mm.datasets.transforms import SampleInstancePair
    inst = np.arange(4 * 2 * 2 * 3, dtype=np.float32).reshape(4, 2, 2, 3)
    mid = SampleInstancePair(test_mode=True).transform(dict(instances=inst))
    assert mid['instance_idx'] == [2] and mid['imgs'].shape == (1, 2, 2, 3)
    ens = SampleInstancePair(test_mode=True, ensemble=True).transform(
        dict(instances=inst))
    assert ens['instance_idx'] == [0, 1, 2, 3]
    np.testing.assert_array_equal(ens['imgs'], inst)
    pad = SampleInstancePair(test_mode=True, ensemble=True,
                             pad_to=6).transform(dict(instances=inst))
    assert pad['imgs'].shape == (6, 2, 2, 3)
    assert np.isnan(pad['imgs'][4:]).all() and not np.isnan(
        pad['imgs'][:4]).any()
    with pytest.raises(ValueError, match='clip_x'):
        SampleInstancePair(test_mode=True, ensemble=True, pad_to=3).transform(
            dict(instances=inst, sample_id='clip_x'))
    with pytest.raises(ValueError, match='test_mode'):
        SampleInstancePair(ensemble=True)
    with pytest.raises(ValueError, match='pad_to'):
        SampleInstancePair(test_mode=True, ensemble=True, pad_to=0)


def test_a_synthetic_only_checkpoint_warns_when_it_meets_a_clip(setup, tmp_path):
    import warnings

    from mmengine.runner.checkpoint import save_checkpoint

    from raicl_mm.apis import RaICLInferencer
    from raicl_mm.engine.provenance import (SYNTHETIC, TRAIN_DATA_KEY,
                                            SyntheticCheckpointWarning)
    state = torch.load(setup['ckpt'], map_location='cpu', weights_only=False)
    ckpt = tmp_path / 'synthetic.pth'
    save_checkpoint({'state_dict': state['state_dict'],
                     'meta': dict(state['meta'], **{TRAIN_DATA_KEY: SYNTHETIC})},
                    str(ckpt))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter('always')
        RaICLInferencer(setup['config'], str(ckpt), device='cpu')
    assert any(issubclass(w.category, SyntheticCheckpointWarning)
               for w in seen), [str(w.message) for w in seen]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter('always')
        RaICLInferencer(setup['config'], setup['ckpt'], device='cpu')
    assert not any(issubclass(w.category, SyntheticCheckpointWarning)
                   for w in seen)
