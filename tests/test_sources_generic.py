"""Bring-your-own-sheet source (sheet protocols) on sheets and trees made here."""
import pandas as pd
import pytest

from raicl_mm.datasets.sources import build_records, get_classes

from test_sources import touch_frames

CLASSES = ['happiness', 'anger', 'surprise']


def spec(**over):
    out = dict(source='sheet', name='lab', dataset='lab', classes=CLASSES,
               columns=dict(subject='Participant', clip='Video', onset='Start',
                            apex='Peak', offset='End', label='Emotion', split='Set'),
               fps=100.0, frames='{subject}/{clip}')
    out.update(over)
    return out


ROWS = [dict(Participant='p1', Video='v1', Start=10, Peak=15, End=30, Emotion='Happiness',
             Set='train'),
        dict(Participant='p1', Video='v2', Start=1, Peak='', End=12, Emotion='anger',
             Set='train'),
        dict(Participant='p2', Video='v1', Start=3, Peak=9, End=20, Emotion='surprise',
             Set='test')]


def make(tmp_path, rows=ROWS, suffix='.csv', name=lambda n: f'frame_{n:04d}.png'):
    path = tmp_path / f'labels{suffix}'
    frame = pd.DataFrame(rows)
    if suffix == '.csv':
        frame.to_csv(path, index=False)
    else:
        frame.to_excel(path, index=False)
    root = tmp_path / 'frames'
    for r in rows:
        touch_frames(root / r['Participant'] / r['Video'], range(r['Start'], r['End'] + 1),
                     name=name)
    return dict(lab=str(root)), dict(lab=str(path))


@pytest.mark.parametrize('suffix', ['.csv', '.xlsx'])
def test_sheet_protocol_reads_through_the_column_map(tmp_path, suffix):
    roots, anns = make(tmp_path, suffix=suffix)
    report = build_records(spec(), roots, anns)
    assert get_classes(spec()) == CLASSES
    by = {r.sample_id: r for r in report.records}
    assert sorted(by) == ['lab/p1/v1', 'lab/p1/v2', 'lab/p2/v1']
    first = by['lab/p1/v1']
    assert (first.label, first.onset, first.apex, first.offset, first.fps) == (
        'happiness', 10, 15, 30, 100.0)
    assert first.frame_numbers == list(range(10, 31))
    assert first.meta['split'] == 'train' and 'template' not in first.meta
    # a blank apex in an apex column is flagged, as in the built-in parsers
    assert by['lab/p1/v2'].apex is None
    assert any('apex missing' in f for f in by['lab/p1/v2'].flags)


def test_frame_file_template_takes_exactly_the_named_files(tmp_path):
    roots, anns = make(tmp_path, rows=ROWS[:1], name=lambda n: f'img{n:05d}.jpg')
    folder = tmp_path / 'frames' / 'p1' / 'v1'
    (folder / 'thumb00012.jpg').touch()      # matches the last-integer rule, not the template
    (folder / 'img00099.jpg.bak').touch()
    report = build_records(spec(frames='{subject}/{clip}/img{frame:05d}.jpg'), roots, anns)
    (rec,) = report.records
    assert rec.frame_numbers == list(range(10, 31))
    assert all(p.endswith(f'img{n:05d}.jpg') for p, n in zip(rec.frame_paths,
                                                               rec.frame_numbers))


def test_fps_column_class_map_and_no_apex_column(tmp_path):
    rows = [dict(r, FPS=fps) for r, fps in zip(ROWS, (200, '', 500))]
    roots, anns = make(tmp_path, rows=rows)
    columns = dict(subject='Participant', clip='Video', onset='Start', offset='End',
                   label='Emotion', fps='FPS')
    report = build_records(spec(columns=columns, fps=50.0,
                                class_map=dict(happiness='happiness', anger=None,
                                               surprise='surprise')), roots, anns)
    assert [(r.clip_id, r.fps, r.apex, r.flags) for r in report.records] == [
        ('v1', 200.0, None, []), ('v1', 500.0, None, [])]
    assert report.skipped[0]['id'] == 'lab/p1/v2' and 'not a class' in report.skipped[0]['why']


@pytest.mark.parametrize('over,message', [
    (dict(columns=dict(subject='Participant')), r'protocol\.columns\.clip is required'),
    (dict(columns=dict(ROWS[0], bogus='x')), r'protocol\.columns has unknown key'),
    (dict(fps=None), r'give the frame rate'),
    (dict(fps=-3), r'protocol\.fps must be a positive number'),
    (dict(frames='/abs/{clip}'), r'must be relative'),
    (dict(frames='{subject}/../{clip}'), r'must be relative'),
    (dict(frames='{subject}/{clip}/{frame}/x.jpg'), r'\{frame\} may only appear'),
    (dict(frames='{who}/{clip}'), r'unknown field \{who\}'),
    (dict(classes=[]), r'protocol\.classes must be a non-empty list'),
    (dict(classes=['a', 'a']), r'lists a class twice'),
    (dict(class_map=dict(joy='delight')), r"class_map\['joy'\] = 'delight' is not one of"),
    (dict(dataset='../x'), r'protocol\.dataset must be a key'),
    (dict(extra=1), r'unknown key\(s\) extra'),
])
def test_bad_sheet_protocols_name_the_key(tmp_path, over, message):
    roots, anns = make(tmp_path, rows=ROWS[:1])
    with pytest.raises(ValueError, match=message):
        build_records(spec(**over), roots, anns)


@pytest.mark.parametrize('column,value,message', [
    ('Start', 'ten', r"labels\.csv, row 2: column 'Start' holds 'ten'"),
    ('Video', '', r"labels\.csv, row 2: column 'Video' is empty"),
    ('Emotion', 'joy', r"labels\.csv, row 2: emotion 'joy' is not in the class map of "
                       r"protocol 'lab'"),
    ('Video', '../../etc', r"labels\.csv, row 2: clip '\.\./\.\./etc' cannot be part"),
])
def test_bad_cells_name_file_row_column(tmp_path, column, value, message):
    roots, anns = make(tmp_path, rows=ROWS[:1])
    pd.DataFrame([dict(ROWS[0], **{column: value})]).to_csv(anns['lab'], index=False)
    with pytest.raises(ValueError, match=message):
        build_records(spec(), roots, anns)


def test_missing_mapped_column_names_the_sheet(tmp_path):
    roots, anns = make(tmp_path, rows=ROWS[:1])
    with pytest.raises(ValueError, match=r"labels\.csv: missing column 'Onset'"):
        build_records(spec(columns=dict(spec()['columns'], onset='Onset')), roots, anns)


def test_missing_folder_and_onset_are_skipped_naming_the_path(tmp_path):
    roots, anns = make(tmp_path)
    (tmp_path / 'frames' / 'p1' / 'v2' / 'frame_0001.png').unlink()
    for f in (tmp_path / 'frames' / 'p2' / 'v1').iterdir():
        f.unlink()
    (tmp_path / 'frames' / 'p2' / 'v1').rmdir()
    report = build_records(spec(), roots, anns)
    why = {s['id']: s['why'] for s in report.skipped}
    assert 'onset frame 1 not found' in why['lab/p1/v2']
    assert why['lab/p2/v1'].startswith('clip folder not found') and 'p2/v1' in why['lab/p2/v1']
