"""Real-dataset parsers (raicl_mm.datasets.sources) on frame trees in tmp_path.

Small sheets written here check each layout and quirk; the official sheets
(``RAICL_ANNOTATIONS`` or ``tests/fixtures/annotations``) check the protocol
counts of DATASETS.md / the Ra-ICL paper's Table 4.
"""
import os
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from raicl_mm.datasets.sources import PROTOCOLS, build_records, get_classes
from raicl_mm.datasets.sources.composite import DEFAULT_CDE_LIST, read_cde_list

REPO = Path(__file__).resolve().parents[1]
ANN_DIR = Path(os.environ.get('RAICL_ANNOTATIONS', REPO / 'tests' / 'fixtures' / 'annotations'))
CASME2_SHEET = ANN_DIR / 'CASME2-coding-20190701.xlsx'
SAMM_SHEET = ANN_DIR / 'SAMM_Micro_FACS_Codes_v2.xlsx'
CASME3_SHEET = ANN_DIR / 'cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx'
needs_sheets = pytest.mark.skipif(
    not (CASME2_SHEET.is_file() and SAMM_SHEET.is_file() and CASME3_SHEET.is_file()),
    reason=f'official label sheets not found in {ANN_DIR} (set RAICL_ANNOTATIONS)')

CASME2_HEADER = ['Subject', 'Filename', None, 'OnsetFrame', 'ApexFrame', 'OffsetFrame',
                 None, 'Action Units', 'Estimated Emotion', 'Objective Classes']
SAMM_HEADER = ['Subject', 'Filename', 'Inducement Code', 'Onset Frame', 'Apex Frame',
               'Offset Frame', 'Duration', 'Micro', 'Action Units', 'Estimated Emotion',
               'Objective Classes', 'Notes']
CASME3_HEADER = ['Subject', 'Filename', 'Onset', 'Apex', 'Offset', 'AU', 'Objective class',
                 'emotion']


# ---------------------------------------------------------------- helpers
def write_sheet(path, header, rows, sheet_name='Sheet1', notes=()):
    """Write an xlsx: ``notes`` rows, then the header, then ``rows``."""
    width = len(header)
    table = [list(n) + [None] * (width - len(n)) for n in notes] + [header] + rows
    pd.DataFrame(table).to_excel(path, sheet_name=sheet_name, header=False, index=False)
    return str(path)


def touch_frames(folder, numbers, name=lambda n: f'img{n}.jpg'):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for n in numbers:  # empty files: the parsers only list names
        os.close(os.open(folder / name(n), os.O_CREAT | os.O_WRONLY, 0o644))
    return folder


def casme2_row(subject, clip, onset, apex, offset, emotion, au='12'):
    return [subject, clip, None, onset, apex, offset, None, au, emotion, 1]


@pytest.fixture
def casme2_sheet(tmp_path):
    rows = [casme2_row('01', 'EP02_01f', 46, 59, 86, 'happiness', au='4+R10'),
            casme2_row('04', 'EP12_01f', 21, '/', 40, 'disgust'),
            casme2_row('05', 'EP09f', 10, 200, 30, 'repression'),
            casme2_row('05', 'EP01_2', 5, 9, 15, 'others'),
            casme2_row('06', 'EP06_02_01', 100, 105, 110, 'fear')]
    return write_sheet(tmp_path / 'casme2.xlsx', CASME2_HEADER, rows)


def casme2_tree(root, name=lambda n: f'reg_img{n}.jpg', subject_folder='sub{}'):
    for subject, clip, onset, offset in [('01', 'EP02_01f', 46, 86), ('04', 'EP12_01f', 21, 40),
                                         ('05', 'EP09f', 10, 30), ('05', 'EP01_2', 5, 15),
                                         ('06', 'EP06_02_01', 100, 110)]:
        # one frame before and after the clip, as in a real folder
        touch_frames(root / subject_folder.format(subject) / clip,
                     range(onset - 1, offset + 2), name)
    return root


def by_id(report):
    return {r.sample_id: r for r in report.records}


def whys(entries, sample_id):
    return [e['why'] for e in entries if e['id'] == sample_id]


