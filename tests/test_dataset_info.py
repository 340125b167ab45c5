"""tools/dataset_info.py on configs and frame trees written into tmp_path."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / 'tools' / 'dataset_info.py'


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# the frame-tree builder and sheet locations of the parser tests
sources_tests = load('sources_tests', Path(__file__).with_name('test_sources.py'))
tool = load('dataset_info', TOOL)
needs_sheets = sources_tests.needs_sheets


def write_config(path, **keys):
    path.write_text(''.join(f'{k} = {v!r}\n' for k, v in keys.items()))
    return str(path)


def run_main(argv, capsys):
    status = tool.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope='module')
def cde_roots(tmp_path_factory):
    if not (sources_tests.CASME2_SHEET.is_file() and sources_tests.SAMM_SHEET.is_file()):
        pytest.skip(f'official label sheets not found in {sources_tests.ANN_DIR}')
    return sources_tests.make_cde_tree(tmp_path_factory.mktemp('cde_tree'))


@needs_sheets
def test_cde_prints_table4_numbers(cde_roots, tmp_path):
    config = write_config(tmp_path / 'cde.py', protocol='cde', data_roots=cde_roots,
                          ann_files=dict(casme2=str(sources_tests.CASME2_SHEET),
                                         samm=str(sources_tests.SAMM_SHEET), cde=None))
    done = subprocess.run([sys.executable, str(TOOL), config], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert (info['samples'], info['subjects']) == (442, 68)
    assert info['classes'] == dict(negative=250, positive=109, surprise=83)
    assert list(info['classes']) == ['negative', 'positive', 'surprise']
    assert info['by_dataset'] == {
        'casme2': dict(samples=145, subjects=24,
                       classes=dict(negative=88, positive=32, surprise=25)),
        'samm': dict(samples=133, subjects=28,
                     classes=dict(negative=92, positive=26, surprise=15)),
        'smic': dict(samples=164, subjects=16,
                     classes=dict(negative=70, positive=51, surprise=43))}
    assert info['skipped'] == []
    assert sorted(f['id'] for f in info['flagged']) == ['samm/028/028_4_1',
                                                        'samm/032/032_3_1']


@needs_sheets
def test_cfg_options_and_exclusion_file(cde_roots, tmp_path, capsys):
    exclude = tmp_path / 'exclude.txt'
    exclude.write_text('smic/s01/s01_ne_01\ncasme2/01/EP02_01f  # positive\nsamm/999/none\n')
    config = write_config(tmp_path / 'cde.py', protocol='cde', data_roots=cde_roots,
                          ann_files=dict(casme2=str(sources_tests.CASME2_SHEET),
                                         samm='wrong.xlsx'))
    status, out, err = run_main([config, '--cfg-options',
                                 f'ann_files.samm={sources_tests.SAMM_SHEET}',
                                 f'exclude_file={exclude}'], capsys)
    assert status == 0, err
    info = json.loads(out)
    assert (info['samples'], info['subjects']) == (440, 68)
    assert info['classes'] == dict(negative=249, positive=108, surprise=83)
    assert info['by_dataset']['smic']['classes']['negative'] == 69
    assert sorted(info['skipped'], key=lambda s: s['id']) == [
        dict(id='casme2/01/EP02_01f', why=f'excluded by {exclude}'),
        dict(id='smic/s01/s01_ne_01', why=f'excluded by {exclude}')]
    assert dict(id='samm/999/none', why=f'listed in {exclude} but matches no sample') in \
        info['flagged']


@needs_sheets
@pytest.mark.parametrize('protocol,samples,subjects,classes', [
    ('casme3_3cls', 699, 88, dict(negative=457, positive=55, surprise=187)),
    ('casme3_4cls', 860, 94, dict(negative=457, positive=55, surprise=187, others=161))])
def test_casme3_from_the_sheet(tmp_path, capsys, protocol, samples, subjects, classes):
    config = write_config(tmp_path / 'c3.py', protocol='casme3_7cls',
                          data_roots=dict(casme3=str(tmp_path / 'not_needed')),
                          ann_files=dict(casme3=str(sources_tests.CASME3_SHEET)))
    status, out, err = run_main([config, '--sheets-only', '--cfg-options',
                                 f'protocol={protocol}'], capsys)
    assert status == 0, err
    info = json.loads(out)
    assert (info['samples'], info['subjects'], info['classes']) == (samples, subjects,
                                                                    classes)
    assert list(info['by_dataset']) == ['casme3']
    repaired = [f for f in info['flagged'] if 'repaired to' in f['why']]
    assert len(repaired) == (0 if protocol == 'casme3_3cls' else 3)


def test_missing_config_is_a_one_line_error(tmp_path):
    done = subprocess.run([sys.executable, str(TOOL), str(tmp_path / 'absent.py')],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stdout == ''
    assert done.stderr.strip().splitlines() == [
        f'error: config file not found: {tmp_path / "absent.py"}']


def test_bad_data_and_missing_protocol(tmp_path, capsys):
    config = write_config(tmp_path / 'c.py', protocol='cde',
                          data_roots=dict(casme2=str(tmp_path / 'none')),
                          ann_files=dict(casme2=str(tmp_path / 'missing.xlsx')))
    status, out, err = run_main([config], capsys)
    assert status == 2 and out == ''
    assert err.strip().splitlines() == [
        f'error: CASME II sheet not found: {tmp_path / "missing.xlsx"}']
    status, out, err = run_main([config, '--cfg-options', 'protocol=megc'], capsys)
    assert status == 2 and "unknown protocol 'megc'" in err
    config = write_config(tmp_path / 'd.py', data_roots={})
    status, out, err = run_main([config], capsys)
    assert status == 2 and 'sets no protocol' in err


# ---------------------------------------------------------------- MMEW, own sheets, frames
def test_mmew_config_counts_and_flags_a_corrupt_frame(tmp_path, capsys):
    mmew_tests = load('mmew_tests', Path(__file__).with_name('test_sources_mmew.py'))
    roots, anns = mmew_tests.make_mmew(tmp_path)
    config = write_config(tmp_path / 'mmew.py', protocol='mmew_5cls', data_roots=roots,
                          ann_files=anns, sampling=dict(strategy='apex_single'))
    status, out, err = run_main([config], capsys)
    assert status == 0, err
    info = json.loads(out)
    assert (info['samples'], info['subjects']) == (5, 3)
    assert info['apex']['counts']['annotation'] == 5
    # the tree's frames are 0-byte files: every one is listed with its file
    assert len(info['corrupt_frames']) == sum(
        r[4] - r[2] + 1 for r in mmew_tests.ROWS if r[5] not in ('sadness', 'anger'))
    assert all(c['why'] == 'empty file (0 bytes)' for c in info['corrupt_frames'])


def test_own_sheet_config_with_holdout(tmp_path, capsys):
    generic_tests = load('generic_tests', Path(__file__).with_name('test_sources_generic.py'))
    roots, anns = generic_tests.make(tmp_path)
    config = write_config(tmp_path / 'own.py', protocol=generic_tests.spec(),
                          data_roots=roots, ann_files=anns,
                          holdout=dict(by='subjects', train=['p1'], val=['p1x'], test=['p2']))
    status, out, err = run_main([config, '--sheets-only'], capsys)
    assert status == 2 and "holdout: subject(s) p1x match no sample" in err
    status, out, err = run_main([config, '--sheets-only', '--cfg-options',
                                 'holdout.val=None', 'holdout.train=[p1,p2]',
                                 'holdout.test=[p2]'], capsys)
    assert status == 2 and 'in both holdout.train and holdout.test' in err
    config = write_config(tmp_path / 'own2.py', protocol=generic_tests.spec(),
                          data_roots=roots, ann_files=anns,
                          holdout=dict(by='column', train=['train'], val=None, test=['test'],
                                       val_fraction=0.5))
    status, out, err = run_main([config, '--sheets-only'], capsys)
    assert status == 2 and 'leaves no validation or no training subject' in err


def test_dfme_config_reads_its_own_sheet(tmp_path, capsys):
    rows = []
    for i in range(10):
        rows.append(dict(Subject=f's{i:02d}', Filename='v1', Onset=1, Apex=20, Offset=60,
                         Emotion='Anger', FPS=200, Split='train_data'))
    rows += [dict(Subject='t1', Filename='v1', Onset=1, Apex=5, Offset=50,
                  Emotion='contempt', FPS=500, Split='test_A'),
             dict(Subject='t2', Filename='v9', Onset=1, Apex=5, Offset=50,
                  Emotion='fear', FPS=300, Split='test_B')]
    import pandas as pd
    sheet = tmp_path / 'DFME_labels.xlsx'
    pd.DataFrame(rows).to_excel(sheet, index=False)
    # the loaders must agree (the checks every tool runs): the sheet for each
    status, out, err = run_main([REPO / 'configs' / 'raicl_dfme.py', '--sheets-only',
                                 '--cfg-options'] + [
                                 f'{loader}_dataloader.dataset.ann_files.dfme={sheet}'
                                 for loader in ('train', 'val', 'test')], capsys)
    assert status == 0, err
    info = json.loads(out)
    assert info['protocol'] == 'dfme_7cls' and info['samples'] == 12
    assert {k: v['samples'] for k, v in info['holdout'].items()} == dict(
        train=8, val=2, test=1, unused=1)
    assert info['classes']['anger'] == 10 and list(info['classes'])[0] == 'happiness'


SPOT_CONFIG = """
_base_ = [{base!r}]
__data = dict(
    synthetic=dict(_delete_=True, out={out!r}, **{quick!r}),
    data_roots=dict(casme2={out!r} + '/Cropped'),
    ann_files=dict(casme2={out!r} + '/CASME2-coding-synthetic.xlsx'),
    flow_cfg=dict(method='farneback', size=(32, 32)), flow_cache={cache!r})
