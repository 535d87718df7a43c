"""The action journal: an append-only, hash-chained record of what a run did.

Each line is one JSON record carrying the SHA-256 of the previous line's record
(``prev``) and of itself (``hash``), so editing, removing or reordering a line breaks
the chain. A change is written twice: ``intent`` before it is sent and its outcome
after, so a run killed in between still tells which account may have changed.
Records are flushed and fsync'ed one by one: the journal is the proof, and must
survive the process dying.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tourniquet.secrets import mask

__all__ = ["Journal", "JournalDamaged", "read_journal", "verify_chain", "GENESIS"]

GENESIS = "0" * 64


class JournalDamaged(Exception):
    """A journal line was edited, removed, reordered or is not JSON."""

    def __init__(self, path: Path, line: int, reason: str) -> None:
        self.path, self.line, self.reason = path, line, reason
        super().__init__(f"{path}:{line}: {reason}")


def _canonical(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def _digest(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(_canonical(body).encode("utf-8")).hexdigest()


@dataclass
class _Tail:
    seq: int
    hash: str


class Journal:
    """Append records to one incident's journal; safe to share between threads."""

    def __init__(self, path: str | Path, *, incident: str, run: str = "") -> None:
        self.path = Path(path)
        self.incident = incident
        self.run = run
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tail = self._read_tail()

    def _read_tail(self) -> _Tail:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return _Tail(0, GENESIS)
        self._set_aside_torn_line()
        last = None
        with self.path.open("rb") as handle:
            for line in handle:
                if line.strip():
                    last = line
        if last is None:
            return _Tail(0, GENESIS)
        record = json.loads(last)
        return _Tail(int(record["seq"]), str(record["hash"]))

    def _set_aside_torn_line(self) -> None:
        """A process killed mid-write leaves a line without its newline: keep it aside, as proof."""
        data = self.path.read_bytes()
        if data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        with self.path.with_suffix(".torn").open("ab") as side:
            side.write(data[cut:] + b"\n")
        with self.path.open("r+b") as handle:
            handle.truncate(cut)

    def write(self, record_type: str, /, **fields: Any) -> dict[str, Any]:
        """Append one record and return it (with its seq and hash)."""
        with self._lock:
            record: dict[str, Any] = {
                "seq": self._tail.seq + 1,
                "time": datetime.now(timezone.utc).isoformat(),
                "incident": self.incident,
                "run": self.run,
                "type": record_type,
                **fields,
                "prev": self._tail.hash,
            }
            record = json.loads(mask(_canonical(record)))
            record["hash"] = _digest(record)
            line = _canonical(record) + "\n"
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
            self._tail = _Tail(record["seq"], record["hash"])
            return record

    def records(self) -> list[dict[str, Any]]:
        return list(read_journal(self.path))


def read_journal(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every well-formed record, in order (a torn last line is skipped)."""
    path = Path(path)
    if not path.exists():
        return
    with path.open("r", encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except ValueError:
                continue


def verify_chain(path: str | Path) -> int:
    """Check every line's hash and link; return the number of records or raise JournalDamaged."""
    path = Path(path)
    previous = GENESIS
    count = 0
    with path.open("r", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                raise JournalDamaged(path, number, "not a JSON record") from None
            if record.get("prev") != previous:
                raise JournalDamaged(path, number, "does not follow the previous record (line removed, added or moved)")
            if _digest(record) != record.get("hash"):
                raise JournalDamaged(path, number, "content does not match its hash (line edited)")
            previous = record["hash"]
            count += 1
    return count