# ---------------------------------------------------------------- classes
def test_protocols_and_class_orders():
    assert set(PROTOCOLS) == {'cde', 'casme3_3cls', 'casme3_4cls', 'casme3_7cls', 'casme2',
                              'casme2_3cls', 'samm', 'smic', 'mmew_3cls', 'mmew_5cls'}
    for name in ('cde', 'casme2_3cls', 'smic', 'casme3_3cls', 'mmew_3cls'):
        assert get_classes(name) == ['negative', 'positive', 'surprise']
    assert get_classes('casme3_4cls') == ['negative', 'positive', 'surprise', 'others']
    assert get_classes('casme3_7cls') == ['happy', 'surprise', 'disgust', 'fear', 'anger',
                                          'sad', 'others']
    assert get_classes('casme2') == ['happiness', 'repression', 'surprise', 'disgust',
                                     'others']
    assert get_classes('samm') == ['anger', 'contempt', 'happiness', 'surprise', 'others']
    assert get_classes('mmew_5cls') == ['disgust', 'happiness', 'surprise', 'fear', 'others']
    get_classes('cde').append('x')  # a copy: the protocol is unchanged
    assert len(get_classes('cde')) == 3


def test_unknown_protocol_lists_valid_ones():
    with pytest.raises(ValueError, match=r"unknown protocol 'megc'.*casme3_7cls"):
        build_records('megc', {}, {})
    with pytest.raises(ValueError, match='valid protocols'):
        get_classes('casme')


# ---------------------------------------------------------------- CASME II
def test_casme2_cropped_layout(tmp_path, casme2_sheet):
    root = casme2_tree(tmp_path / 'Cropped')
    report = build_records('casme2', dict(casme2=root), dict(casme2=casme2_sheet))
    records = by_id(report)
    assert sorted(records) == ['casme2/01/EP02_01f', 'casme2/04/EP12_01f',
                               'casme2/05/EP01_2', 'casme2/05/EP09f']
    rec = records['casme2/01/EP02_01f']
    assert (rec.subject, rec.clip_id, rec.label, rec.emotion) == ('01', 'EP02_01f',
                                                                  'happiness', 'happiness')
    assert (rec.onset, rec.apex, rec.offset, rec.fps) == (46, 59, 86, 200.0)
    assert rec.frame_numbers == list(range(46, 87))
    assert Path(rec.frame_paths[0]).name == 'reg_img46.jpg'
    assert Path(rec.frame_paths[-1]).name == 'reg_img86.jpg'
    assert rec.meta['action_units'] == '4+R10'
    assert rec.flags == []
    assert records['casme2/05/EP01_2'].label == 'others'
    # fear is not one of CASME II's 5 classes: skipped, with why
    assert whys(report.skipped, 'casme2/06/EP06_02_01') == [
        f"emotion 'fear' is not a class of protocol 'casme2' ({casme2_sheet}, row 6)"]


def test_casme2_apex_quirks(tmp_path, casme2_sheet):
    root = casme2_tree(tmp_path / 'Cropped')
    report = build_records('casme2', dict(casme2=root), dict(casme2=casme2_sheet))
    records = by_id(report)
    slash = records['casme2/04/EP12_01f']
    assert slash.apex is None
    assert "apex missing ('/'" in slash.flags[0]
    assert '(onset+offset)//2' in slash.flags[0]
    outside = records['casme2/05/EP09f']
    assert outside.apex is None
    assert 'apex 200 outside [onset 10, offset 30]' in outside.flags[0]
    assert len(report.flagged) == 2
    assert {f['id'] for f in report.flagged} == {slash.sample_id, outside.sample_id}


def test_casme2_raw_layout_and_3class_rule(tmp_path, casme2_sheet):
    root = casme2_tree(tmp_path / 'CASME2_RAW_selected', name=lambda n: f'img{n}.jpg',
                       subject_folder='SUB{}')  # folder case differs from the sheet
    report = build_records('casme2_3cls', dict(casme2=root), dict(casme2=casme2_sheet))
    labels = {r.clip_id: r.label for r in report.records}
    assert labels == {'EP02_01f': 'positive', 'EP12_01f': 'negative', 'EP09f': 'negative',
                      'EP06_02_01': 'negative'}
    rec = by_id(report)['casme2/01/EP02_01f']
    assert Path(rec.frame_paths[0]).name == 'img46.jpg'
    assert Path(rec.frame_paths[0]).parent.parent.name == 'SUB01'
    assert whys(report.skipped, 'casme2/05/EP01_2') == [
        f"emotion 'others' is not a class of protocol 'casme2_3cls' ({casme2_sheet}, row 5)"]


