"""Clip folders and their frames, listed once per build.

:class:`DirCache` reads each folder once, finds sub-folders ignoring case
and lists a clip's frames by number
(:data:`~raicl_mm.datasets.records.FRAME_RE`), duplicates kept apart for
:func:`~raicl_mm.datasets.sources.clip.build_clip` to refuse.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from raicl_mm.datasets.records import FRAME_RE


class DirCache:
    """Folder listings cached for one build (the tree is read once)."""

    def __init__(self) -> None:
        self._entries: Dict[str, List[Tuple[str, bool]]] = {}

    def entries(self, folder: Path) -> List[Tuple[str, bool]]:
        """``(name, is_dir)`` of each entry of ``folder`` ([] if absent).

        Args:
            folder: A folder.

        Returns:
            The entries; names starting with ``'.'`` are left out.
        """
        key = str(folder)
        if key not in self._entries:
            try:
                with os.scandir(folder) as it:
                    self._entries[key] = [(e.name, e.is_dir()) for e in it
                                          if not e.name.startswith('.')]
            except (FileNotFoundError, NotADirectoryError):
                self._entries[key] = []
        return self._entries[key]

    def subdirs(self, folder: Path) -> List[Path]:
        """Sub-folders of ``folder`` sorted by name."""
        return [folder / n for n, is_dir in sorted(self.entries(folder)) if is_dir]

    def child(self, parent: Path, *names: str) -> Optional[Path]:
        """Sub-folder of ``parent`` named like one of ``names``.

        An exact name wins; otherwise the name is matched case-insensitively
        (``spNo.1`` for ``spNO.1``).

        Args:
            parent: The folder to look in.
            *names: Accepted names, in order of preference.

        Returns:
            The sub-folder, or None.

        Raises:
            ValueError: If a name matches several folders case-insensitively.
        """
        dirs = [n for n, is_dir in self.entries(parent) if is_dir]
        for name in names:
            if name in dirs:
                return parent / name
        for name in names:
            hits = [d for d in dirs if d.casefold() == name.casefold()]
            if len(hits) > 1:
                raise ValueError(f'{parent}: folders {hits} all match {name!r} '
                                 'ignoring case; rename one')
            if hits:
                return parent / hits[0]
        return None

    def frames(self, folder: Path) -> Tuple[Dict[int, str], Dict[int, List[str]]]:
        """Frames of a clip folder by number (last integer of the name).

        Args:
            folder: The clip folder.

        Returns:
            ``(frames, duplicates)``: frame number -> path, and for numbers
            held by several files, number -> all their names.
        """
        found: Dict[int, List[str]] = {}
        for name, is_dir in self.entries(folder):
            match = FRAME_RE.search(name)
            if match and not is_dir:
                found.setdefault(int(match.group(1)), []).append(name)
        frames = {n: str(folder / sorted(names)[0]) for n, names in found.items()}
        duplicates = {n: sorted(names) for n, names in found.items() if len(names) > 1}
        return frames, duplicates


def require_root(data_roots: Dict, key: str) -> Path:
    """The data root ``data_roots[key]``, which must exist.

    Args:
        data_roots: ``dict(casme2=..., samm=..., smic=..., casme3=...)``.
        key: The dataset key.

    Returns:
        The root as a Path.

    Raises:
        ValueError: If the key is absent or None.
        FileNotFoundError: If the folder does not exist (names the root).
    """
    value = (data_roots or {}).get(key)
    if value is None:
        raise ValueError(f"data_roots['{key}'] is required to read the {key} frames "
                         '(or pass check_frames=False to count from the sheets)')
    root = Path(value)
    if not root.is_dir():
        raise FileNotFoundError(f"data root data_roots['{key}'] does not exist: {root}")
    return root
