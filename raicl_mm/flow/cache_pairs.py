"""One pair file of the flow cache: its name, its key, its bytes, and how it
is read back and written safely.

The flow cache (:class:`raicl_mm.flow.cache.FlowCache`) stores one file per
onset->frame flow. This module is what one such file is, whatever folder it
sits in:

* its name parts and keys: :func:`safe_part` (an id made file-system-safe),
  :func:`digest` (the hex key of any JSON-able thing), :func:`frame_id` (a
  frame's identity: file name, size, modification time);
* its bytes: a plain ``.npy`` of ``(H, W, 3)`` float16 (``np.load`` reads
  it) followed by the CRC-32 of its data (:func:`crc`). Flows are stored as
  float16 (half the disk, and well below TV-L1's own error: float16 keeps
  about 3 significant digits) and returned as float32; a flow outside
  float16's range (:data:`FLOAT16_MAX`) or not finite is refused when
  stored. At 112x112 a pair file is 75,396 B (112*112*3*2 B, a 128 B
  ``.npy`` header, 4 B of checksum);
* reading it (:func:`read_pair`): validated (exact header, size, checksum,
  finite values; nothing is parsed or unpickled); anything else is a miss,
  never an exception;
* writing it (:func:`atomic_write`, :func:`write_pair`): a temporary file in
  the same folder (mode ``0666 & ~umask``, i.e. 0644 under the usual umask,
  so a group can share the cache) moved into place with ``os.replace``: a
  reader never sees a partial file. Pairs are not fsynced (an fsync per pair
  doubled the time of a fast solver's fill): a file torn by a power cut fails
  its checksum and is recomputed, which is all a cache needs;
* never through a link (:func:`refuse_links`), and an edited frame's older
  file removed once the new one is written (:func:`drop_stale`).
"""
from __future__ import annotations

import functools
import glob
import hashlib
import io
import json
import os
import re
import stat
import tempfile
import zlib
from pathlib import Path
from typing import Callable, Optional, Tuple

import numpy as np

from .cache_io import FlowCacheError

#: Bump when the file layout or the meaning of its arrays changes.
#: 1: one ``.npz`` per clip and sampling; 2: one ``.npy`` per pair.
CACHE_FORMAT_VERSION = 2

#: The largest finite float16; a flow beyond it would be stored as inf.
FLOAT16_MAX = float(np.finfo(np.float16).max)

_UNSAFE = re.compile(r'[^A-Za-z0-9._-]')


# ------------------------------------------------------------ names and keys
def safe_part(part: str) -> str:
    """A file-system-safe version of an id; a hash suffix keeps it unique."""
    safe = _UNSAFE.sub('_', str(part)).strip('.')
    if safe != str(part) or not safe:
        safe = f'{safe}-{hashlib.sha1(str(part).encode()).hexdigest()[:8]}'
    return safe


def digest(obj) -> str:
    """SHA-256 hex of ``obj`` as sorted JSON (the cache's keys)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode('utf-8')
    return hashlib.sha256(blob).hexdigest()


def frame_id(path: str) -> list:
    """``[file name, size, mtime_ns]`` of a frame (None values if missing)."""
    try:
        st = os.stat(path)
        return [os.path.basename(path), st.st_size, st.st_mtime_ns]
    except OSError:
        return [os.path.basename(path), None, None]


# ------------------------------------------------------------ bytes
def crc(data: bytes) -> bytes:
    """CRC-32 of a pair's data, the 4 bytes after the array (little-endian)."""
    return zlib.crc32(data).to_bytes(4, 'little')


@functools.lru_cache(maxsize=None)
def npy_header(shape: Tuple[int, ...]) -> bytes:
    """The exact ``.npy`` header ``np.save`` writes for float16 ``shape``."""
    nbytes = int(np.prod(shape)) * 2
    buf = io.BytesIO()
    np.save(buf, np.zeros(shape, np.float16))
    return buf.getvalue()[:-nbytes]