def test_missing_middle_frame_is_flagged_and_counted(tmp_path, casme2_sheet):
    root = casme2_tree(tmp_path / 'Cropped')
    clip = root / 'sub01' / 'EP02_01f'
    (clip / 'reg_img50.jpg').unlink()
    (clip / 'reg_img51.jpg').unlink()
    report = build_records('casme2', dict(casme2=root), dict(casme2=casme2_sheet))
    rec = by_id(report)['casme2/01/EP02_01f']
    assert 50 not in rec.frame_numbers and 51 not in rec.frame_numbers
    assert len(rec.frame_paths) == 41 - 2
    assert rec.frame_numbers == sorted(rec.frame_numbers)
    notes = whys(report.flagged, rec.sample_id)
    assert len(notes) == 1
    assert notes[0].startswith('2 of 41 frames missing') and '50, 51' in notes[0]


def test_missing_clip_folder_and_onset_frame_are_skipped(tmp_path, casme2_sheet):
    root = casme2_tree(tmp_path / 'Cropped')
    for frame in (root / 'sub05' / 'EP09f').iterdir():
        frame.unlink()
    (root / 'sub05' / 'EP09f').rmdir()
    (root / 'sub04' / 'EP12_01f' / 'reg_img21.jpg').unlink()
    report = build_records('casme2', dict(casme2=root), dict(casme2=casme2_sheet))
    assert 'casme2/05/EP09f' not in by_id(report)
    assert whys(report.skipped, 'casme2/05/EP09f') == [
        f'clip folder not found: {root / "sub05" / "EP09f"}']
    (why,) = whys(report.skipped, 'casme2/04/EP12_01f')
    assert why.startswith(f'onset frame 21 not found in {root / "sub04" / "EP12_01f"}')
    assert 'holds frames 20..41' in why


def test_frame_names_are_matched_by_last_integer_not_padding(tmp_path, casme2_sheet):
    root = tmp_path / 'Cropped'
    casme2_tree(root)
    clip = root / 'sub05' / 'EP01_2'
    for frame in clip.iterdir():
        frame.unlink()
    touch_frames(clip, range(5, 16), name=lambda n: f'frame_v2_{n:04d}.png')
    (clip / '._frame_v2_0006.png').touch()  # macOS resource fork: ignored
    (clip / 'notes.txt').touch()
    report = build_records('casme2', dict(casme2=root), dict(casme2=casme2_sheet))
    rec = by_id(report)['casme2/05/EP01_2']
    assert rec.frame_numbers == list(range(5, 16))
    assert Path(rec.frame_paths[1]).name == 'frame_v2_0006.png'


def test_two_files_for_one_frame_number_are_refused(tmp_path, casme2_sheet):
    root = casme2_tree(tmp_path / 'Cropped')
    (root / 'sub01' / 'EP02_01f' / 'reg_img060.jpg').touch()
    report = build_records('casme2', dict(casme2=root), dict(casme2=casme2_sheet))
    (why,) = whys(report.skipped, 'casme2/01/EP02_01f')
    assert 'several files for frame 60' in why and 'reg_img060.jpg' in why


def test_check_frames_false_reads_sheet_only(tmp_path, casme2_sheet):
    report = build_records('casme2', dict(casme2=tmp_path / 'nowhere'),
                           dict(casme2=casme2_sheet), check_frames=False)
    assert len(report.records) == 4
    assert all(r.frame_paths == [] and r.frame_numbers == [] for r in report.records)
    assert by_id(report)['casme2/01/EP02_01f'].offset == 86


def test_missing_data_root_raises_naming_it(tmp_path, casme2_sheet):
    root = tmp_path / 'no_such_root'
    with pytest.raises(FileNotFoundError, match="data_roots\\['casme2'\\].*no_such_root"):
        build_records('casme2', dict(casme2=root), dict(casme2=casme2_sheet))
    with pytest.raises(ValueError, match="data_roots\\['casme2'\\] is required"):
        build_records('casme2', {}, dict(casme2=casme2_sheet))


