"""The embedded ticket store: one JSON file (the record) and one Markdown file (to read) per ticket.

For sites without a ticket system, and for the demo. Every write is atomic (temporary
file, fsync, rename); creating holds a lock on the folder, so two runs — two threads,
two processes, even two sites sharing the folder — still make one ticket per key.

A folder that cannot be written for a local reason (read-only, disk full, gone) is a ticket
system that is down: :class:`~tourniquet.errors.TransientError`, so the write waits in the
outbox and is delivered once the folder is writable, like any ticket system's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tourniquet.connectors.tickets.base import TicketDraft, TicketRef
from tourniquet.errors import NotFound, PermanentError, TransientError
from tourniquet.outbox import atomic_write, key_lock, safe_name

__all__ = ["FileStore", "render"]

SYSTEM = "file"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class FileStore:
    system = SYSTEM

    def __init__(self, path: str | Path) -> None:
        self.folder = Path(path)

    # -- records

    @contextmanager
    def _lock(self) -> Iterator[None]:
        held = ExitStack()
        try:
            held.enter_context(key_lock(self.folder / ".lock"))
        except OSError as exc:
            raise self._down(exc) from None
        with held:
            yield

    def _down(self, exc: OSError) -> TransientError:
        """The folder cannot be written here and now: the write waits in the outbox (a local reason, named)."""
        return TransientError(f"the tickets folder {self.folder} cannot be written: {exc.strerror or exc}",
                              system=SYSTEM)

    def _json(self, ticket_id: str) -> Path:
        return self.folder / f"{ticket_id}.json"

    def read(self, ticket_id: str) -> dict[str, Any]:
        try:
            return json.loads(self._json(ticket_id).read_text(encoding="utf-8"))  # type: ignore[no-any-return]
        except FileNotFoundError:
            raise NotFound(f"ticket {ticket_id} not in {self.folder}", system=SYSTEM) from None
        except (OSError, ValueError) as exc:
            raise PermanentError(f"ticket {ticket_id}: cannot read: {exc}", system=SYSTEM) from None

    def _write(self, record: dict[str, Any]) -> None:
        record["updated"] = _now()
        try:
            atomic_write(self._json(record["id"]), json.dumps(record, indent=2, ensure_ascii=False).encode("utf-8"))
            atomic_write(self.folder / f"{record['id']}.md", render(record).encode("utf-8"))
        except OSError as exc:
            raise self._down(exc) from None

    def tickets(self, key: str | None = None) -> list[dict[str, Any]]:
        """Every ticket (of one key), oldest first."""
        if not self.folder.is_dir():
            return []
        pattern = f"{safe_name(key)}-*.json" if key else "*.json"
        records = [json.loads(p.read_text(encoding="utf-8")) for p in self.folder.glob(pattern)]
        return sorted((r for r in records if key is None or r.get("key") == key), key=lambda r: r["number"])

    # -- Backend

    def find_open(self, key: str) -> TicketRef | None:
        for record in self.tickets(key):
            if record["status"] == "open":
                return self._ref(record)
        return None

    def create(self, key: str, draft: TicketDraft) -> TicketRef:
        with self._lock():
            existing = self.find_open(key)  # checked again under the lock: a concurrent run may have won
            if existing is not None:
                self._update(existing, draft)
                return existing
            number = len(self.tickets(key)) + 1
            record = {
                "id": f"{safe_name(key)}-{number}", "number": number, "key": key, "status": "open",
                "created": _now(), **draft.model_dump(mode="json"), "comments": [],
            }
            self._write(record)
            return self._ref(record)

    def update(self, ref: TicketRef, draft: TicketDraft) -> None:
        with self._lock():
            self._update(ref, draft)

    def _update(self, ref: TicketRef, draft: TicketDraft) -> None:
        """Under the folder lock (flock is not re-entrant across file descriptors)."""
        record = self.read(ref.id)
        record.update(draft.model_dump(mode="json"))
        self._write(record)

    def comment(self, ref: TicketRef, text: str) -> None:
        with self._lock():
            record = self.read(ref.id)
            record["comments"].append({"time": _now(), "text": text})
            self._write(record)

    def close(self, ref: TicketRef, text: str) -> None:
        with self._lock():
            record = self.read(ref.id)
            if text:
                record["comments"].append({"time": _now(), "text": text})
            record["status"] = "closed"
            record["closed"] = _now()
            self._write(record)

    def close_connection(self) -> None:
        return None

    def _ref(self, record: dict[str, Any]) -> TicketRef:
        return TicketRef(id=record["id"], url=str(self.folder / f"{record['id']}.md"))


def render(record: dict[str, Any]) -> str:
    """The ticket as a responder reads it."""
    lines = [
        f"# {record['title']}", "",
        f"- **Incident**: `{record['key']}`",
        f"- **Status**: {record['status']}",
        f"- **Severity**: {record['severity']}",
        f"- **Opened**: {record['created']}",
    ]
    if record.get("labels"):
        lines.append(f"- **Labels**: {', '.join(record['labels'])}")
    lines += ["", record.get("body") or "", ""]
    if record.get("links"):
        lines += ["## Evidence", ""] + [f"- {name}: {target}" for name, target in record["links"].items()] + [""]
    if record.get("comments"):
        lines += ["## Updates", ""]
        for comment in record["comments"]:
            lines += [f"### {comment['time']}", "", comment["text"], ""]
    return "\n".join(lines)
