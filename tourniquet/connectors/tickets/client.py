"""Ticket connector: exactly one incident ticket per incident key, never lost.

The playbook speaks to a :class:`TicketClient` (``ctx.site.tickets``); the client speaks
to one :class:`Backend` (a file store, Request Tracker, GLPI, Jira or TheHive — see
the modules of this package) and adds what every backend needs:

- **one ticket per key**: operations on one incident key hold a lock (threads and
  processes sharing the ``state_dir``); ``open`` looks the key up in the local record
  (the *ledger*), then in the ticket system (key stored on the ticket), before creating;
- **outbox**: when the system is unreachable or answers 5xx (a :class:`TransientError`),
  the operation goes into a durable :class:`~tourniquet.outbox.Outbox` and is delivered,
  in order, by the next operation on that key, the next run, or the ``deliver-outbox`` flow;
- **re-runs are quiet**: the ledger remembers what was delivered (ticket id, content
  fingerprint, comment digests, op ids), so a re-run changes nothing and an entry
  delivered just before a crash is not delivered twice.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import structlog

from tourniquet.connectors.tickets.base import Backend, TicketDraft, TicketRef, check_key, digest
from tourniquet.errors import NotFound, PermanentError, TransientError
from tourniquet.outbox import Outbox, atomic_write, safe_name

__all__ = ["Delivery", "TicketState", "TicketClient", "comment_digest"]

log = structlog.get_logger("tourniquet")


def comment_digest(text: str) -> str:
    return digest({"comment": text})


@dataclass
class Delivery:
    """What happened to one ticket operation."""

    status: Literal["delivered", "queued", "noop"]
    ticket_id: str | None = None
    url: str | None = None
    pending: int = 0
    error: str | None = None


@dataclass
class TicketState:
    """What we know about a key's ticket: delivered (ledger) plus still in the outbox."""

    ticket_id: str | None = None
    url: str | None = None
    fingerprint: str | None = None
    closed: bool = False
    comments: list[str] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)
    pending: int = 0
    queued_open: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"ticket_id": self.ticket_id, "url": self.url, "fingerprint": self.fingerprint,
                "closed": self.closed, "comments": self.comments, "delivered": self.delivered}