# ---------------------------------------------------------------- bad sheets
def test_sheet_without_needed_column(tmp_path):
    header = [c for c in CASME2_HEADER if c != 'OffsetFrame']
    path = write_sheet(tmp_path / 'bad.xlsx', header, [['01', 'EP02_01f', None, 46, 59, None,
                                                        '12', 'happiness', 1]])
    with pytest.raises(ValueError, match=r"bad\.xlsx: missing column 'OffsetFrame'"):
        build_records('casme2', {}, dict(casme2=path), check_frames=False)


def test_label_outside_class_map_names_file_row_value(tmp_path):
    rows = [casme2_row('01', 'EP02_01f', 46, 59, 86, 'happiness'),
            casme2_row('01', 'EP03_02', 131, 139, 161, 'joy')]
    path = write_sheet(tmp_path / 'c2.xlsx', CASME2_HEADER, rows)
    with pytest.raises(ValueError, match=r"c2\.xlsx, row 3: emotion 'joy' is not in the "
                                         r"class map of protocol 'casme2'"):
        build_records('casme2', {}, dict(casme2=path), check_frames=False)


def test_bad_frame_number_and_missing_sheet(tmp_path):
    path = write_sheet(tmp_path / 'c2.xlsx', CASME2_HEADER,
                       [casme2_row('01', 'EP02_01f', 'x46', 59, 86, 'happiness')])
    with pytest.raises(ValueError, match=r"c2\.xlsx, row 2: column 'OnsetFrame' holds 'x46'"):
        build_records('casme2', {}, dict(casme2=path), check_frames=False)
    with pytest.raises(FileNotFoundError, match='CASME II sheet not found: .*absent.xlsx'):
        build_records('casme2', {}, dict(casme2=tmp_path / 'absent.xlsx'), check_frames=False)
    with pytest.raises(FileNotFoundError, match='no CAS\\(ME\\)\\^3 sheet given'):
        build_records('casme3_7cls', {}, {}, check_frames=False)


def test_cde_list_label_outside_class_map(tmp_path, casme2_sheet):
    bad = tmp_path / 'cde.csv'
    bad.write_text('casme2,sub01,EP02_01f,1\ncasme2,sub04,EP12_01f,3\n')
    with pytest.raises(ValueError, match=r"cde\.csv, row 2: label '3' is outside"):
        build_records('cde', {}, dict(casme2=casme2_sheet, cde=bad), check_frames=False)
    bad.write_text('casme2,sub01,EP02_01f,1\nmmew,s1,x,0\n')
    with pytest.raises(ValueError, match=r"cde\.csv, row 2: dataset 'mmew'"):
        build_records('cde', {}, dict(casme2=casme2_sheet, cde=bad), check_frames=False)


# ---------------------------------------------------------------- SAMM
def test_samm_header_row_and_varying_padding(tmp_path):
    notes = [['SAMM Dataset - Master FACS Codes'], [], ['Symbol Key:'], ['"/" = or']]
    rows = [['006', '006_1_2', 1, 5562, 5588, 5632, 71, 'Micro - 1/2', '4+7', 'Anger', 3, None],
            [11, '011_2_1', 2, 120, 130, 140, 21, 'Micro - 1/2', 'R12', 'Happiness', 1, None],
            ['028', '028_4_1', 4, 1071, 1143, 1134, 64, 'Micro - 1/2', 'A14C', 'Contempt', 7,
             'Blinks'],
            ['030', '030_1_1', 1, 10, 12, 20, 11, 'Micro - 1/2', '4', 'Other', 7, None],
            ['031', '031_1_1', 1, 10, 12, 20, 11, 'Micro - 1/2', '4', 'Sadness', 6, None]]
    sheet = write_sheet(tmp_path / 'samm.xlsx', SAMM_HEADER, rows, 'MICRO_ONLY', notes)
    root = tmp_path / 'SAMM'
    touch_frames(root / '006' / '006_1_2', range(5560, 5640), lambda n: f'006_{n:05d}.jpg')
    touch_frames(root / '011' / '011_2_1', range(120, 141), lambda n: f'011_{n:04d}.jpg')
    touch_frames(root / '028' / '028_4_1', range(1071, 1135), lambda n: f'028_{n:06d}.jpg')
    touch_frames(root / '030' / '030_1_1', range(10, 21), lambda n: f'030_{n}.jpg')
    report = build_records('samm', dict(samm=root), dict(samm=sheet))
    records = by_id(report)
    assert sorted(records) == ['samm/006/006_1_2', 'samm/011/011_2_1', 'samm/028/028_4_1',
                               'samm/030/030_1_1']
    rec = records['samm/006/006_1_2']
    assert (rec.onset, rec.apex, rec.offset, rec.label, rec.fps) == (5562, 5588, 5632,
                                                                     'anger', 200.0)
    assert rec.frame_numbers == list(range(5562, 5633))
    assert Path(rec.frame_paths[0]).name == '006_05562.jpg'
    assert rec.meta['action_units'] == '4+7'
    # a subject cell stored as a number reads as '011'
    assert records['samm/011/011_2_1'].frame_numbers == list(range(120, 141))
    assert records['samm/011/011_2_1'].label == 'happiness'
    assert records['samm/030/030_1_1'].label == 'others'
    assert records['samm/030/030_1_1'].emotion == 'Other'
    quirk = records['samm/028/028_4_1']
    assert quirk.apex is None and 'apex 1143 outside' in quirk.flags[0]
    assert f'{sheet}, row 8' in quirk.flags[0]  # Excel row: 4 notes + header + 3rd row
    assert whys(report.skipped, 'samm/031/031_1_1')[0].startswith("emotion 'Sadness'")


