"""The anchor log: every seal's root hash, written outside the evidence folder.

Why: a chain of manifests inside the folder proves nothing to someone who can rewrite the
whole folder — they rewrite the chain too. Each seal therefore also appends a line to
``<state_dir>/evidence-anchors.jsonl`` (and puts its root on the incident's ticket, see
:mod:`tourniquet.engine.sealing`). The log is append-only and hash-chained like the journal:
each line carries the hash of the one before, so a line edited or removed in the middle breaks
the chain; lines removed at the end are still missed by the log alone, which is why the root
also goes to the ticket. Make it append-only for the system too (``chattr +a``), or ship it to a
log host: then rewriting the evidence folder and this log together is no longer enough.

Three kinds of line: ``begun`` (written *before* the manifest: the root and SHA-256 of the
manifest about to be written — what tells a seal interrupted part way from a manifest and
``sealed`` record forged in the folder, which no anchor line announces), ``seal`` (the manifest's
root and SHA-256, and the journal as it stood just after its ``sealed`` record: length, SHA-256 of
that prefix, number of records) and ``ticket`` (where the root was put on the ticket: delivered,
queued in the outbox, or no ticket).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tourniquet.evidence.bundle import MAX_RECORD_BYTES, Finding, canonical, strict_json
from tourniquet.outbox import key_lock, safe_name

__all__ = ["AnchorLog", "AnchorEntries", "ANCHOR_LOG", "GENESIS"]

ANCHOR_LOG = "evidence-anchors.jsonl"
GENESIS = "0" * 64


def _digest(entry: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


@dataclass
class AnchorEntries:
    """What the anchor log says about one incident, and what is wrong with the log itself."""

    seals: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    begun: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    tickets: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    problems: list[Finding] = field(default_factory=list)
    exists: bool = False


class AnchorLog:
    """``<state_dir>/evidence-anchors.jsonl``: append-only, hash-chained, one line per anchor."""

    def __init__(self, state_dir: str | Path, *, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else Path(state_dir) / ANCHOR_LOG
        self._lock = self.path.with_name(self.path.name + ".lock")

    def __str__(self) -> str:
        return str(self.path)

    @contextmanager
    def sealing(self, incident: str) -> Iterator[None]:
        """Held while one incident is sealed: two seals of one incident never interleave (threads, processes)."""
        with key_lock(self.path.parent / "locks" / f"seal-{safe_name(incident)}.lock"):
            yield

    def append(self, kind: str, incident: str, sequence: int, **fields: Any) -> dict[str, Any]:
        """Add one line, chained to the last one; fsync'ed before returning."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with key_lock(self._lock):
            previous = self._tail()
            entry: dict[str, Any] = {"time": datetime.now(timezone.utc).isoformat(), "kind": kind,
                                     "incident": incident, "sequence": sequence, **fields, "prev": previous}
            entry["hash"] = _digest(entry)
            line = canonical(entry) + b"\n"
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                written = os.write(descriptor, line)
                if written != len(line):
                    raise OSError(f"short write to {self.path} ({written} of {len(line)} bytes)")
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        return entry

    def _tail(self) -> str:
        """The hash to chain to: the last line's (a damaged last line is chained by the digest of its bytes)."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return GENESIS
        with self.path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - (1 << 16)))
            lines = [line for line in handle.read().split(b"\n") if line.strip()]
        if not lines:
            return GENESIS
        last = lines[-1]
        try:
            return str(strict_json(last)["hash"])
        except (ValueError, KeyError, TypeError):
            return hashlib.sha256(last).hexdigest()  # damaged: verify names the line; the chain goes on

    def read(self, incident: str) -> AnchorEntries:
        """Every line about ``incident``, checking the whole log's chain on the way."""
        result = AnchorEntries()
        label = str(self.path)
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return result
        except OSError as exc:
            result.problems.append(Finding(label, f"cannot be read: {exc.strerror or exc}"))
            return result
        result.exists = True
        previous = GENESIS
        with handle:
            for number, line in enumerate(iter(lambda: handle.readline(MAX_RECORD_BYTES + 1), b""), start=1):
                if len(line) > MAX_RECORD_BYTES:
                    result.problems.append(Finding(label, f"line {number}: longer than {MAX_RECORD_BYTES} bytes"))
                    return result
                if not line.strip():
                    continue
                try:
                    entry = strict_json(line)
                    if not isinstance(entry, dict):
                        raise ValueError("not a JSON object")
                except ValueError as exc:
                    result.problems.append(Finding(label, f"line {number}: {exc}"))
                    previous = hashlib.sha256(line.rstrip(b"\n")).hexdigest()
                    continue
                if entry.get("prev") != previous:
                    result.problems.append(Finding(
                        label, f"line {number}: does not follow the line before (a line was removed, added or moved)"))
                if entry.get("hash") != _digest(entry):
                    result.problems.append(Finding(label, f"line {number}: content does not match its hash (edited)"))
                previous = str(entry.get("hash"))
                if entry.get("incident") != incident:
                    continue
                sequence = entry.get("sequence")
                if not isinstance(sequence, int) or isinstance(sequence, bool):
                    result.problems.append(Finding(label, f"line {number}: no seal sequence number"))
                    continue
                entry = {**entry, "line": number}
                if entry.get("kind") == "seal":
                    result.seals.setdefault(sequence, []).append(entry)
                elif entry.get("kind") == "ticket":
                    result.tickets.setdefault(sequence, []).append(entry)
                elif entry.get("kind") == "begun":
                    result.begun.setdefault(sequence, []).append(entry)
                else:
                    result.problems.append(Finding(label, f"line {number}: unknown kind {entry.get('kind')!r}"))
        return result
