"""The action journal: an append-only, hash-chained record of what a run did.

Each line is one JSON record carrying the SHA-256 of the previous line's record (``prev``)
and of itself (``hash``), so editing, removing or reordering a line breaks the chain. A
change is written twice: ``intent`` before it is sent and its outcome after, so a run killed
in between still tells which account may have changed.

Three properties make it hold at incident scale:

- **Group commit.** Inside ``with journal.group():`` a thread's records are kept in memory and
  reach the file together, with one ``fsync``, when the group ends or :meth:`Journal.commit` is
  called (a chunk commits its intents before sending any change, its outcomes after). Outside a
  group every record is written and fsync'ed on its own.
- **Several processes, one chain.** Appends hold an exclusive ``flock`` on the file and first
  read whatever other processes appended since (so ``seq`` and ``prev`` continue their chain).
- **One index.** The file is read once, when the journal is opened; the index (open intents,
  applied changes, a few record kinds that stay small) is then kept up to date on every append,
  so "was this already applied?" is a lookup, not a scan (:class:`JournalIndex`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tourniquet.secrets import mask

__all__ = ["Journal", "JournalIndex", "JournalDamaged", "ChangeKey", "read_journal", "verify_chain", "chain_problem",
           "GENESIS"]

GENESIS = "0" * 64
#: (system, target, operation, the state it leads to): what one change is about. Two changes of one
#: target by one operation (two groups left) differ by their "after".
ChangeKey = tuple[str, str, str, str]
#: Record kinds few enough per incident to keep whole in the index.
KEPT_TYPES = frozenset({"run", "approval", "sealed", "note", "ticket", "scope", "undo", "reinstate", "step", "failure",
                        "notification", "filing", "awareness"})


class JournalDamaged(Exception):
    """A journal line was edited, removed, reordered or is not JSON."""

    def __init__(self, path: Path, line: int, reason: str) -> None:
        self.path, self.line, self.reason = path, line, reason
        super().__init__(f"{path}:{line}: {reason}")


def _canonical(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def _line(record: dict[str, Any]) -> bytes:
    """The record as one UTF-8 line; text that is not valid Unicode (a lone surrogate) is written escaped."""
    try:
        return (_canonical(record) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(record, sort_keys=True, separators=(",", ":"), default=str) + "\n").encode("ascii")


def _digest(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(_canonical(body).encode("utf-8", "surrogatepass")).hexdigest()


def change_key(record: dict[str, Any]) -> ChangeKey:
    after = record.get("after")
    state = repr(sorted(after.items())) if isinstance(after, dict) else repr(after)
    return (str(record.get("system")), str(record.get("target")), str(record.get("operation")), state)


@dataclass
class JournalIndex:
    """What the engine and the actions ask of a journal, kept current as records are appended."""

    #: Intents with no later applied/noop outcome: the change may have been sent before its run died.
    unconfirmed: dict[ChangeKey, dict[str, Any]] = field(default_factory=dict)
    #: Applied changes per (target, operation), oldest first: seq, hash, run and step of each (the records
    #: themselves are in the file; 20,000 of them in memory would be the largest thing a big run holds).
    applied: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    #: Hashes of changes an undo (or a reinstate) reversed.
    undone: set[str] = field(default_factory=set)
    #: (target, operation) of the changes a dry run planned (what a later step of the same plan can count on).
    planned: set[tuple[str, str]] = field(default_factory=set)
    #: Records of the kinds in :data:`KEPT_TYPES`, in order.
    kept: list[dict[str, Any]] = field(default_factory=list)
    records: int = 0

    def add(self, record: dict[str, Any]) -> None:
        self.records += 1
        kind = record.get("type")
        if kind == "intent":
            self.unconfirmed[change_key(record)] = record
        elif kind == "change":
            outcome = record.get("outcome")
            if outcome in ("applied", "noop"):
                self.unconfirmed.pop(change_key(record), None)
            if outcome == "planned":
                self.planned.add((str(record.get("target")), str(record.get("operation"))))
            if outcome == "applied":
                self.applied.setdefault((str(record.get("target")), str(record.get("operation"))), []).append(
                    {k: record.get(k) for k in ("seq", "hash", "run", "step")})
        if kind == "undo" and record.get("status") in ("done", "noop"):
            self.undone.add(str(record.get("undoes")))
        if kind in KEPT_TYPES:
            self.kept.append(record)


@dataclass
class _Tail:
    seq: int = 0
    hash: str = GENESIS
    offset: int = 0


class Journal:
    """Append records to one incident's journal; safe to share between threads and processes."""

    def __init__(self, path: str | Path, *, incident: str, run: str = "", indexed: bool = True) -> None:
        """``indexed=False``: only append (a seal): the file's last record is read, not all of them."""
        self.path = Path(path)
        self.incident = incident
        self.run = run
        self.index = JournalIndex()
        self._tail = _Tail()
        self._lock = threading.Lock()
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            with self._file() as handle:
                if indexed or not self._start_at_last_record(handle):
                    self._catch_up(handle)

    # -- reading what is already there (ours or another process's)

    @contextmanager
    def _file(self) -> Iterator[int]:
        """The journal file, opened for appending, under an exclusive lock shared with other processes."""
        handle = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield handle
        finally:
            os.close(handle)  # closing releases the lock

    def _catch_up(self, handle: int) -> None:
        """Read records appended since our last look (by us at open, or by another process since)."""
        size = os.fstat(handle).st_size
        if size == self._tail.offset:
            return
        if size < self._tail.offset:  # shorter than we last saw it (cut by hand): read it again from the start
            self.index, self._tail = JournalIndex(), _Tail()
        with self.path.open("rb") as reader:
            reader.seek(self._tail.offset)
            data = reader.read(size - self._tail.offset)
        cut = data.rfind(b"\n") + 1
        if cut < len(data):  # a writer died mid-line (under the lock, nobody else is writing): keep it aside
            with self.path.with_suffix(".torn").open("ab") as side:
                side.write(data[cut:] + b"\n")
            os.ftruncate(handle, self._tail.offset + cut)
        for line in data[:cut].splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue  # verify_chain names it; appending goes on from the last good record
            self.index.add(record)
            self._tail.seq, self._tail.hash = int(record.get("seq", self._tail.seq)), str(record.get("hash", ""))
        self._tail.offset += cut

    def _start_at_last_record(self, handle: int) -> bool:
        """Take seq and hash from the last complete line alone; False if it does not parse (read it all)."""
        size = os.fstat(handle).st_size
        block, data = 1 << 16, b""
        with self.path.open("rb") as reader:
            while len(data) < size and b"\n" not in data[:-1]:
                start = max(0, size - len(data) - block)
                reader.seek(start)
                data = reader.read(size - len(data) - start) + data
                block *= 2
        if not data.endswith(b"\n"):
            return False  # a torn last line: the full read sets it aside
        lines = data[:-1].rsplit(b"\n", 1)
        try:
            record = json.loads(lines[-1])
            self._tail = _Tail(int(record["seq"]), str(record["hash"]), size)
        except (ValueError, KeyError, TypeError):
            return False
        return True

    # -- writing

    def write(self, record_type: str, /, **fields: Any) -> dict[str, Any]:
        """Append one record. In a :meth:`group` it waits in memory for the commit; otherwise it is durable now.

        The returned dict is the record; its ``seq``, ``prev`` and ``hash`` are filled in when it is committed.
        """
        record: dict[str, Any] = {
            "seq": 0,
            "time": datetime.now(timezone.utc).isoformat(),
            "incident": self.incident,
            "run": self.run,
            "type": record_type,
            **fields,
            "prev": "",
        }
        pending: list[dict[str, Any]] | None = getattr(self._local, "pending", None)
        if pending is not None:
            pending.append(record)
        else:
            self._append([record])
        return record

    @contextmanager
    def group(self) -> Iterator[None]:
        """Buffer this thread's records and commit them together (one lock, one fsync) at the end."""
        outer = getattr(self._local, "pending", None)
        if outer is not None:  # nested: the outer group commits
            yield
            return
        self._local.pending = []
        try:
            yield
        finally:
            pending, self._local.pending = self._local.pending, None
            self._append(pending)

    def commit(self) -> None:
        """Make this thread's buffered records durable now (e.g. intents, before the changes are sent)."""
        pending: list[dict[str, Any]] | None = getattr(self._local, "pending", None)
        if pending:
            self._local.pending = []
            self._append(pending)

    def _append(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        with self._lock, self._file() as handle:
            self._catch_up(handle)
            seq, previous = self._tail.seq, self._tail.hash
            lines = []
            for record in records:
                seq += 1
                record["seq"], record["prev"] = seq, previous
                text = _canonical({k: v for k, v in record.items() if k != "hash"})
                masked = mask(text)
                if masked == text:
                    body, digest = record, hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
                    body.pop("hash", None)
                else:  # a secret was in it: the record is what the masked text says
                    body = json.loads(masked)
                    digest = _digest(body)
                if body is not record:
                    record.clear()
                    record.update(body)
                record["hash"] = digest
                lines.append(_line(record))
                previous = digest
            data = b"".join(lines)
            try:
                written = os.write(handle, data)
                if written != len(data):
                    raise OSError(28, "No space left on device (short write)", str(self.path))
                os.fsync(handle)
            except OSError:
                # Nothing of this batch counts: cut what was written, so the chain stays whole on disk.
                try:
                    os.ftruncate(handle, self._tail.offset)
                except OSError:
                    pass  # a read-only file system: nothing was written either
                raise
            self._tail.seq, self._tail.hash = seq, previous
            self._tail.offset += len(data)
            for record in records:
                self.index.add(record)

    def refresh(self) -> None:
        """Read what other processes appended since our last look (call it after taking account slots)."""
        if self.path.exists():
            with self._lock, self._file() as handle:
                self._catch_up(handle)

    # -- queries

    def records(self) -> list[dict[str, Any]]:
        """Every record, read from the file (for the rare whole-journal uses: undo, rollback)."""
        return list(read_journal(self.path))

    def unconfirmed(self) -> dict[ChangeKey, dict[str, Any]]:
        """Intents with no applied/noop outcome yet (a copy: callers consume it)."""
        with self._lock:
            return dict(self.index.unconfirmed)

    def applied(self, target: str, operation: str) -> list[dict[str, Any]]:
        """This incident's applied changes of ``operation`` on ``target``, oldest first."""
        with self._lock:
            return list(self.index.applied.get((target, operation), []))

    def kept(self, *types: str, run: str | None = None) -> list[dict[str, Any]]:
        """Records of the small kinds (:data:`KEPT_TYPES`), optionally of one run."""
        with self._lock:
            return [r for r in self.index.kept if (not types or r.get("type") in types)
                    and (run is None or r.get("run") == run)]

    def last(self) -> tuple[int, str]:
        """(seq, hash) of the last record, as of our last read."""
        with self._lock:
            return self._tail.seq, self._tail.hash


def read_journal(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every well-formed record, in order (a torn last line is skipped)."""
    path = Path(path)
    if not path.exists():
        return
    with path.open("r", encoding="utf-8", errors="surrogateescape") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except ValueError:
                continue


def index_of(records: Iterable[dict[str, Any]]) -> JournalIndex:
    """An index over records read some other way (another incident's journal)."""
    index = JournalIndex()
    for record in records:
        index.add(record)
    return index


def chain_problem(record: Any, previous: str) -> str | None:
    """Why ``record`` does not continue a chain whose last hash is ``previous`` (None: it does)."""
    if not isinstance(record, dict):
        return "not a JSON record"
    if record.get("prev") != previous:
        return "does not follow the previous record (line removed, added or moved)"
    if _digest(record) != record.get("hash"):
        return "content does not match its hash (line edited)"
    return None


def verify_chain(path: str | Path) -> int:
    """Check every line's hash and link; return the number of records or raise JournalDamaged."""
    path = Path(path)
    previous = GENESIS
    count = 0
    with path.open("r", encoding="utf-8", errors="surrogateescape") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                raise JournalDamaged(path, number, "not a JSON record") from None
            problem = chain_problem(record, previous)
            if problem is not None:
                raise JournalDamaged(path, number, problem)
            previous = record["hash"]
            count += 1
    return count