def test_samm_sheet_without_header_row(tmp_path):
    sheet = write_sheet(tmp_path / 'samm.xlsx', ['Subj', 'Filename'], [['006', '006_1_2']],
                        'MICRO_ONLY', [['notes']])
    with pytest.raises(ValueError, match="no header row whose first cell is 'Subject'"):
        build_records('samm', {}, dict(samm=sheet), check_frames=False)


# ---------------------------------------------------------------- SMIC
def smic_tree(root):
    clips = {('s1', 'negative', 's1_ne_01'): range(100, 112),
             ('s1', 'positive', 's1_po_01'): range(40, 50),
             ('s3', 'surprise', 's3_sur_02'): range(7, 20),
             ('s12', 'negative', 's12_ne_03'): range(1, 6)}
    for (subject, emotion, clip), numbers in clips.items():
        touch_frames(root / subject / 'micro' / emotion / clip, numbers,
                     lambda n: f'image{n:06d}.bmp')
    touch_frames(root / 's1' / 'non_micro' / 's1_non_01', range(1, 5),
                 lambda n: f'image{n:06d}.bmp')
    return root


def test_smic_folder_layout(tmp_path):
    root = smic_tree(tmp_path / 'HS')
    (root / 's3' / 'micro' / 'surprise' / 's3_sur_02' / 'image000010.bmp').unlink()
    report = build_records('smic', dict(smic=root), {})
    records = by_id(report)
    assert sorted(records) == ['smic/s01/s01_ne_01', 'smic/s01/s01_po_01',
                               'smic/s03/s03_sur_02', 'smic/s12/s12_ne_03']
    rec = records['smic/s01/s01_ne_01']
    assert (rec.subject, rec.label, rec.emotion, rec.fps) == ('s01', 'negative', 'negative',
                                                              100.0)
    assert (rec.onset, rec.apex, rec.offset) == (100, None, 111)
    assert rec.frame_numbers == list(range(100, 112))
    assert Path(rec.frame_paths[0]).name == 'image000100.bmp'
    assert Path(rec.frame_paths[0]).parent.name == 's1_ne_01'
    assert records['smic/s03/s03_sur_02'].label == 'surprise'
    # no apex in SMIC is not a quirk; a missing frame is
    assert report.flagged == [dict(id='smic/s03/s03_sur_02', why=report.flagged[0]['why'])]
    assert report.flagged[0]['why'].startswith('1 of 13 frames missing')
    assert not any('non' in r.clip_id for r in report.records)


def test_smic_unknown_emotion_folder(tmp_path):
    root = smic_tree(tmp_path / 'HS')
    touch_frames(root / 's1' / 'micro' / 'happy' / 's1_ha_01', [1, 2])
    with pytest.raises(ValueError, match=r"folder .*s1_ha_01: emotion 'happy' is not in"):
        build_records('smic', dict(smic=root), {})


