"""Every command of docs/data.md and docs/reproduce.md runs (issue 20: docs that run).

The ```bash blocks of each page run in bash, as written (variables, loops, brace
expansion, ``$(...)``), in a folder that links the repository's ``configs/`` and
``tools/``, with ``python`` / ``.venv/bin/python`` replaced by a recorder. Then
every recorded command is checked the way the tool starts: its own argument
parser, then the config checks every tool runs (``load_checked_config``: an
override that reaches nothing, loaders that disagree). ``tools/dataset_info.py``
commands run for real on a frame tree laid out like the pages' ``/data/...``
(the official sheets, empty frame files). The ```python blocks (child configs,
the sheet protocol) are loaded as configs and checked the same way.
README.md is the lead's and is checked elsewhere.
"""
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

DOCS = ('docs/data.md', 'docs/reproduce.md')
RECORDER = """#!/bin/sh
if [ "$1" = "-c" ]; then exec {python} "$@"; fi
exec {python} -c 'import json, os, sys
with open(os.environ["RAICL_DOCS_RECORD"], "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")' "$@"
"""


def blocks(text, lang):
    return re.findall(rf'^```{lang}\n(.*?)^```', text, flags=re.S | re.M)


def inline_commands(text):
    return [m for m in re.findall(r'`([^`\n]+)`', text)
            if m.startswith(('.venv/bin/python tools/', 'python tools/'))]


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def data_tree(tmp_path_factory):
    """``/data/...`` of the pages, under a temporary folder (fixture sheets,
    the CDE frame tree of the parser tests)."""
    sources = load('sources_for_docs', REPO / 'tests' / 'test_sources.py')
    if not (sources.CASME2_SHEET.is_file() and sources.SAMM_SHEET.is_file()):
        pytest.skip(f'official label sheets not found in {sources.ANN_DIR}')
    base = tmp_path_factory.mktemp('docs')
    roots = sources.make_cde_tree(base / 'tree')
    data = base / 'data'
    (data / 'CASME2').mkdir(parents=True)
    (data / 'CASME2' / 'Cropped').symlink_to(roots['casme2'])
    (data / 'CASME2' / 'CASME2-coding-20190701.xlsx').symlink_to(sources.CASME2_SHEET)
    (data / 'SAMM').mkdir()
    for child in Path(roots['samm']).iterdir():
        (data / 'SAMM' / child.name).symlink_to(child)
    (data / 'SAMM' / 'SAMM_Micro_FACS_Codes_v2.xlsx').symlink_to(sources.SAMM_SHEET)
    (data / 'SMIC' / 'SMIC_all_cropped').mkdir(parents=True)
    (data / 'SMIC' / 'SMIC_all_cropped' / 'HS').symlink_to(roots['smic'])
    (data / 'CASME3' / 'part_A').mkdir(parents=True)
    (data / 'CASME3' / 'cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx').symlink_to(
        sources.CASME3_SHEET)
    return base


