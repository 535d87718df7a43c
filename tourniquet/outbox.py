"""A durable outbox: writes for an outside system that could not be delivered yet.

Why: containment must not wait for the ticket system, and no ticket or comment may be
lost when that system is down or the process dies. Each entry is one JSON file,
written to a temporary name, fsync'ed, renamed into place, and the folder fsync'ed —
so an entry either exists whole or not at all, whatever moment the process is killed.

Layout, under the site's ``state_dir``::

    outbox/<stream>/<key>/<seq:010d>-<op id>.json

Entries of one key (one incident) are delivered strictly in ``seq`` order; delivery
stops at the first entry that still cannot be delivered, so a comment never overtakes
the ticket it belongs to. An entry is removed only after it was delivered, so delivery
is at-least-once; callers make it exactly-once by remembering delivered op ids.

Callers serialise access to one key with :func:`key_lock` (a ``flock`` on a lock file:
it works between threads and between processes on one machine).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["Outbox", "OutboxEntry", "key_lock", "atomic_write", "safe_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_name(key: str) -> str:
    """A file name for a key: keys are checked by callers, this only guards the file system."""
    name = _UNSAFE.sub("_", key)
    return name if name not in ("", ".", "..") else "_" + name


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader (or a crash) sees the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _fsync_dir(path.parent)


@contextmanager
def key_lock(path: Path) -> Iterator[None]:
    """Exclusive lock on ``path`` (created if needed), between threads and processes alike."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as handle:  # one open file description per holder: flock then excludes threads too
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@dataclass(frozen=True)
class OutboxEntry:
    """One pending write: which key, in what order, and what to do."""

    path: Path
    key: str
    seq: int
    op_id: str
    operation: str
    payload: dict[str, Any]
    queued_at: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "seq": self.seq, "op_id": self.op_id, "operation": self.operation,
                "payload": self.payload, "queued_at": self.queued_at, "reason": self.reason}


class Outbox:
    """Durable, per-key ordered queue of pending operations for one stream (e.g. ``tickets-rt``)."""

    def __init__(self, root: Path, stream: str) -> None:
        self.root = Path(root) / "outbox" / safe_name(stream)

    def _folder(self, key: str) -> Path:
        return self.root / safe_name(key)

    def lock(self, key: str) -> Any:
        """Hold while reading or changing one key's entries (and while delivering them)."""
        return key_lock(self.root / ".locks" / f"{safe_name(key)}.lock")

    def append(self, key: str, operation: str, payload: dict[str, Any], *, op_id: str | None = None,
               reason: str = "") -> OutboxEntry:
        """Queue one operation after every entry already pending for ``key`` (call under :meth:`lock`)."""
        seq = self._last_seq(key) + 1
        op_id = op_id or uuid.uuid4().hex
        path = self._folder(key) / f"{seq:010d}-{op_id}.json"
        entry = OutboxEntry(path, key, seq, op_id, operation, payload,
                            datetime.now(timezone.utc).isoformat(), reason)
        atomic_write(path, json.dumps(entry.as_dict(), sort_keys=True, ensure_ascii=False).encode("utf-8"))
        return entry

    def _last_seq(self, key: str) -> int:
        """Highest sequence number pending, from file names only (appending stays cheap when many wait)."""
        numbers = [int(p.name[:10]) for p in self._folder(key).glob("*.json") if p.name[:10].isdigit()]
        return max(numbers, default=0)

    def pending(self, key: str) -> list[OutboxEntry]:
        """Entries still to deliver for ``key``, oldest first."""
        return self._read(self._folder(key))

    def keys(self) -> list[str]:
        """Every key with something pending."""
        if not self.root.is_dir():
            return []
        keys = []
        for folder in sorted(self.root.iterdir()):
            if folder.is_dir() and not folder.name.startswith("."):
                entries = self._read(folder)
                if entries:
                    keys.append(entries[0].key)
        return keys

    @staticmethod
    def _read(folder: Path) -> list[OutboxEntry]:
        if not folder.is_dir():
            return []
        entries = []
        for path in folder.glob("*.json"):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # cannot happen with atomic writes; one bad file must not block the rest
            entries.append(OutboxEntry(path, data["key"], int(data["seq"]), data["op_id"], data["operation"],
                                       data.get("payload", {}), data.get("queued_at", ""), data.get("reason", "")))
        return sorted(entries, key=lambda e: e.seq)

    def remove(self, entry: OutboxEntry) -> None:
        """Forget a delivered entry (durably)."""
        try:
            entry.path.unlink()
        except FileNotFoundError:
            return
        _fsync_dir(entry.path.parent)

    def count(self) -> int:
        return sum(len(self.pending(key)) for key in self.keys())