# ---------------------------------------------------------------- CAS(ME)^3
@pytest.fixture
def casme3_sheet(tmp_path):
    rows = [['spNO.1', 'a', 355, 359, 360, '5', 'II', 'others'],
            ['spNO.1', 'e', 62, 68, 96, 'R12', 'I', 'happy'],
            ['spNO.1', 'e', 96, 102, 106, 'R12', 'I', 'Others'],
            ['spNO.14', 'J', 1012, 1015, 1020, '4', 'III', 'disgust'],
            ['spNO.149', 'd', 112, 83, 130, 'T28+14', 'VII', 'fear'],
            ['spNO.216', 'd', 3647, 2668, 2694, '38', 'VII', 'others'],
            ['spNO.40', 'e', 1812, 1824, 0, '18', 'VII', 'surprise']]
    return write_sheet(tmp_path / 'casme3.xlsx', CASME3_HEADER, rows, 'label')


def test_casme3_whole_video_tree(tmp_path, casme3_sheet):
    root = tmp_path / 'part_A'
    touch_frames(root / 'spNo.1' / 'a' / 'color', range(1, 400), lambda n: f'{n}.jpg')
    touch_frames(root / 'spNo.1' / 'e' / 'color', range(1, 120), lambda n: f'{n}.jpg')
    touch_frames(root / 'spNO.14' / 'j' / 'color', range(1000, 1030), lambda n: f'{n}.jpg')
    touch_frames(root / 'spNo.1' / 'a' / 'depth', range(1, 400), lambda n: f'{n}.png')
    report = build_records('casme3_7cls', dict(casme3=root), dict(casme3=casme3_sheet))
    records = by_id(report)
    rec = records['casme3/spNO.1/a_355']
    assert (rec.subject, rec.clip_id, rec.label, rec.fps) == ('spNO.1', 'a_355', 'others', 30.0)
    assert rec.frame_numbers == list(range(355, 361))
    assert Path(rec.frame_paths[0]).parts[-4:] == ('spNo.1', 'a', 'color', '355.jpg')
    # two micro-expressions of one video are two samples
    assert records['casme3/spNO.1/e_62'].frame_numbers == list(range(62, 97))
    assert records['casme3/spNO.1/e_96'].label == 'others'  # 'Others' lower-cased
    assert records['casme3/spNO.1/e_96'].emotion == 'Others'
    upper = records['casme3/spNO.14/j_1012']
    assert upper.meta['video'] == 'j' and upper.meta['action_units'] == '4'
    assert any("Filename 'J' lower-cased" in f for f in upper.flags)
    # apex before onset: kept, flagged; no folder for it here: skipped with path
    assert whys(report.skipped, 'casme3/spNO.149/d_112') == [
        f'clip folder not found: {root / "spNO.149_d_112"} or '
        f'{root / "spNO.149" / "d" / "color"}']
    # onset after offset (sheet typo): repaired around the apex (checked in
    # test_casme3_counts_from_the_v2_sheet); no folder for it here: skipped
    assert 'clip folder not found' in whys(report.skipped, 'casme3/spNO.216/d_3647')[0]


def test_casme3_clip_folders_and_maps(tmp_path, casme3_sheet):
    root = tmp_path / 'Part_A_ME_clip'
    for clip, numbers in {'spNO.1_a_355': range(355, 361), 'spNO.1_e_62': range(62, 97),
                          'spno.1_e_96': range(96, 107), 'spNO.14_j_1012': range(1012, 1021),
                          'spNO.149_d_112': range(112, 131)}.items():
        touch_frames(root / 'frame' / clip, numbers, lambda n: f'{n}.jpg')
    report = build_records('casme3_4cls', dict(casme3=root), dict(casme3=casme3_sheet))
    records = by_id(report)
    assert {k: r.label for k, r in records.items()} == {
        'casme3/spNO.1/a_355': 'others', 'casme3/spNO.1/e_62': 'positive',
        'casme3/spNO.1/e_96': 'others', 'casme3/spNO.14/j_1012': 'negative',
        'casme3/spNO.149/d_112': 'negative'}
    assert Path(records['casme3/spNO.1/e_96'].frame_paths[0]).parent.name == 'spno.1_e_96'
    fear = records['casme3/spNO.149/d_112']
    assert fear.apex is None and 'apex 83 outside [onset 112, offset 130]' in fear.flags[0]
    report3 = build_records('casme3_3cls', dict(casme3=root), dict(casme3=casme3_sheet))
    assert sorted(r.label for r in report3.records) == ['negative', 'negative', 'positive']
    assert len([s for s in report3.skipped if "'others' is not a class" in s['why']]) == 2


