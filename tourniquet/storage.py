"""Files of the evidence bundle written so that they are whole, first-wins and durable, cheaply in bulk.

A snapshot must be on disk before the journal records that name it. One ``fsync`` per file costs a
file-system journal commit each (≈1–2 ms here), so a chunk of snapshots is written first and made
durable together: ``syncfs`` on Linux (one call for the file system), else every file's ``fsync`` in
parallel (the file system batches concurrent ones).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

__all__ = ["write_once", "sync_paths"]

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True) if os.name == "posix" else None


def write_once(path: Path, text: str) -> bool:
    """Write a whole file or nothing, never replacing one already there (two runs racing: first wins).

    Not yet durable: call :func:`sync_paths` (or let the chunk do it) before naming it in the journal.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:  # a full disk fails the write: the half-written temporary file goes too
        temporary.write_text(text, encoding="utf-8")
        os.link(temporary, path)  # atomic, and fails if the file already exists
        return True
    except FileExistsError:
        return False
    finally:
        temporary.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_paths(paths: Sequence[Path]) -> None:
    """Make these files (and their folders' entries) durable."""
    if not paths:
        return
    folders = sorted({p.parent for p in paths})
    syncfs = getattr(_libc, "syncfs", None)
    if syncfs is not None:
        fd = os.open(folders[0], os.O_RDONLY)
        try:
            if syncfs(fd) == 0 and all(os.stat(f).st_dev == os.stat(folders[0]).st_dev for f in folders):
                return
        finally:
            os.close(fd)
    with ThreadPoolExecutor(max_workers=min(16, len(paths) + len(folders))) as pool:
        list(pool.map(_fsync, [*paths, *folders]))