def read_pair(path: Path, shape: Tuple[int, ...]) -> Optional[np.ndarray]:
    """A stored pair of ``shape``, or None if missing or not exactly what
    :func:`write_pair` writes.

    The file must be byte for byte a ``.npy`` of ``shape`` and float16
    followed by the CRC-32 of its data: the header is compared with the one
    ``np.save`` writes (:func:`npy_header`) instead of being parsed, which
    halves the read time (numpy parses headers with ``ast.literal_eval``)
    and leaves a hostile file nothing to parse (no pickle, no size to
    allocate); the checksum catches a file torn by a crash (pairs are not
    fsynced).

    Returns:
        A read-only ``shape`` float16 view of the file's data, or None.
    """
    head = npy_header(tuple(shape))
    nbytes = int(np.prod(shape)) * 2
    try:
        # O_NONBLOCK: a FIFO planted at the path must not hang the read.
        fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NONBLOCK', 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, 'rb', closefd=False) as f:
            data = f.read(len(head) + nbytes + 5)
    except OSError:
        return None
    finally:
        os.close(fd)
    end = len(head) + nbytes
    if len(data) != end + 4 or not data.startswith(head) or \
            data[end:] != crc(data[len(head):end]):
        return None
    arr = np.frombuffer(data, np.float16, count=nbytes // 2,
                        offset=len(head)).reshape(shape)
    if not np.isfinite(arr).all():
        return None
    return arr


# ------------------------------------------------------------ writing
def file_mode() -> int:
    """``0666 & ~umask``: what ``open()`` would create (mkstemp makes 0600).

    The umask is read from ``/proc/self/status`` where it is listed: setting
    it to read it back (``os.umask``) would race with other threads.
    """
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: Path, write: Callable, replace=True,
                 sync=True) -> None:
    """Temp file in the same folder, 0666 & ~umask, (fsync,) rename.

    Args:
        path: The file to make.
        write: ``write(binary file)`` writes its content.
        replace: True = ``os.replace`` (an older file is replaced); False =
            ``os.link`` (an existing file is kept, never replaced).
        sync: fsync the file before it is moved into place.

    Raises:
        FlowCacheError: The folder cannot be written (one line naming it).
    """
    folder = path.parent
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f'.{path.name}.',
                                   suffix='.tmp')
    except OSError as err:
        raise FlowCacheError(
            f'flow cache folder {folder} is not writable '
            f'({err.strerror or err}); set flow_cache to a writable '
            f'folder') from None
    try:
        try:
            os.fchmod(fd, file_mode())
            with os.fdopen(fd, 'wb') as f:
                write(f)
                f.flush()
                if sync:
                    os.fsync(f.fileno())
            if replace:
                os.replace(tmp, path)
            else:
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    pass
                os.unlink(tmp)
        except OSError as err:
            raise FlowCacheError(
                f'cannot write to the flow cache folder {folder} '
                f'({err.strerror or err})') from None
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_pair(path: Path, flow: np.ndarray) -> None:
    """Write one flow as float16 ``.npy`` + CRC-32 (:func:`atomic_write`).

    No fsync: the checksum makes a pair torn by a crash a miss (recomputed),
    and an fsync per pair doubled the time of a Farneback fill
    (benchmarks/README.md).
    """
    f16 = np.ascontiguousarray(flow, dtype=np.float16)

    def write(fh):
        np.save(fh, f16)
        fh.write(crc(f16.tobytes()))
    atomic_write(path, write, sync=False)


def refuse_links(root: Path, folder: Path) -> None:
    """Refuse a symbolic link between the cache ``root`` and ``folder``.

    The cache creates files and deletes stale ones in a clip's folder; a
    clip, subject, dataset or setting folder linked elsewhere (in a cache
    a group shares) would make it write and delete in the link's target.
    The root itself may be a link (a cache placed on another disk).

    Raises:
        FlowCacheError: Naming the linked folder and its target.
    """
    try:
        rel = folder.relative_to(root)
    except ValueError:
        return
    current = root
    for part in rel.parts:
        current = current / part
        if current.is_symlink():
            try:
                target = os.readlink(current)
            except OSError:
                target = '?'
            raise FlowCacheError(
                f'flow cache folder {current} is a symbolic link (to {target}): '
                'the cache never writes or deletes through a link; remove the '
                'link (the cache recomputes what it needs)')
        if not current.exists():
            return


def drop_stale(path: Path) -> None:
    """Remove the same frame's files of an older identity (best effort).

    A pair file is ``<frame file>.<key>.npy``: the others of the same
    ``<frame file>`` in the folder are an edited frame's older pairs.
    """
    stem = path.name.rsplit('.', 2)[0]
    try:
        for other in path.parent.glob(f'{glob.escape(stem)}.*.npy'):
            if other.name != path.name and \
                    other.name.rsplit('.', 2)[0] == stem:
                try:
                    other.unlink()
                except OSError:
                    pass
    except OSError:
        pass
