"""MicroExpressionFlowDataset: instance sets from the per-pair cache, and no
clip left out in silence (issue 10 item 4)."""
import shutil

import numpy as np
import pytest

from raicl_mm.datasets.dataset import MicroExpressionFlowDataset
from raicl_mm.datasets.instance_sets import MissingInstancesError
from raicl_mm.flow import cache as fc


@pytest.fixture(scope='module')
def synthetic_set(tmp_path_factory):
    """2 subjects x 3 clips, 48 px, 9-14 frames (generated once)."""
    from raicl_mm.synthetic.generator import SyntheticConfig, generate
    out = tmp_path_factory.mktemp('ds') / 'synthetic'
    generate(str(out), SyntheticConfig(num_subjects=2, clips_per_subject=3,
                                       size=48, min_len=9, max_len=14,
                                       supersample=1), workers=1)
    return out


@pytest.fixture
def data(synthetic_set, tmp_path):
    """A private copy (tests damage frames)."""
    return shutil.copytree(synthetic_set, tmp_path / 'synthetic')


def dataset(data, tmp_path, **kw):
    args = dict(
        protocol='casme2_3cls',
        data_roots=dict(casme2=str(data / 'Cropped')),
        ann_files=dict(casme2=str(data / 'CASME2-coding-synthetic.xlsx')),
        pipeline=[], flow_cfg=dict(method='farneback', size=(32, 32)),
        sampling=dict(num_instances=4), flow_cache=str(tmp_path / 'cache'),
        flow_workers=1)
    args.update(kw)
    return MicroExpressionFlowDataset(**args)


def damage_first_clip(data):
    clip = sorted(p for p in (data / 'Cropped').glob('*/*') if p.is_dir())[0]
    for frame in clip.glob('*.jpg'):
        frame.write_bytes(b'not a jpeg')
    return clip.name


def test_complete_split(data, tmp_path):
    ds = dataset(data, tmp_path)
    assert len(ds) == 6 and len(ds.planned) == 6 and ds.missing == []
    assert [r.sample_id for r in ds.records] == ds.planned
    info = ds.get_data_info(0)
    assert info['instances'].shape == (4, 32, 32, 3)
    assert info['instances'].dtype == np.float16
    assert info['positions'] == ds.cache.positions(ds.records[0])


def test_failed_clip_is_refused_by_default_naming_it(data, tmp_path):
    clip = damage_first_clip(data)
    with pytest.raises(MissingInstancesError) as err:
        dataset(data, tmp_path)
    msg = str(err.value)
    assert '\n' not in msg
    assert clip in msg and '1 of 6 clips' in msg
    assert 'could not be decoded' in msg and "on_missing='skip'" in msg


def test_skip_counts_and_lists_the_missing_clips(data, tmp_path):
    clip = damage_first_clip(data)
    ds = dataset(data, tmp_path, on_missing='skip')
    assert len(ds.planned) == 6 and len(ds) == 5
    assert len(ds.missing) == 1
    miss = ds.missing[0]
    assert set(miss) == {'id', 'error'}
    assert miss['id'].endswith(clip) and miss['id'] in ds.planned
    assert 'could not be decoded' in miss['error']
    assert miss['id'] not in [r.sample_id for r in ds.records]
    # The split's other clips are all there, in sheet order.
    assert [r.sample_id for r in ds.records] == [
        s for s in ds.planned if s != miss['id']]


def test_fold_split_records_only_its_clips(data, tmp_path):
    damage_first_clip(data)
    train = dataset(data, tmp_path, fold=0, split='train', on_missing='skip')
    test = dataset(data, tmp_path, fold=0, split='test', on_missing='skip')
    assert set(train.planned).isdisjoint(test.planned)
    assert len(train.planned) + len(test.planned) == 6
    assert len(train.missing) + len(test.missing) == 1
    assert len(train) + len(test) == 5


def test_positions_that_cannot_be_chosen_are_missing(data, tmp_path):
    """An apex-based sampling on clips without an apex, with missing_apex=
    'error': every clip named, none lost silently."""
    import openpyxl
    sheet = data / 'CASME2-coding-synthetic.xlsx'
    book = openpyxl.load_workbook(sheet)
    ws = book.active
    header = [c.value for c in ws[1]]
    col = header.index('ApexFrame') + 1
    for row in range(2, ws.max_row + 1):
        ws.cell(row=row, column=col, value='/')  # CASME II's "no apex"
    book.save(sheet)
    with pytest.raises(MissingInstancesError, match='6 of 6 clips'):
        dataset(data, tmp_path, sampling=dict(strategy='apex_single',
                                              missing_apex='error'))


def test_on_missing_is_checked(data, tmp_path):
    with pytest.raises(ValueError, match='on_missing'):
        dataset(data, tmp_path, on_missing='ignore')