class Ledger:
    """The local record of what was delivered, one small JSON file per key (written atomically)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        return self.folder / f"{safe_name(key)}.json"

    def load(self, key: str) -> TicketState:
        path = self._path(key)
        if not path.exists():
            return TicketState()
        data = json.loads(path.read_text(encoding="utf-8"))
        return TicketState(ticket_id=data.get("ticket_id"), url=data.get("url"), fingerprint=data.get("fingerprint"),
                           closed=bool(data.get("closed")), comments=list(data.get("comments", [])),
                           delivered=list(data.get("delivered", [])))

    def save(self, key: str, state: TicketState) -> None:
        state.delivered = state.delivered[-500:]
        atomic_write(self._path(key), json.dumps({"key": key, **state.as_dict()}, indent=2).encode("utf-8"))


class TicketClient:
    """The incident's ticket: open / comment / close by incident key, through the outbox."""

    def __init__(self, backend: Backend, state_dir: Path, *, use_outbox: bool = True,
                 retry_after: float = 30.0) -> None:
        """``retry_after``: once the system failed transiently, queue without trying it again for this
        long (seconds), so a run's ticket steps do not each wait for a network timeout."""
        self.backend = backend
        self.retry_after = retry_after
        self._down: tuple[float, str] | None = None
        self.system = backend.system
        self.use_outbox = use_outbox
        self.outbox = Outbox(state_dir, f"tickets-{backend.system}")
        self.ledger = Ledger(Path(state_dir) / "ticket-ledger" / safe_name(backend.system))
        self._swept = False

    # -- reading (no side effects: dry-runs use this)

    def state(self, key: str) -> TicketState:
        """The ledger's record, plus what the outbox will do once delivered."""
        state = self.ledger.load(check_key(key))
        pending = self.outbox.pending(key)
        state.pending = len(pending)
        for entry in pending:
            if entry.operation == "open":
                state.queued_open = True
                state.fingerprint = entry.payload.get("fingerprint")
                state.closed = False
            elif entry.operation == "comment":
                state.comments.append(comment_digest(entry.payload["text"]))
            elif entry.operation == "close":
                state.closed = True
        return state

    # -- writing

    def open(self, key: str, draft: TicketDraft) -> Delivery:
        payload = {"draft": draft.model_dump(mode="json"), "fingerprint": draft.fingerprint()}
        return self._submit(key, "open", payload)

    def comment(self, key: str, text: str, *, closed_ok: bool = False) -> Delivery:
        """``closed_ok``: on the key's last ticket even if it was closed (a seal after an undo closed it)."""
        return self._submit(key, "comment", {"text": text, **({"closed_ok": True} if closed_ok else {})})

    def resolve(self, key: str, text: str = "") -> Delivery:
        """Close the incident's ticket (``close`` is taken: Site.close() closes every client's connection)."""
        return self._submit(key, "close", {"text": text})

    def deliver(self, key: str | None = None) -> dict[str, int]:
        """Deliver what the outbox holds (one key, or every key), in order; return delivered/pending counts."""
        keys = [key] if key is not None else self.outbox.keys()
        delivered = pending = 0
        for one in keys:
            with self.outbox.lock(one):
                done, left = self._flush(one)
            delivered += done
            pending += left
        return {"delivered": delivered, "pending": pending}

    def sweep(self) -> None:
        """Once per client: deliver other incidents' leftovers too (the 'next run' delivers)."""
        if self._swept:
            return
        self._swept = True
        try:
            self.deliver()
        except (PermanentError, NotFound) as exc:
            log.warning("tickets.outbox_stuck", system=self.system, error=str(exc))

    def close(self) -> None:
        """Release the backend's connection (called by Site.close at the end of a run)."""
        self.backend.close_connection()

    # -- internals

    def _submit(self, key: str, operation: str, payload: dict[str, Any]) -> Delivery:
        check_key(key)
        op_id = uuid.uuid4().hex
        with self.outbox.lock(key):
            _, left = self._flush(key)
            if left:
                return self._queue(key, operation, payload, op_id, self._down_reason() or "earlier entries pending")
            if self._down_reason():
                return self._queue(key, operation, payload, op_id, self._down_reason() or "")
            try:
                return self._apply(key, operation, payload, op_id)
            except TransientError as exc:
                self._down = (time.monotonic(), str(exc))
                return self._queue(key, operation, payload, op_id, str(exc))

    def _down_reason(self) -> str | None:
        """Why the system counts as down right now (a transient failure less than retry_after ago)."""
        if self._down is None or time.monotonic() - self._down[0] >= self.retry_after:
            return None
        return self._down[1]

    def _queue(self, key: str, operation: str, payload: dict[str, Any], op_id: str, reason: str) -> Delivery:
        if not self.use_outbox:
            raise TransientError(f"{operation} for {key} not delivered: {reason}", system=self.system)
        self.outbox.append(key, operation, payload, op_id=op_id, reason=reason)
        pending = len(self.outbox.pending(key))
        log.warning("tickets.queued", system=self.system, key=key, operation=operation, reason=reason,
                    pending=pending)
        state = self.ledger.load(key)
        return Delivery("queued", state.ticket_id, state.url, pending, reason)

    def _flush(self, key: str) -> tuple[int, int]:
        """Deliver pending entries in order; stop at the first that still fails transiently."""
        entries = self.outbox.pending(key)
        if entries and self._down_reason():
            return 0, len(entries)
        done = 0
        for index, entry in enumerate(entries):
            try:
                self._apply(key, entry.operation, entry.payload, entry.op_id)
            except TransientError as exc:
                self._down = (time.monotonic(), str(exc))
                log.info("tickets.outbox_waiting", system=self.system, key=key, error=str(exc))
                return done, len(entries) - index
            self.outbox.remove(entry)
            done += 1
        if done:
            log.info("tickets.outbox_delivered", system=self.system, key=key, delivered=done)
        return done, 0

    def _apply(self, key: str, operation: str, payload: dict[str, Any], op_id: str) -> Delivery:
        state = self.ledger.load(key)
        if op_id in state.delivered:  # delivered just before a crash removed it from the outbox
            return Delivery("noop", state.ticket_id, state.url)
        if operation == "open":
            delivery = self._open(key, state, TicketDraft.model_validate(payload["draft"]), payload["fingerprint"])
        elif operation == "comment":
            delivery = self._comment(key, state, payload["text"], closed_ok=bool(payload.get("closed_ok")))
        elif operation == "close":
            delivery = self._close(key, state, payload.get("text", ""))
        else:
            raise PermanentError(f"unknown ticket operation {operation!r}", system=self.system)
        state.delivered.append(op_id)
        self.ledger.save(key, state)
        return delivery

    def _current(self, key: str, state: TicketState) -> TicketRef | None:
        if state.ticket_id and not state.closed:
            return TicketRef(id=state.ticket_id, url=state.url)
        return self.backend.find_open(key)

    def _remember(self, state: TicketState, ref: TicketRef) -> None:
        if state.ticket_id != ref.id:
            state.comments = []
        state.ticket_id, state.url, state.closed = ref.id, ref.url, False

    def _open(self, key: str, state: TicketState, draft: TicketDraft, fingerprint: str) -> Delivery:
        ref = self._current(key, state)
        if ref is None:
            ref = self.backend.create(key, draft)
            log.info("tickets.created", system=self.system, key=key, ticket=ref.id)
        elif state.ticket_id != ref.id or state.fingerprint != fingerprint:
            self.backend.update(ref, draft)
            log.info("tickets.updated", system=self.system, key=key, ticket=ref.id)
        else:
            return Delivery("noop", ref.id, ref.url)
        self._remember(state, ref)
        state.fingerprint = fingerprint
        return Delivery("delivered", ref.id, ref.url)

    def _comment(self, key: str, state: TicketState, text: str, *, closed_ok: bool = False) -> Delivery:
        ref = self._current(key, state)
        if ref is None and closed_ok and state.ticket_id:
            ref = TicketRef(id=state.ticket_id, url=state.url)  # stays closed: only the comment is added
        elif ref is None:
            raise NotFound(f"no open ticket for incident {key}: open it first", system=self.system)
        else:
            self._remember(state, ref)
        fingerprint = comment_digest(text)
        if fingerprint in state.comments:
            return Delivery("noop", ref.id, ref.url)
        self.backend.comment(ref, text)
        state.comments.append(fingerprint)
        return Delivery("delivered", ref.id, ref.url)

    def _close(self, key: str, state: TicketState, text: str) -> Delivery:
        ref = self._current(key, state)
        if ref is None:
            return Delivery("noop", state.ticket_id, state.url)
        self.backend.close(ref, text)
        self._remember(state, ref)
        state.closed = True
        return Delivery("delivered", ref.id, ref.url)