train_dataloader = dict(dataset=__data)
val_dataloader = dict(dataset=__data)
test_dataloader = dict(dataset=__data)
"""


def test_spot_apex_on_a_synthetic_set_reports_the_truth_and_baselines(
        tmp_path, capsys):
    """--spot-apex on the quick preset: against the sheet and the true apex."""
    import json as _json
    from raicl_mm.synthetic.presets import PRESETS
    quick = {k: (list(v) if isinstance(v, tuple) else v)
             for k, v in PRESETS['quick'].items()}
    cfg = tmp_path / 'spot.py'
    cfg.write_text(SPOT_CONFIG.format(
        base=str(REPO / 'configs' / 'benchmark' / 'm6_ours.py'),
        out=str(tmp_path / 'data'), cache=str(tmp_path / 'cache'),
        quick=quick))
    status, out, err = run_main([cfg, '--spot-apex'], capsys)
    assert status == 0, err
    spot = _json.loads(out)['spotter']
    manifest = _json.loads((tmp_path / 'data' / 'manifest.json').read_text())
    clips = manifest['clips']
    truth = spot['against_true_apex']
    assert truth['spotter']['compared'] == len(clips) == spot['compared']
    assert truth['centre']['compared'] == len(clips)
    # the sheet's error against the truth, recomputed from the manifest
    expected = sum(abs(c['apex'] - c['true_apex']) for c in clips) / len(clips)
    assert truth['sheet']['mae_frames'] == pytest.approx(expected, abs=1e-4)
    by_id = {e['id']: e for e in spot['clips']}
    assert all('true_apex' in e for e in by_id.values())
    errors = [abs(e['spotted'] - e['true_apex']) for e in by_id.values()]
    assert truth['spotter']['mae_frames'] == pytest.approx(
        sum(errors) / len(errors), abs=1e-4)


def test_true_apexes_refuses_a_crafted_manifest(tmp_path):
    from raicl_mm.datasets.info import _true_apexes
    out = tmp_path / 'set'
    out.mkdir()
    data = dict(synthetic=dict(out=str(out)))
    assert _true_apexes(data) == {}                     # no manifest: real data
    (out / 'manifest.json').write_text('{"clips": [')
    with pytest.raises(ValueError, match='manifest.json: not JSON'):
        _true_apexes(data)
    (out / 'manifest.json').write_text('{"clips": {"a": 1}}')
    with pytest.raises(ValueError, match='no list under "clips"'):
        _true_apexes(data)
    (out / 'manifest.json').write_text(
        '{"clips": [{"subject": "01", "filename": "a", "true_apex": 5},'
        ' {"filename": "b", "true_apex": 7}]}')
    with pytest.raises(ValueError, match=r'clips\[1\] needs'):
        _true_apexes(data)
    (out / 'manifest.json').write_text(
        '{"clips": [{"subject": "01", "filename": "a", "true_apex": 5},'
        ' {"subject": "02", "filename": "b"}]}')
    assert _true_apexes(data) == {('01', 'a'): 5}
