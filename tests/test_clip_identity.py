"""One identity per clip (issue 20, case 1): a clip reached from two subjects, two
spellings of one subject or twice for one subject is one clip, never two folds."""
import os

import pandas as pd
import pytest

from raicl_mm.datasets.folds import holdout_split, list_folds
from raicl_mm.datasets.records import ClipRecord
from raicl_mm.datasets.sources import build_records

from test_sources import (CASME3_HEADER, SAMM_HEADER, casme2_row, touch_frames,
                          write_sheet)
from test_sources_mmew import MMEW_HEADER

CASME2_HEADER = ['Subject', 'Filename', None, 'OnsetFrame', 'ApexFrame', 'OffsetFrame', None,
                 'Action Units', 'Estimated Emotion', 'Objective Classes']


def _generic(tmp_path, rows, holdout_column=True):
    path = tmp_path / 'labels.csv'
    pd.DataFrame(rows).to_csv(path, index=False)
    root = tmp_path / 'frames'
    for r in rows:
        touch_frames(root / r['Participant'] / r['Video'], range(r['Start'], r['End'] + 1))
    spec = dict(source='sheet', name='gen', dataset='gen', classes=['a', 'b'],
                columns=dict(subject='Participant', clip='Video', onset='Start',
                             offset='End', label='Emotion', split='Set'),
                fps=100.0, frames='{subject}/{clip}')
    return spec, dict(gen=str(root)), dict(gen=str(path))


def test_one_clip_under_two_spellings_of_a_subject_is_refused_naming_both_rows(tmp_path):
    # the sheet: S1 train, s1 test, one folder frames/S1/EP01_06
    rows = [dict(Participant='S1', Video='EP01_06', Start=1, End=9, Emotion='a', Set='train'),
            dict(Participant='s1', Video='EP01_06', Start=1, End=9, Emotion='a', Set='test'),
            dict(Participant='S2', Video='EP01_01', Start=1, End=9, Emotion='b', Set='train')]
    spec, roots, anns = _generic(tmp_path, rows[:1] + rows[2:])
    pd.DataFrame(rows).to_csv(anns['gen'], index=False)
    with pytest.raises(ValueError, match=r"appears twice: .*labels\.csv, row 2 and "
                                         r".*labels\.csv, row 3"):
        build_records(spec, roots, anns)
    # without the frames too (the sheet alone)
    with pytest.raises(ValueError, match='row 2 and .*row 3'):
        build_records(spec, roots, anns, check_frames=False)


def test_two_spellings_of_a_subject_are_one_subject_one_fold(tmp_path):
    rows = [dict(Participant='S1', Video='v1', Start=1, End=9, Emotion='a', Set='train'),
            dict(Participant='s1', Video='v2', Start=1, End=9, Emotion='b', Set='test'),
            dict(Participant='S2', Video='v1', Start=1, End=9, Emotion='b', Set='train'),
            dict(Participant='S3', Video='v1', Start=1, End=9, Emotion='b', Set='train')]
    spec, roots, anns = _generic(tmp_path, rows)
    report = build_records(spec, roots, anns)
    assert list_folds(report.records) == ['gen_S1', 'gen_S2', 'gen_S3']
    respelled = [f for f in report.flagged if f['id'] == 'gen/S1/v2']
    assert respelled and "subject 's1'" in respelled[0]['why'] and 'row 3' in \
        respelled[0]['why']
    # the hold-out split now sees S1 in train and test and refuses it
    with pytest.raises(ValueError, match=r"subject gen_S1 is in both '(train|val)' and 'test'"):
        holdout_split(report.records, dict(by='column', train=['train'], test=['test'],
                                           val_fraction=0.34))


def test_one_folder_under_two_clip_spellings_is_refused(tmp_path):
    sheet = write_sheet(tmp_path / 'casme2.xlsx', CASME2_HEADER,
                        [casme2_row('01', 'EP02_01f', 46, 59, 86, 'happiness'),
                         casme2_row('01', 'ep02_01F', 46, 59, 86, 'happiness')])
    root = tmp_path / 'Cropped'
    touch_frames(root / 'sub01' / 'EP02_01f', range(46, 87))
    with pytest.raises(ValueError, match=r"sub01/EP02_01f is listed twice: casme2/01/EP02_01f "
                                         r"\(.*row 2\) and casme2/01/ep02_01F \(.*row 3\)"):
        build_records('casme2', dict(casme2=root), dict(casme2=sheet))