# ---------------------------------------------------------------- exclusions
def test_exclusion_list(tmp_path, casme2_sheet):
    root = casme2_tree(tmp_path / 'Cropped')
    exclude = tmp_path / 'exclude.txt'
    exclude.write_text('# annotation errors\ncasme2/05/EP09f   # apex outside\n\n'
                       'casme2/99/EP00\ncasme2/06/EP06_02_01\n')
    report = build_records('casme2', dict(casme2=root), dict(casme2=casme2_sheet),
                           exclude_file=str(exclude))
    assert 'casme2/05/EP09f' not in by_id(report)
    assert whys(report.skipped, 'casme2/05/EP09f') == [f'excluded by {exclude}']
    assert whys(report.flagged, 'casme2/99/EP00') == [
        f'listed in {exclude} but matches no sample']
    # an id that names an already skipped clip matched something: not flagged
    assert whys(report.flagged, 'casme2/06/EP06_02_01') == []
    with pytest.raises(FileNotFoundError, match='exclusion list not found'):
        build_records('casme2', dict(casme2=root), dict(casme2=casme2_sheet),
                      exclude_file=str(tmp_path / 'nope.txt'))


# ---------------------------------------------------------------- official sheets
def test_shipped_cde_list():
    entries = read_cde_list()
    assert DEFAULT_CDE_LIST.is_file() and len(entries) == 442
    assert (entries[0].dataset, entries[0].subject, entries[0].clip_id, entries[0].label) == (
        'casme2', '01', 'EP02_01f', 'positive')
    samm = [e for e in entries if e.dataset == 'samm']
    assert samm[0].subject == '006' and samm[0].clip_id.startswith('006_')


def make_cde_tree(root):
    """Frames onset..offset of every CDE clip, from the official sheets and list."""
    report = build_records('cde', {}, dict(casme2=CASME2_SHEET, samm=SAMM_SHEET),
                           check_frames=False)
    for i, rec in enumerate(report.records):
        numbers = range(rec.onset, rec.offset + 1)
        if rec.dataset == 'casme2':
            touch_frames(root / 'casme2' / f'sub{rec.subject}' / rec.clip_id, numbers,
                         lambda n: f'reg_img{n}.jpg')
        elif rec.dataset == 'samm':
            width = 4 if int(rec.subject) % 2 else 5  # padding varies by subject
            touch_frames(root / 'samm' / rec.subject / rec.clip_id, numbers,
                         lambda n, s=rec.subject, w=width: f'{s}_{n:0{w}d}.jpg')
        else:
            subject = f's{int(rec.subject[1:])}'  # folders are unpadded: s1
            clip = subject + rec.clip_id[len(rec.subject):]
            start = 1000 + 37 * i
            touch_frames(root / 'smic' / subject / 'micro' / rec.label / clip,
                         range(start, start + 3 + i % 4), lambda n: f'reg_image{n:06d}.bmp')
    touch_frames(root / 'smic' / 's1' / 'non_micro' / 's1_no_01', range(1, 4),
                 lambda n: f'image{n:06d}.bmp')
    return dict(casme2=str(root / 'casme2'), samm=str(root / 'samm'),
                smic=str(root / 'smic'))


@pytest.fixture(scope='module')
def cde_tree(tmp_path_factory):
    if not (CASME2_SHEET.is_file() and SAMM_SHEET.is_file()):
        pytest.skip(f'official label sheets not found in {ANN_DIR}')
    return make_cde_tree(tmp_path_factory.mktemp('cde'))


def summary(records):
    return (len(records), len({(r.dataset, r.subject) for r in records}),
            Counter(r.label for r in records))


@needs_sheets
def test_cde_counts_from_frame_tree(cde_tree):
    start = time.perf_counter()
    report = build_records('cde', cde_tree, dict(casme2=CASME2_SHEET, samm=SAMM_SHEET))
    elapsed = time.perf_counter() - start
    print(f'build_records(cde) with a frame tree: {elapsed:.2f} s')
    assert report.skipped == []
    assert summary(report.records) == (442, 68, Counter(negative=250, positive=109,
                                                        surprise=83))
    per = {d: summary([r for r in report.records if r.dataset == d])
           for d in ('casme2', 'samm', 'smic')}
    assert per['casme2'] == (145, 24, Counter(negative=88, positive=32, surprise=25))
    assert per['samm'] == (133, 28, Counter(negative=92, positive=26, surprise=15))
    assert per['smic'] == (164, 16, Counter(negative=70, positive=51, surprise=43))
    assert all(r.frame_numbers == list(range(r.onset, r.offset + 1)) for r in report.records)
    assert {f['id'] for f in report.flagged} == {'samm/028/028_4_1', 'samm/032/032_3_1'}
    smic = by_id(report)['smic/s01/s01_ne_01']
    assert Path(smic.frame_paths[0]).parent.name == 's1_ne_01'
    assert elapsed < 20


