"""MMEW parser on a sheet made in the distributed layout (the real sheet is not here)."""
from pathlib import Path

import pytest

from raicl_mm.datasets.sources import build_records, get_classes
from raicl_mm.datasets.sources.mmew import MEB_CORRECTIONS

from test_sources import touch_frames, write_sheet

MMEW_HEADER = ['Subject', 'Filename', 'OnsetFrame', 'ApexFrame', 'OffsetFrame',
               'Estimated Emotion', 'Action Units', 'remarks']
#: (subject, filename, onset, apex, offset, emotion): one of each MMEW emotion.
ROWS = [('S01', 'S01_ha_01', 1, 12, 30, 'happiness'),
        ('S01', 'S01_su_01', 5, 20, 40, 'surprise'),
        ('S02', 'S02_di_01', 1, 15, 33, 'disgust'),
        ('S02', 'S02_fe_01', 1, 8, 20, 'fear'),
        ('S03', 'S03_sa_01', 1, 9, 22, 'sadness'),
        ('S03', 'S03_an_01', 1, 7, 18, 'anger'),
        ('S03', 'S03_ot_01', 1, 10, 25, 'others')]


def make_mmew(tmp_path, rows=ROWS, frames=True):
    sheet = write_sheet(tmp_path / 'MMEW_Micro_Exp.xlsx', MMEW_HEADER,
                        [list(r) + ['AU12', ''] for r in rows])
    root = tmp_path / 'MMEW' / 'Micro_Expression'
    if frames:
        for _, name, onset, _, offset, emotion in rows:
            touch_frames(root / emotion.capitalize() / name, range(onset, offset + 1),
                         name=lambda n: f'{n}.jpg')
    return dict(mmew=str(tmp_path / 'MMEW')), dict(mmew=sheet)


def test_mmew_3_and_5_classes_from_the_emotion_folders(tmp_path):
    roots, anns = make_mmew(tmp_path)
    three = build_records('mmew_3cls', roots, anns)
    assert get_classes('mmew_3cls') == ['negative', 'positive', 'surprise']
    labels = {r.clip_id: r.label for r in three.records}
    assert labels == {'S01_ha_01': 'positive', 'S01_su_01': 'surprise',
                      'S02_di_01': 'negative', 'S02_fe_01': 'negative',
                      'S03_sa_01': 'negative', 'S03_an_01': 'negative'}
    assert [s['id'] for s in three.skipped] == ['mmew/S03/S03_ot_01']
    five = build_records('mmew_5cls', roots, anns)
    assert sorted(r.label for r in five.records) == ['disgust', 'fear', 'happiness',
                                                     'others', 'surprise']
    assert sorted(s['id'] for s in five.skipped) == ['mmew/S03/S03_an_01',
                                                     'mmew/S03/S03_sa_01']
    rec = next(r for r in five.records if r.clip_id == 'S01_su_01')
    assert rec.frame_numbers == list(range(5, 41)) and rec.fps == 90.0
    assert rec.apex == 20 and rec.meta['action_units'] == 'AU12'
    assert Path(rec.frame_paths[0]).parent.name == 'S01_su_01'
    # the root may also be the Micro_Expression folder itself
    direct = build_records('mmew_5cls', dict(mmew=str(tmp_path / 'MMEW' / 'Micro_Expression')),
                           anns)
    assert len(direct.records) == 5


def test_mmew_missing_folder_is_skipped_with_the_expected_path(tmp_path):
    roots, anns = make_mmew(tmp_path, rows=ROWS[:1], frames=False)
    (tmp_path / 'MMEW' / 'Micro_Expression' / 'happiness').mkdir(parents=True)
    report = build_records('mmew_3cls', roots, anns)
    assert report.records == []
    assert 'clip folder not found' in report.skipped[0]['why']
    assert 'happiness/S01_ha_01' in report.skipped[0]['why']


def test_meb_corrections_only_where_the_sheet_is_inconsistent(tmp_path):
    rows = [('S%02d' % (i % 5), f'clip{i}', 1, 10, 110, 'surprise') for i in range(40)]
    # Excel row 35 is data row 33 (header on row 1): apex missing -> corrected
    rows[33] = ('S01', 'bad_apex', 1, '/', 60, 'surprise')
    # Excel row 37: a consistent annotation is never overwritten
    rows[35] = ('S01', 'fine', 1, 30, 100, 'surprise')
    # Excel row 38: inconsistent, but the correction does not fit the onset
    rows[36] = ('S01', 'late_onset', 50, 70, 60, 'surprise')
    roots, anns = make_mmew(tmp_path, rows=rows, frames=False)
    report = build_records('mmew_3cls', roots, anns, check_frames=False)
    by = {r.clip_id: r for r in report.records}
    assert (by['bad_apex'].apex, by['bad_apex'].offset) == MEB_CORRECTIONS[35] == (40, 75)
    assert any('corrected to 40/75' in f and 'row 35' in f for f in by['bad_apex'].flags)
    assert (by['fine'].apex, by['fine'].offset) == (30, 100)
    assert not any('corrected' in f for f in by['fine'].flags)
    # inconsistent, MEB's values do not fit: left to the shared offset repair
    assert not any('corrected' in f for f in by['late_onset'].flags)
    assert any('apex 70 outside' in f for f in by['late_onset'].flags)


@pytest.mark.parametrize('column,value,message', [
    ('OnsetFrame', 'x1', r"MMEW_Micro_Exp\.xlsx, row 2: column 'OnsetFrame' holds 'x1'"),
    ('Subject', None, r"MMEW_Micro_Exp\.xlsx, row 2: column 'Subject' is empty"),
    ('Estimated Emotion', 'joy', r"MMEW_Micro_Exp\.xlsx, row 2: emotion 'joy' is not in"),
])
def test_mmew_bad_cells_name_file_row_column(tmp_path, column, value, message):
    row = list(ROWS[0])
    row[MMEW_HEADER.index(column)] = value
    roots, anns = make_mmew(tmp_path, rows=[tuple(row)], frames=False)
    with pytest.raises(ValueError, match=message):
        build_records('mmew_3cls', roots, anns, check_frames=False)


def test_mmew_missing_column_and_sheet(tmp_path):
    path = write_sheet(tmp_path / 'm.xlsx', MMEW_HEADER[:4], [list(ROWS[0][:4])])
    with pytest.raises(ValueError, match=r"m\.xlsx: missing column 'OffsetFrame'"):
        build_records('mmew_3cls', {}, dict(mmew=path), check_frames=False)
    with pytest.raises(FileNotFoundError, match='no MMEW sheet given'):
        build_records('mmew_3cls', {}, {}, check_frames=False)