def test_mmew_filename_under_two_subjects_is_refused_naming_both_rows(tmp_path):
    rows = [('S01', 'S01_ha_01', 1, 12, 30, 'happiness', 'AU12', ''),
            ('S02', 'S01_ha_01', 1, 12, 30, 'happiness', 'AU12', ''),
            ('S02', 'S02_su_01', 1, 12, 30, 'surprise', 'AU1', '')]
    sheet = write_sheet(tmp_path / 'MMEW_Micro_Exp.xlsx', MMEW_HEADER, [list(r) for r in rows])
    root = tmp_path / 'MMEW' / 'Micro_Expression'
    touch_frames(root / 'Happiness' / 'S01_ha_01', range(1, 31), lambda n: f'{n}.jpg')
    touch_frames(root / 'Surprise' / 'S02_su_01', range(1, 31), lambda n: f'{n}.jpg')
    with pytest.raises(ValueError, match=r"S01_ha_01 is reached from two subjects: '01'? ?"
                                         r"|S01_ha_01 is reached from two subjects"):
        build_records('mmew_3cls', dict(mmew=str(tmp_path / 'MMEW')), dict(mmew=sheet))
    try:
        build_records('mmew_3cls', dict(mmew=str(tmp_path / 'MMEW')), dict(mmew=sheet))
    except ValueError as err:
        assert 'row 2' in str(err) and 'row 3' in str(err)


def test_casme3_subject_spellings_are_one_subject(tmp_path):
    rows = [['spNO.1', 'a', 10, 12, 20, '5', 'II', 'happy'],
            ['spNo.1', 'b', 10, 12, 20, '5', 'II', 'surprise'],
            ['spNO.2', 'a', 10, 12, 20, '5', 'II', 'happy']]
    sheet = write_sheet(tmp_path / 'casme3.xlsx', CASME3_HEADER, rows, 'label')
    root = tmp_path / 'part_A'
    for subject, video in (('spNO.1', 'a'), ('spNO.1', 'b'), ('spNO.2', 'a')):
        touch_frames(root / subject / video / 'color', range(1, 30), lambda n: f'{n}.jpg')
    report = build_records('casme3_3cls', dict(casme3=root), dict(casme3=sheet))
    assert list_folds(report.records) == ['casme3_spNO.1', 'casme3_spNO.2']
    assert sorted(r.sample_id for r in report.records) == [
        'casme3/spNO.1/a_10', 'casme3/spNO.1/b_10', 'casme3/spNO.2/a_10']


def test_samm_clip_folder_linked_under_two_subjects_is_refused(tmp_path):
    rows = [['006', '006_1_2', 1, 10, 15, 20, 11, 'Micro', '4', 'Anger', 3, None],
            ['007', '007_1_2', 1, 10, 15, 20, 11, 'Micro', '4', 'Anger', 3, None]]
    sheet = write_sheet(tmp_path / 'samm.xlsx', SAMM_HEADER, rows, 'MICRO_ONLY')
    root = tmp_path / 'SAMM'
    touch_frames(root / '006' / '006_1_2', range(5, 25))
    (root / '007').mkdir()
    os.symlink(root / '006' / '006_1_2', root / '007' / '007_1_2')
    with pytest.raises(ValueError, match=r"reached from two subjects: '006' \(.*row 2\) and "
                                         r"'007' \(.*row 3\)"):
        build_records('samm', dict(samm=root), dict(samm=sheet))


def test_smic_clip_linked_under_two_subjects_is_refused(tmp_path):
    root = tmp_path / 'HS'
    touch_frames(root / 's1' / 'micro' / 'negative' / 's1_ne_01', range(1, 9))
    (root / 's2' / 'micro' / 'negative').mkdir(parents=True)
    os.symlink(root / 's1' / 'micro' / 'negative' / 's1_ne_01',
               root / 's2' / 'micro' / 'negative' / 's2_ne_01')
    with pytest.raises(ValueError, match="reached from two subjects: 's01'.*'s02'"):
        build_records('smic', dict(smic=root), {})


def test_holdout_subject_named_in_two_lists_is_refused():
    recs = [ClipRecord(dataset='dfme', subject=s, clip_id='c', label='a', onset=0, apex=None,
                       offset=1) for s in ('a', 'b', 'c')]
    with pytest.raises(ValueError, match=r"subject dfme_a is named in holdout\.train \('a'\) "
                                         r"and holdout\.test \('dfme_a'\)"):
        holdout_split(recs, dict(by='subjects', train=['a', 'b'], val=['c'],
                                 test=['dfme_a']))