@needs_sheets
def test_cde_missing_smic_clip_is_skipped(cde_tree, tmp_path):
    import shutil
    smic = Path(tmp_path / 'smic')
    shutil.copytree(cde_tree['smic'], smic)
    shutil.rmtree(smic / 's18' / 'micro' / 'surprise' / 's18_sur_03')  # as in the cropped set
    roots = dict(cde_tree, smic=str(smic))
    report = build_records('cde', roots, dict(casme2=CASME2_SHEET, samm=SAMM_SHEET))
    assert len(report.records) == 441
    assert report.skipped == [dict(id='smic/s18/s18_sur_03', why=(
        f'clip folder not found: {smic / "s18" / "micro" / "surprise" / "s18_sur_03"}'))]


@needs_sheets
def test_casme2_3cls_rule_on_the_2019_sheet():
    """The CDE rule keeps 11 clips that the official list leaves out.

    DATASETS.md names five (disgust/surprise relabels); the 2019 sheet also
    labels six former 'others' clips fear/sadness, which the rule makes
    negative.
    """
    report = build_records('casme2_3cls', {}, dict(casme2=CASME2_SHEET), check_frames=False)
    cde = {e.sample_id for e in read_cde_list() if e.dataset == 'casme2'}
    extra = {r.sample_id: r.emotion for r in report.records if r.sample_id not in cde}
    assert cde <= {r.sample_id for r in report.records}
    assert summary(report.records) == (156, 25, Counter(negative=96, positive=32, surprise=28))
    assert extra == {'casme2/04/EP12_01f': 'disgust', 'casme2/05/EP09_05f': 'disgust',
                     'casme2/24/EP07_01': 'surprise', 'casme2/24/EP07_04f': 'surprise',
                     'casme2/24/EP10_03': 'surprise', 'casme2/09/EP13_02': 'fear',
                     'casme2/10/EP13_01': 'fear', 'casme2/17/EP15_01': 'sadness',
                     'casme2/17/EP15_03': 'sadness', 'casme2/19/EP19_04': 'sadness',
                     'casme2/26/EP15_01': 'sadness'}
    assert len([s for s in report.skipped if "'others'" in s['why']]) == 99


@needs_sheets
@pytest.mark.parametrize('protocol,samples,subjects', [
    ('casme3_3cls', 699, 88), ('casme3_4cls', 860, 94), ('casme3_7cls', 860, 94)])
def test_casme3_counts_from_the_v2_sheet(protocol, samples, subjects):
    report = build_records(protocol, {}, dict(casme3=CASME3_SHEET), check_frames=False)
    assert summary(report.records)[:2] == (samples, subjects)
    # Three rows have offset before onset (sheet typos): repaired around the
    # apex, kept and flagged. They are all 'others' (dropped by 3-class).
    repaired = {f['id'] for f in report.flagged if 'repaired to' in f['why']}
    assert repaired == (set() if protocol == 'casme3_3cls' else {
        'casme3/spNO.216/d_3647', 'casme3/spNO.40/e_1812', 'casme3/spNO.40/e_2327'})
    by_id = {r.sample_id: r for r in report.records}
    if protocol != 'casme3_3cls':
        rec = by_id['casme3/spNO.216/d_3647']
        assert (rec.onset, rec.apex, rec.offset) == (2642, 2668, 2694)
        rec = by_id['casme3/spNO.40/e_2327']
        assert (rec.onset, rec.apex, rec.offset) == (2327, 2363, 2399)
    assert len(report.records) + len(report.skipped) == 860
    if protocol == 'casme3_7cls':
        assert Counter(r.label for r in report.records) == Counter(
            disgust=250, surprise=187, others=161, fear=86, anger=64, sad=57, happy=55)
    if protocol == 'casme3_4cls':
        assert Counter(r.label for r in report.records) == Counter(
            negative=457, surprise=187, others=161, positive=55)
