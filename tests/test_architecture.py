"""The house's rule, read from the code's own imports (docs/architecture.md).

Every ``import`` of every module of ``raicl_mm`` is read with :mod:`ast`, at
module level and inside functions (a function-level import is an arrow too:
it runs whenever the function does), relative imports resolved. Two checks:

* no circle between modules (a circle means two modules that can only be
  understood, tested and changed together);
* each arrow goes one way down the rooms of :data:`RANKS`: a room imports
  itself or a room of a lower rank, never one of its own rank or above.

Each failure names the offending import as ``file:line: the import line``.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, NamedTuple, Tuple

REPO = Path(__file__).resolve().parents[1]
PACKAGE = 'raicl_mm'

#: The rooms, top (imports the most) to bottom (imports nothing of ours):
#:
#:   tools -> protocol / spotting -> apis -> engine -> datasets / visualization
#:         -> flow / synthetic / models / evaluation -> compat / registry
#:
#: ``tools/`` are scripts outside the package (they may import any room).
#: A room may import a room of a strictly lower rank; rooms of one rank are
#: beside each other and import neither way. Where the beside rooms sit is
#: what the code does: ``spotting`` (the STR protocol) uses ``apis``,
#: ``datasets``, ``flow`` and ``synthetic``; ``visualization`` draws
#: ``models``' CAMs and ``flow``'s fields and is used by ``engine`` (hooks),
#: ``apis`` and ``protocol``; ``models``, ``evaluation`` and ``synthetic``
#: import no other room.
RANKS: Dict[str, int] = {
    'protocol': 6, 'spotting': 6,
    'apis': 5,
    'engine': 4,
    'datasets': 3, 'visualization': 3,
    'flow': 2, 'synthetic': 2, 'models': 2, 'evaluation': 2,
    'compat': 1, 'registry': 1,
}

#: Arrows that still run up, each with why it is there and what would end it.
#: ``(importing file, imported module)``. The test fails when one is gone too,
#: so that this list only ever shrinks.
KNOWN_UPWARD: Dict[Tuple[str, str], str] = {
}


class Arrow(NamedTuple):
    src: str        # importing module, dotted
    dst: str        # imported module, dotted
    path: str       # importing file, relative to the repository
    line: int
    text: str       # the import statement as written (first line)
    in_function: bool


def _modules() -> Dict[str, Path]:
    mods = {}
    for path in sorted((REPO / PACKAGE).rglob('*.py')):
        parts = list(path.relative_to(REPO).with_suffix('').parts)
        if parts[-1] == '__init__':
            parts = parts[:-1]
        mods['.'.join(parts)] = path
    return mods


def _resolve(name: str, mods: Dict[str, Path]):
    """The module of ours that ``name`` loads (its longest known prefix)."""
    while name and name not in mods:
        name = name.rpartition('.')[0]
    return name or None


def _arrows(mods: Dict[str, Path]) -> List[Arrow]:
    arrows = []
    for mod, path in mods.items():
        is_pkg = path.name == '__init__.py'
        package = mod if is_pkg else mod.rpartition('.')[0]
        source = path.read_text()
        lines = source.splitlines()
        tree = ast.parse(source, str(path))
        in_func = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                 ast.Lambda)):
                for inner in ast.walk(node):
                    if inner is not node:
                        in_func.add(id(inner))
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split('.')
                    base = base[:len(base) - node.level + 1]
                    origin = '.'.join(base + ([node.module] if node.module
                                              else []))
                else:
                    origin = node.module or ''
                # ``from pkg import mod`` loads pkg.mod; ``from pkg import
                # name`` loads pkg (its __init__) and takes a name from it
                for alias in node.names:
                    sub = f'{origin}.{alias.name}'
                    targets.append(sub if sub in mods else origin)
            else:
                continue
            rel = path.relative_to(REPO).as_posix()
            for target in dict.fromkeys(targets):
                if target != PACKAGE and not target.startswith(PACKAGE + '.'):
                    continue
                dst = _resolve(target, mods)
                if dst is None or dst == mod:
                    continue
                arrows.append(Arrow(mod, dst, rel, node.lineno,
                                    lines[node.lineno - 1].strip(),
                                    id(node) in in_func))
    return arrows


def _room(mod: str) -> str:
    parts = mod.split('.')
    return parts[1] if len(parts) > 1 else PACKAGE


def _where(arrow: Arrow) -> str:
    return f'{arrow.path}:{arrow.line}: {arrow.text}'


def _circles(arrows: List[Arrow]) -> List[List[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    graph: Dict[str, set] = {}
    for a in arrows:
        graph.setdefault(a.src, set()).add(a.dst)
        graph.setdefault(a.dst, set())
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack = set()
    found = []

    def visit(v):  # recursion depth is bounded by the number of modules
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _package_arrows():
    mods = _modules()
    arrows = _arrows(mods)
    # The package's face (raicl_mm/__init__.py) applies compat and imports
    # every registered room; it is above every room, and a module asks for it
    # only inside a function (to register the plugin), checked below.
    return mods, [a for a in arrows if a.dst != PACKAGE]


def test_the_reader_sees_the_imports():
    """The reader itself: relative, function-level and ``from pkg import
    module`` imports are all seen (else the checks below prove nothing)."""
    mods, arrows = _package_arrows()
    assert len(mods) > 80
    seen = {(a.path, a.dst) for a in arrows}
    # relative, module level
    assert ('raicl_mm/flow/face.py', 'raicl_mm.flow.face_models') in seen
    # absolute, inside a function
    assert any(a.in_function and a.path == 'raicl_mm/apis/inference.py'
               and a.dst == 'raicl_mm.engine.checkpoint' for a in arrows)
    # ``from pkg import module`` inside a function
    assert any(a.in_function and a.path == 'raicl_mm/datasets/user_clip.py'
               and a.dst == 'raicl_mm.flow.tvl1' for a in arrows)
    # ``from . import compat`` in the face
    assert ('raicl_mm/__init__.py', 'raicl_mm.compat') in {
        (a.path, a.dst) for a in _arrows(mods)}


def test_no_import_circle():
    _, arrows = _package_arrows()
    circles = _circles(arrows)
    report = []
    for comp in circles:
        inside = set(comp)
        files = sorted({a.path for a in arrows if a.src in inside})
        report.append(f'circle of {len(comp)} modules: {", ".join(files)}')
        report += [f'  {_where(a)}  ({a.src} -> {a.dst})'
                   for a in arrows if a.src in inside and a.dst in inside]
    assert not circles, 'import circles:\n' + '\n'.join(report)


def test_imports_run_down_the_rooms():
    _, arrows = _package_arrows()
    unranked = sorted({_room(a.src) for a in arrows} - set(RANKS)
                      - {PACKAGE})
    assert not unranked, (f'rooms without a rank in RANKS: {unranked}; give '
                          'each new room its place (docs/architecture.md)')
    bad, used = [], set()
    for a in arrows:
        src, dst = _room(a.src), _room(a.dst)
        if src == dst or src == PACKAGE:
            continue
        if RANKS[src] > RANKS[dst]:
            continue
        if (a.path, a.dst) in KNOWN_UPWARD:
            used.add((a.path, a.dst))
            continue
        how = 'up' if RANKS[src] < RANKS[dst] else 'sideways'
        bad.append(f'{_where(a)}  ({src} -> {dst} runs {how}: {src} is rank '
                   f'{RANKS[src]}, {dst} rank {RANKS[dst]})')
    assert not bad, ('imports against the room order (tools -> protocol / '
                     'spotting -> apis -> engine -> datasets / visualization '
                     '-> flow / synthetic / models / evaluation -> compat):\n'
                     + '\n'.join(bad))
    gone = sorted(set(KNOWN_UPWARD) - used)
    assert not gone, (f'these upward arrows are gone, take them off '
                      f'KNOWN_UPWARD: {gone}')


def test_the_package_face_is_imported_only_inside_functions():
    mods = _modules()
    bad = [_where(a) for a in _arrows(mods)
           if a.dst == PACKAGE and a.src != PACKAGE and not a.in_function]
    assert not bad, ('a module of the package imports raicl_mm (every room) '
                     'at module level: a circle through __init__.py:\n'
                     + '\n'.join(bad))


def test_a_circle_and_an_upward_arrow_are_named(tmp_path):
    """The messages name the files and the lines (a made-up graph)."""
    arrows = [Arrow('raicl_mm.flow.a', 'raicl_mm.flow.b', 'raicl_mm/flow/a.py',
                    3, 'from .b import x', False),
              Arrow('raicl_mm.flow.b', 'raicl_mm.flow.a', 'raicl_mm/flow/b.py',
                    7, 'from .a import y', True)]
    assert _circles(arrows) == [['raicl_mm.flow.a', 'raicl_mm.flow.b']]
    assert _where(arrows[1]) == 'raicl_mm/flow/b.py:7: from .a import y'
