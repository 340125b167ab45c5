"""mmaction2's own inference API gives what RaICLInferencer gives.

``init_recognizer`` + ``inference_recognizer``, ``ActionRecogInferencer`` and
``MMAction2Inferencer`` on a frame folder and on a video: the test pipeline
starts with ``ClipInstances``, which computes the instance set from the raw
clip with RaICLInferencer's own steps, so label and scores agree with
``RaICLInferencer`` (mode 'middle', the test pipeline's instance).
"""
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip('dlib')

from conftest import write_random_checkpoint  # noqa: E402
from test_face import make_face_clip  # noqa: E402  (tests/ is on sys.path)

REPO = Path(__file__).resolve().parents[1]
CLASSES = ('negative', 'positive', 'surprise')

FLOW = dict(method='farneback', size=(48, 48), face_crop='landmarks')
SAMPLING = dict(strategy='middle', num_instances=5)
CONFIG = f"""
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
    dict(type='ClipInstances', flow_cfg={FLOW!r}, sampling={SAMPLING!r}),
    dict(type='SampleInstancePair', test_mode=True),
    dict(type='FlowNormalize', mode='standardize'),
    dict(type='FormatInstances'),
    dict(type='PackActionInputs', meta_keys=('sample_id', ))
]
test_dataloader = dict(dataset=dict(
    type='MicroExpressionFlowDataset', protocol='casme2_3cls',
    flow_cfg={FLOW!r}, sampling={SAMPLING!r}, pipeline=test_pipeline))
visualizer = dict(type='ActionVisualizer', vis_backends=[])
"""


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('mmaction_infer')
    cfg_path = root / 'tiny_infer.py'
    cfg_path.write_text(CONFIG)
    ckpt = root / 'model.pth'
    write_random_checkpoint(cfg_path, ckpt, CLASSES)
    clip = make_face_clip(str(root / 'clip'), angle=7.0, n=20)
    from raicl_mm.apis import RaICLInferencer
    ours = RaICLInferencer(str(cfg_path), str(ckpt), device='cpu',
                           mode='middle')
    expect = {kind: ours(clip[key]) for kind, key in
              (('folder', 'frames_dir'), ('video', 'mp4'))}
    return dict(root=root, config=str(cfg_path), ckpt=str(ckpt), clip=clip,
                expect=expect)


def _check(expect, label, scores):
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    assert CLASSES[int(label)] == expect.label
    assert scores == pytest.approx([expect.scores[c] for c in CLASSES],
                                   abs=1e-5)


@pytest.mark.parametrize('kind,key', [('folder', 'frames_dir'),
                                      ('video', 'mp4')])
def test_inference_recognizer_matches_raicl_inferencer(setup, kind, key):
    from mmaction.apis import inference_recognizer, init_recognizer
    model = init_recognizer(setup['config'], setup['ckpt'], device='cpu')
    result = inference_recognizer(model, setup['clip'][key])
    _check(setup['expect'][kind], result.pred_label.item(),
           result.pred_score.cpu().numpy())


@pytest.mark.parametrize('kind,key,fmt', [('folder', 'frames_dir',
                                           'rawframes'),
                                          ('video', 'mp4', 'video')])
def test_action_recog_inferencer_matches(setup, kind, key, fmt):
    if fmt == 'video':
        pytest.importorskip('decord')  # mmaction2 opens videos with decord
    from mmaction.apis.inferencers import ActionRecogInferencer
    inf = ActionRecogInferencer(setup['config'], setup['ckpt'],
                                device='cpu', input_format=fmt)
    pred = inf(setup['clip'][key])['predictions'][0]
    _check(setup['expect'][kind], pred['pred_labels'][0],
           pred['pred_scores'])


@pytest.mark.parametrize('kind,key,fmt', [('folder', 'frames_dir',
                                           'rawframes'),
                                          ('video', 'mp4', 'video')])
def test_mmaction2_inferencer_matches(setup, kind, key, fmt):
    if fmt == 'video':
        pytest.importorskip('decord')
    from mmaction.apis.inferencers import MMAction2Inferencer
    inf = MMAction2Inferencer(rec=setup['config'],
                              rec_weights=setup['ckpt'], device='cpu',
                              input_format=fmt)
    pred = inf(setup['clip'][key])['predictions'][0]
    _check(setup['expect'][kind], pred['rec_labels'][0][0],
           pred['rec_scores'][0])


def test_array_input_matches_the_folder(setup):
    """mmaction2's 'array' input (RGB frames) gives the folder's answer."""
    from mmaction.apis.inferencers import ActionRecogInferencer
    inf = ActionRecogInferencer(setup['config'], setup['ckpt'],
                                device='cpu', input_format='array')
    rgb = np.stack([f[..., ::-1] for f in setup['clip']['frames']])
    pred = inf(rgb)['predictions'][0]
    _check(setup['expect']['folder'], pred['pred_labels'][0],
           pred['pred_scores'])


def test_clip_instances_passes_dataset_instances_through():
    from raicl_mm.datasets.transforms import ClipInstances
    inst = np.zeros((3, 8, 8, 3), np.float32)
    out = ClipInstances()(dict(instances=inst, sample_id='a'))
    assert out['instances'] is inst


def test_missing_instances_are_named():
    from raicl_mm.datasets.transforms import ClipInstances, SampleInstancePair
    with pytest.raises(KeyError, match='ClipInstances'):
        SampleInstancePair(test_mode=True)(dict(sample_id='x'))
    with pytest.raises(KeyError, match="nothing to compute them from"):
        ClipInstances()(dict(label=-1))


TOP_CONFIGS = sorted((REPO / 'configs').glob('*.py')) + sorted(
    (REPO / 'configs' / 'raicl').glob('*.py'))


@pytest.mark.parametrize('path', TOP_CONFIGS,
                         ids=lambda p: f'{p.parent.name}/{p.name}')
def test_repo_configs_test_pipeline_matches_its_dataset(path):
    """Every top-level config's ClipInstances settings are its test
    dataset's (else mmaction2's API would compute other instances)."""
    from mmengine.config import Config
    from raicl_mm.datasets.transforms import inference_settings_mismatch
    cfg = Config.fromfile(str(path))
    steps = [s['type'] for s in cfg.test_dataloader.dataset.pipeline]
    assert steps[0] == 'ClipInstances', path.name
    assert inference_settings_mismatch(cfg) == []