def recorded(doc, run_dir):
    """Run the page's bash blocks (one script, in order) with the recorder."""
    text = (REPO / doc).read_text()
    script = '\n'.join(blocks(text, 'bash') + inline_commands(text))
    bin_dir = run_dir / 'bin'
    (run_dir / '.venv' / 'bin').mkdir(parents=True, exist_ok=True)
    bin_dir.mkdir(exist_ok=True)
    for stub in (bin_dir / 'python', run_dir / '.venv' / 'bin' / 'python'):
        stub.write_text(RECORDER.format(python=sys.executable))
        stub.chmod(0o755)
    for name in ('configs', 'tools'):
        if not (run_dir / name).exists():
            (run_dir / name).symlink_to(REPO / name)
    record = run_dir / f'{Path(doc).stem}.jsonl'
    record.unlink(missing_ok=True)
    env = dict(os.environ, PATH=f'{bin_dir}:{os.environ["PATH"]}',
               RAICL_DOCS_RECORD=str(record))
    done = subprocess.run(['bash', '-e', '-c', script], cwd=run_dir, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f'{doc}: the bash blocks fail: {done.stderr[-2000:]}'
    return [json.loads(line) for line in record.read_text().splitlines()]


def _tool_args(module, argv):
    """The tool's own parser on the recorded arguments (an unknown flag fails)."""
    old = sys.argv
    sys.argv = ['tool'] + argv
    try:
        return module.parse_args(argv) if 'argv' in module.parse_args.__code__.co_varnames \
            else module.parse_args()
    finally:
        sys.argv = old


def _on_tree(argv, data_tree):
    return [a.replace('/data/', f'{data_tree}/data/') for a in argv]


def check_command(argv, run_dir, data_tree, capsys):
    """One recorded command: parse it as its tool does, check its config (and
    run ``dataset_info`` for real). Returns what was checked."""
    from raicl_mm.engine.cli import load_checked_config
    script, args = argv[0], _on_tree(argv[1:], data_tree)
    path = Path(script) if os.path.isabs(script) else run_dir / script
    assert path.is_file(), f'{script}: no such tool'
    name = path.stem
    if path.parent.name == 'tools' and path.parent.parent.name == '.mim':
        module = load('mmaction_train_for_docs', path)
    else:
        module = load(f'tool_{name}_for_docs', REPO / 'tools' / f'{name}.py')
    os.chdir(run_dir)
    try:
        parsed = _tool_args(module, args)
        options = getattr(parsed, 'cfg_options', None) or {}
        load_checked_config(str(parsed.config), options)
        if name == 'dataset_info':
            assert module.main(args) == 0, capsys.readouterr().err
            info = json.loads(capsys.readouterr().out)
            if parsed.config.endswith('raicl_cde.py'):
                # reproduce.md: "must print 442 samples / 68 subjects (250/109/83)"
                assert (info['samples'], info['subjects']) == (442, 68)
                assert info['classes'] == dict(negative=250, positive=109, surprise=83)
    finally:
        os.chdir(REPO)
    return name


@pytest.mark.parametrize('doc', DOCS)
def test_every_command_of_the_page_runs(doc, data_tree, tmp_path, capsys):
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    # the configs' own defaults (data/CASME2/...) point at the same tree
    (run_dir / 'data').symlink_to(data_tree / 'data')
    commands = recorded(doc, run_dir)
    assert commands, f'{doc}: no command found'
    checked = [check_command(argv, run_dir, data_tree, capsys) for argv in commands]
    if doc == 'docs/reproduce.md':
        # Table 1, 2 (x3), 3 (12 ablations), Supplement 7 (5), robust (13) + the count
        assert checked.count("loso") == 1 + 3 + 12 + 5 + 13
        assert checked.count('dataset_info') == 1
    else:
        assert checked.count('dataset_info') == 1 and 'train' in checked


def _config_block(code, tmp_path, n):
    code = code.replace("_base_ = ['./", f"_base_ = ['{REPO}/configs/")
    path = tmp_path / f'block{n}.py'
    path.write_text(code)
    return path


def test_the_config_blocks_of_data_md_load_and_pass_the_checks(tmp_path):
    from raicl_mm.datasets.sources.generic import check_sheet_spec
    from raicl_mm.engine.cli import load_checked_config
    codes = blocks((REPO / 'docs' / 'data.md').read_text(), 'python')
    assert len(codes) == 3
    for n, code in enumerate(codes):
        cfg = load_checked_config(str(_config_block(code, tmp_path, n)), data_only=True)
        if 'protocol' in cfg:          # the sheet protocol block
            check_sheet_spec(cfg.protocol.to_dict())
        else:
            assert cfg.train_dataloader.dataset == cfg.test_dataloader.dataset or \
                cfg.train_dataloader.dataset.get('flow_cfg')


def test_the_test_suite_commands_of_architecture_md_run():
    """docs/architecture.md "The test suite": each ```bash block runs as
    written (``.venv/bin/python`` is this interpreter) and its tests pass."""
    text = (REPO / 'docs' / 'architecture.md').read_text()
    section = text.split('## The test suite', 1)[1].split('\n## ', 1)[0]
    commands = [c.strip() for c in blocks(section, 'bash')]
    assert len(commands) == 2 and all(
        c.startswith('.venv/bin/python -m pytest ') for c in commands), commands
    for command in commands:
        argv = [sys.executable] + command.split()[1:] + ['-p', 'no:cacheprovider']
        res = subprocess.run(argv, cwd=REPO, capture_output=True, text=True,
                             timeout=300)
        assert res.returncode == 0, f'{command}:\n{res.stdout[-3000:]}'
        assert ' passed' in res.stdout and ' failed' not in res.stdout, res.stdout[-2000:]
        if '--durations' in command:
            assert 'slowest 30 durations' in res.stdout


HUNG = """import time


def test_quick():
    pass


def test_hangs():
    time.sleep(600)
"""


def test_a_hung_test_ends_the_run_naming_it(tmp_path):
    """The suite's own settings (setup.cfg, docs/architecture.md "No run
    waits forever"): a test that hangs in a worker dumps its stack and the
    run fails, naming it, instead of waiting. The limit is lowered to 3 s."""
    (tmp_path / 'test_hung.py').write_text(HUNG)
    (tmp_path / 'test_other.py').write_text('def test_a():\n    pass\n')
    res = subprocess.run(
        [sys.executable, '-m', 'pytest', '-c', str(REPO / 'setup.cfg'),
         '--rootdir', str(tmp_path), '-p', 'no:cacheprovider', '-n', '2',
         '-o', 'faulthandler_timeout=3', str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    out = res.stdout + res.stderr
    assert res.returncode == 1, out[-3000:]
    assert 'Timeout (0:00:03)!' in out and 'in test_hangs' in out, out[-3000:]
    assert "crashed while running 'test_hung.py::test_hangs'" in out, out[-3000:]
    assert '1 failed' in out, out[-3000:]
