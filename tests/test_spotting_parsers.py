"""CAS(ME)^3 part A and SAMM-LV long-video parsers on fixture trees made here.

The trees and sheets follow the layouts public spotting code reads (see
raicl_mm/datasets/long_videos.py): CAS(ME)^3 as qin123xyz/MEGC2023_macro-and-
micro-expression-spotting (val_cas3.py) reads ``CAS(ME)3_part_A_v1.xls`` and
``<subject>/<video>/color/<n>.jpg``; SAMM-LV as genbing99/MEAN_Spot-then-
recognize (load_excel.py) reads ``SAMM_LongVideos_V*_Release.xlsx`` (10 rows
skipped) and ``SAMM_longvideos/<video>/*.jpg``.
"""
import cv2
import numpy as np
import pytest
from openpyxl import Workbook

from raicl_mm.datasets.long_videos import (read_casme3_part_a, read_samm_lv, str_label,
                                           summarise)


def _frames(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    img = np.full((8, 8, 3), 128, np.uint8)
    for n in names:
        cv2.imwrite(str(folder / n), img)


def _xlsx(path, rows):
    wb = Workbook()
    ws = wb.active
    for r in rows:
        ws.append(list(r))
    wb.save(path)


def test_casme3_part_a_tree(tmp_path):
    root = tmp_path / 'part_A' / 'data' / 'part_A'
    _frames(root / 'spNO.1' / 'a' / 'color', [f'{i}.jpg' for i in range(0, 40)])
    _frames(root / 'spNO.1' / 'b' / 'color', [f'{i}.jpg' for i in range(5, 30)])
    _frames(root / 'spNO.2' / 'a' / 'color', [f'{i}.jpg' for i in range(0, 20)])
    ann = tmp_path / 'CAS(ME)3_part_A_v1.xlsx'
    _xlsx(ann, [
        ('Subject', 'Filename', 'Onset', 'Apex', 'Offset', 'AU', 'Type', 'emotion'),
        ('spNO.1', 'A', 3, 6, 10, '4+9', 'Micro-expression', 'disgust'),
        ('spNO.1', 'a', 15, 22, 35, '12', 'Macro-expression', 'happy'),
        ('spNO.1', 'b', 8, 0, 12, '1+2', 'Micro-expression', 'surprise'),
        ('spNO.2', 'a', 2, 4, 6, '14', 'Micro-expression', 'others'),
    ])
    recs = read_casme3_part_a(str(root), str(ann))
    assert [r.key for r in recs] == ['spNO.1/a', 'spNO.1/b', 'spNO.2/a']
    a = recs[0]
    assert a.fps == 30.0 and a.num_frames == 40 and a.frame_numbers[:3] == [0, 1, 2]
    assert [(i['onset'], i['offset'], i['type'], i['label']) for i in a.intervals] == \
        [(3, 10, 'micro', 'negative'), (15, 35, 'macro', 'positive')]
    b = recs[1]
    assert b.intervals[0]['apex'] is None          # apex 0 = not annotated
    assert b.gt_indices()[0]['onset'] == 3          # frame 8 is the 4th frame (5..29)
    assert recs[2].intervals[0]['label'] is None    # 'others' is not an STR class
    assert summarise(recs)['micro']['count'] == 3
    only_micro = read_casme3_part_a(str(root), str(ann), types=('micro',))
    assert sum(len(r.intervals) for r in only_micro) == 3


def test_casme3_positional_sheet_without_header_and_missing_video(tmp_path):
    root = tmp_path / 'data'
    _frames(root / 'spNO.7' / 'c' / 'color', [f'{i}.jpg' for i in range(10)])
    ann = tmp_path / 'sheet.csv'
    ann.write_text('spNO.7,c,1,3,5,4,Micro-expression\n')
    recs = read_casme3_part_a(str(root), str(ann))
    assert recs[0].intervals[0]['au'] == '4' and recs[0].intervals[0]['emotion'] is None
    ann.write_text('spNO.7,d,1,3,5,4,Micro-expression\n')
    with pytest.raises(FileNotFoundError, match='spNO.7/d'):
        read_casme3_part_a(str(root), str(ann))


def test_samm_lv_tree(tmp_path):
    _frames(tmp_path / 'SAMM_longvideos' / '006_1', [f'006_1_{i:04d}.jpg' for i in range(1, 61)])
    _frames(tmp_path / 'SAMM_longvideos' / '007_3', [f'007_3_{i:04d}.jpg' for i in range(1, 31)])
    title = [('SAMM Long Videos',)] + [(None,)] * 8
    header = [('Subject', 'Filename', 'Inducement Code', 'Onset', 'Apex', 'Offset',
               'Duration', 'Type', 'Action Units', 'Notes')]
    _xlsx(tmp_path / 'SAMM_LongVideos_V3_Release.xlsx', title + header + [
        ('006', '006_1_1', 1, 5, 9, 20, 16, 'Micro - 1/2', 'R12', None),
        ('006', '006_1_2', 1, 25, 40, 55, 31, 'Macro', '4', None),
        ('007', '007_3_1', 3, 2, 5, 9, 8, 'Micro - 1/2', '1+2', None),
    ])
    _xlsx(tmp_path / 'SAMM_Micro_FACS_Codes_v2.xlsx', [
        ('Subject', 'Filename', 'Inducement Code', 'Onset', 'Apex', 'Offset', 'Duration',
         'Type', 'Action Units', 'Emotion', 'Classes', 'Notes'),
        ('006', '006_1_1', 1, 5, 9, 20, 16, 'Micro - 1/2', 'R12', 'Happiness', 1, None),
        ('007', '007_3_1', 3, 2, 5, 9, 8, 'Micro - 1/2', '1+2', 'Surprise', 5, None),
    ])
    recs = read_samm_lv(str(tmp_path), emotion_file=str(tmp_path / 'SAMM_Micro_FACS_Codes_v2.xlsx'))
    assert [(r.subject, r.video, r.fps) for r in recs] == [('006', '006_1', 200.0),
                                                            ('007', '007_3', 200.0)]
    r = recs[0]
    assert r.frame_numbers[0] == 1 and r.num_frames == 60
    assert [(i['onset'], i['apex'], i['offset'], i['type'], i['label']) for i in r.intervals] \
        == [(5, 9, 20, 'micro', 'positive'), (25, 40, 55, 'macro', None)]
    assert r.gt_indices()[0]['onset'] == 4            # frame 5 is the 5th frame (1-based)
    assert recs[1].intervals[0]['label'] == 'surprise'
    no_emotion = read_samm_lv(str(tmp_path))
    assert no_emotion[0].intervals[0]['label'] is None


def test_str_labels():
    assert [str_label(e) for e in ('Happiness', 'disgust', 'Surprise', 'Others', None)] == \
        ['positive', 'negative', 'surprise', None, None]