def test_datasets_of_other_samplings_share_pairs(data, tmp_path,
                                                 monkeypatch):
    solved = []
    real = fc.extract_instance_set

    def counting(record, cfg, positions):
        solved.extend((record.sample_id, int(p)) for p in positions)
        return real(record, cfg, positions)

    monkeypatch.setattr(fc, 'extract_instance_set', counting)
    middle = dataset(data, tmp_path)
    assert len(solved) == 6 * 4
    apex = dataset(data, tmp_path, sampling=dict(strategy='apex_single'))
    full = dataset(data, tmp_path, sampling=dict(strategy='full'))
    frames = sum(r.num_frames - 1 for r in full.records)
    assert len(solved) == len(set(solved)) == frames
    for ds in (middle, apex):
        for i, rec in enumerate(ds.records):
            j = full.records.index(rec)
            pos = full.get_data_info(j)['positions']
            want = full.get_data_info(j)['instances'][
                [pos.index(p) for p in ds.get_data_info(i)['positions']]]
            np.testing.assert_array_equal(ds.get_data_info(i)['instances'],
                                          want)
    # The spotter's view: every frame's flow, none solved again.
    rec = full.records[0]
    flows = full.cache.flows_at(rec, range(rec.num_frames))
    assert flows.shape == (rec.num_frames, 32, 32, 3)
    assert len(solved) == frames + 1  # only the onset->onset pair


def test_holdout_splits_by_subject_lists(tmp_path):
    from raicl_mm.synthetic.generator import SyntheticConfig, generate
    data = tmp_path / 'three'
    generate(str(data), SyntheticConfig(num_subjects=3, clips_per_subject=1,
                                        size=48, min_len=9, max_len=9,
                                        supersample=1), workers=1)
    spec = dict(by='subjects', train=['01'], val=['02'], test=['03'])
    got = {split: {r.subject for r in dataset(data, tmp_path, holdout=spec,
                                              split=split).records}
           for split in ('train', 'val', 'test')}
    assert got == dict(train={'01'}, val={'02'}, test={'03'})
    with pytest.raises(ValueError, match='exclude each other'):
        dataset(data, tmp_path, holdout=spec, fold=0, split='train')
    with pytest.raises(ValueError, match="split='val' needs a hold-out"):
        dataset(data, tmp_path, split='val', fold=0)


def test_spotted_apex_reads_every_frame_from_the_shared_cache(
        data, tmp_path, monkeypatch):
    calls = []
    real = fc.FlowCache.flows_at

    def counting(self, record, positions, compute=True):
        calls.append(len(positions))
        return real(self, record, positions, compute)

    monkeypatch.setattr(fc.FlowCache, 'flows_at', counting)
    ds = dataset(data, tmp_path, sampling=dict(
        strategy='apex_single', apex_source='spotted'))
    assert len(ds) == 6 and ds.missing == []
    # one motion read per clip, over every frame of that clip
    assert sorted(calls) == sorted(r.num_frames for r in ds.records)
    spotted = [ds.get_data_info(i)['positions'] for i in range(len(ds))]
    assert all(len(p) == 1 and p[0] > 0 for p in spotted)
    again = dataset(data, tmp_path, sampling=dict(strategy='apex_single',
                                                  apex_source='spotted'))
    assert [again.get_data_info(i)['positions'] for i in range(6)] == spotted
    # the second dataset spots from disk: every pair was computed once
    assert again.cache.stats['pairs_computed'] == 0


@pytest.mark.slow
def test_train_tool_refuses_a_split_with_a_failed_clip(data, tmp_path):
    """tools/train.py: one line naming the clip, exit 2, before training."""
    from conftest import REPO, run_tool_here
    clip = damage_first_clip(data)
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(f"""
_base_ = [{str(REPO / 'configs' / 'raicl_synthetic.py')!r}]
__data = dict(
    synthetic=None,
    data_roots=dict(_delete_=True, casme2={str(data / 'Cropped')!r}),
    ann_files=dict(_delete_=True,
                   casme2={str(data / 'CASME2-coding-synthetic.xlsx')!r}),
    flow_cfg=dict(method='farneback', size=(32, 32)),
    sampling=dict(num_instances=4), flow_cache={str(tmp_path / 'cache')!r},
    flow_workers=1)
model = dict(backbone=dict(stem_channels=8, base_channels=8),
             mrd_head=dict(embed_dim=16, proj_hidden=16, pred_hidden=16))
train_dataloader = dict(batch_size=2, dataset=__data)
val_dataloader = dict(batch_size=2, dataset=__data)
test_dataloader = dict(batch_size=2, dataset=__data)
train_cfg = dict(max_epochs=1, val_begin=1, val_interval=1)
""")
    res = run_tool_here('train.py', cfg, '--work-dir', tmp_path / 'work',
                        '--fold', 'all')
    assert res.returncode == 2, res.stderr[-3000:]
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith('error:')]
    assert len(lines) == 1 and 'Traceback' not in res.stderr
    assert clip in lines[0] and "on_missing='skip'" in lines[0]
    assert not list((tmp_path / 'work').rglob('*.pth'))
