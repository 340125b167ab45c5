"""Fuzz: the official label sheets of tests/fixtures mutated a few hundred times.

Each mutation (columns deleted or renamed, cells emptied, text in number
columns, onset/offset swapped, bytes damaged, a wrong worksheet, a wrong or
missing extension, 0 bytes, a header without rows) must end in either a
one-line ``ValueError`` / ``FileNotFoundError`` naming the sheet file, or in
records that are each a clip of the unmutated sheet with its own frames:
never a traceback, never a clip with wrong frames. The sheets are cut to their
first rows (the header and notes kept) so that 300 cases run in seconds.
"""
import os
import random
from pathlib import Path

import pandas as pd
import pytest

from raicl_mm.datasets.sources import build_records

from test_sources import ANN_DIR, CASME2_SHEET, CASME3_SHEET, SAMM_SHEET, touch_frames

ROWS_KEPT = 40
CASES = 300
#: dataset key, protocol, sheet, worksheet, frame-number columns (as in the sheet)
SHEETS = [
    ('casme2', 'casme2', CASME2_SHEET, None, ('OnsetFrame', 'ApexFrame', 'OffsetFrame')),
    ('samm', 'samm', SAMM_SHEET, 'MICRO_ONLY', ('Onset Frame', 'Apex Frame', 'Offset Frame')),
    ('casme3', 'casme3_7cls', CASME3_SHEET, 'label', ('Onset', 'Apex', 'Offset')),
]
pytestmark = pytest.mark.skipif(
    not all(s[2].is_file() for s in SHEETS),
    reason=f'official label sheets not found in {ANN_DIR}')


def _grid(path, sheet):
    raw = pd.read_excel(path, sheet_name=sheet or 0, header=None, dtype=str)
    cells = raw.where(raw.notna(), None).values.tolist()
    header = next(i for i, row in enumerate(cells)
                  if str(row[0]).strip().lower() == 'subject')
    return cells[:header + 1 + ROWS_KEPT], header


def _write(grid, path, sheet='Sheet1'):
    frame = pd.DataFrame(grid)
    if str(path).endswith('.csv'):
        frame.to_csv(path, header=False, index=False)
    else:
        frame.to_excel(path, sheet_name=sheet, header=False, index=False)
    return path


@pytest.fixture(scope='module')
def base(tmp_path_factory):
    """Cut sheets, their records (unmutated), and a complete CASME II frame tree."""
    tmp = tmp_path_factory.mktemp('fuzz')
    out = {}
    for key, protocol, path, sheet, numbers in SHEETS:
        grid, header = _grid(path, sheet)
        xlsx = _write(grid, tmp / f'{key}_base.xlsx', sheet or 'Sheet1')
        report = build_records(protocol, {}, {key: str(xlsx)}, check_frames=False)
        truth = {r.sample_id: r for r in report.records}
        out[key] = dict(protocol=protocol, grid=grid, header=header, sheet=sheet,
                        numbers=numbers, xlsx=xlsx, truth=truth,
                        skipped={s['id'] for s in report.skipped})
    root = tmp / 'casme2_frames'
    for rec in out['casme2']['truth'].values():
        touch_frames(root / f'sub{rec.subject}' / rec.clip_id,
                     range(rec.onset, rec.offset + 1))
    out['casme2']['root'] = root
    assert all(len(v['truth']) > 10 for v in out.values())
    return out


def _mutate(rng, info, folder, case):
    """A mutated copy of one sheet: ``(path, what was done)``."""
    grid = [list(row) for row in info['grid']]
    header = info['header']
    names = [str(c) if c is not None else '' for c in grid[header]]
    data_rows = range(header + 1, len(grid))
    col_of = {n: i for i, n in enumerate(names)}
    kind = rng.choice(['delete_col', 'rename_col', 'empty_cell', 'text_number',
                       'swap', 'damage', 'wrong_sheet', 'extension', 'empty_file',
                       'header_only', 'duplicate_row', 'xlsx_cells'])
    suffix = '.csv'
    sheet = info['sheet'] or 'Sheet1'
    if kind == 'delete_col':
        c = rng.randrange(len(names))
        grid = [row[:c] + row[c + 1:] for row in grid]
    elif kind == 'rename_col':
        c = rng.randrange(len(names))
        grid[header][c] = (names[c] or 'x') + rng.choice(['_', ' 2', 'X'])
    elif kind in ('empty_cell', 'xlsx_cells'):
        for _ in range(rng.randint(1, 3)):
            grid[rng.choice(data_rows)][rng.randrange(len(names))] = None
        suffix = '.xlsx' if kind == 'xlsx_cells' else '.csv'
    elif kind == 'text_number':
        c = col_of[rng.choice(info['numbers'])]
        grid[rng.choice(data_rows)][c] = rng.choice(['abc', '12.5', '-3', '1e3', '∞', '0x1F',
                                                     ' ', '7 8'])
    elif kind == 'swap':
        on, off = col_of[info['numbers'][0]], col_of[info['numbers'][2]]
        for r in rng.sample(list(data_rows), rng.randint(1, 4)):
            grid[r][on], grid[r][off] = grid[r][off], grid[r][on]
    elif kind == 'duplicate_row':
        r = rng.choice(data_rows)
        grid.insert(r + 1, list(grid[r]))
    elif kind == 'header_only':
        grid = grid[:header + 1]
    path = folder / f'case{case}{suffix}'
    if kind == 'damage':
        data = bytearray(Path(info['xlsx']).read_bytes())
        if rng.random() < 0.5:
            data = data[:rng.randrange(1, len(data))]
        else:
            at = rng.randrange(len(data))
            data[at:at + rng.randint(1, 64)] = os.urandom(rng.randint(1, 64))
        path = folder / f'case{case}.xlsx'
        path.write_bytes(bytes(data))
    elif kind == 'wrong_sheet':
        path = folder / f'case{case}.xlsx'
        with pd.ExcelWriter(path) as book:
            pd.DataFrame([['notes'], ['nothing here']]).to_excel(
                book, sheet_name='Readme', header=False, index=False)
            pd.DataFrame(grid).to_excel(book, sheet_name='Data', header=False, index=False)
    elif kind == 'extension':
        choice = rng.choice(['csv_as_xlsx', 'xlsx_as_csv', 'txt'])
        if choice == 'csv_as_xlsx':
            _write(grid, folder / f'case{case}.csv').rename(path := folder / f'case{case}.xlsx')
        elif choice == 'xlsx_as_csv':
            path = folder / f'case{case}.csv'
            path.write_bytes(Path(info['xlsx']).read_bytes())
        else:
            path = folder / f'case{case}.txt'
            _write(grid, folder / f'case{case}.csv').rename(path)
        kind = choice
    elif kind == 'empty_file':
        path = folder / f'case{case}{rng.choice([".xlsx", ".csv"])}'
        path.write_bytes(b'')
    else:
        _write(grid, path, sheet)
    return path, kind


def _check_records(report, info, kind, with_frames):
    for rec in report.records:
        where = f'{kind}: {rec.sample_id}'
        assert rec.sample_id in info['truth'], where
        orig = info['truth'][rec.sample_id]
        assert rec.label == orig.label, where
        assert rec.onset <= rec.offset, where
        assert rec.apex is None or rec.onset <= rec.apex <= rec.offset, where
        if (rec.onset, rec.offset) != (orig.onset, orig.offset):
            assert any('repaired' in f for f in rec.flags), where
        assert rec.apex in (orig.apex, None), where
        if with_frames:
            assert rec.frame_numbers == list(range(rec.onset, rec.offset + 1)), where
            assert all(Path(p).parent.name == rec.clip_id and
                       Path(p).parent.parent.name == f'sub{rec.subject}' and
                       int(Path(p).stem[3:]) == n
                       for p, n in zip(rec.frame_paths, rec.frame_numbers)), where


@pytest.mark.slow
def test_mutated_sheets_give_one_line_errors_or_right_clips(base, tmp_path):
    rng = random.Random(20240613)
    outcomes = {'error': 0, 'records': 0}
    kinds = set()
    for case in range(CASES):
        key = rng.choice(list(base))
        info = base[key]
        path, kind = _mutate(rng, info, tmp_path, case)
        kinds.add(kind)
        with_frames = key == 'casme2' and rng.random() < 0.5
        roots = {key: str(info['root'])} if with_frames else {}
        try:
            report = build_records(info['protocol'], roots, {key: str(path)},
                                   check_frames=with_frames)
        except (ValueError, FileNotFoundError) as err:
            text = str(err)
            assert '\n' not in text, f'{kind}: {text}'
            assert path.name in text, f'{kind}: the message names no file: {text}'
            outcomes['error'] += 1
            continue
        _check_records(report, info, kind, with_frames)
        outcomes['records'] += 1
    # both outcomes occur, and every kind of mutation was tried
    assert outcomes['error'] > 30 and outcomes['records'] > 30, outcomes
    assert {'delete_col', 'rename_col', 'empty_cell', 'text_number', 'swap', 'damage',
            'wrong_sheet', 'csv_as_xlsx', 'xlsx_as_csv', 'txt', 'empty_file',
            'header_only', 'duplicate_row'} <= kinds
