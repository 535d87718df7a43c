"""Read an incident's journal strictly, once, streaming: what verify and seal need to know of it.

One pass does it all — each line parsed strictly (one JSON object meaning one thing), its link
and hash checked, the records after the last seal summed up — because a journal of 10,000
accounts has 60,000 lines and holding them, or reading them twice, is the cost of a seal.

May import: ``evidence.bundle``, ``journal``. Imported by ``evidence.verify`` and ``evidence.seal``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tourniquet.evidence.bundle import JOURNAL, MAX_RECORD_BYTES, Finding, strict_json
from tourniquet.journal import GENESIS, chain_problem

__all__ = ["JournalView", "UnsealedTail", "read_journal_strictly", "strict_int"]


def strict_int(value: Any) -> int | None:
    """``value`` if it is an int (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class UnsealedTail:
    """The records after the last seal, summed up: a person reviews them from these lines."""

    count: int = 0
    first_line: int = 0
    last_line: int = 0
    runs: set[str] = field(default_factory=set)
    types: set[str] = field(default_factory=set)

    def add(self, line: int, record: dict[str, Any]) -> None:
        self.count += 1
        self.first_line = self.first_line or line
        self.last_line = line
        if record.get("run"):
            self.runs.add(str(record.get("run")))
        self.types.add(str(record.get("type")))


@dataclass
class JournalView:
    """The journal read strictly: counts, the last record, the seals, the chain's first break."""

    count: int = 0  # records read
    last: tuple[int, str] = (0, GENESIS)  # seq and hash of the last record
    sealed: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # the 'sealed' records, by line
    tail: UnsealedTail = field(default_factory=UnsealedTail)  # records with seq > ``after``
    size: int = 0
    problems: list[Finding] = field(default_factory=list)
    torn_line: int | None = None  # an incomplete last line (a write the process did not finish)
    readable: bool = True  # false: the chain cannot be checked line by line
    chained: int = 0  # records that continue the chain, up to its first break
    chain_break: tuple[int, str] | None = None  # the line where the chain first breaks, and why


def _loose(line: bytes) -> Any:
    """The line as the chain sees it (a line strict parsing refuses may still carry a link)."""
    try:
        return json.loads(line.decode("utf-8", "surrogateescape"))
    except ValueError:
        return None


def read_journal_strictly(path: Path, incident: str, *, after: int | None = None,
                          sealed_sequence: int | None = None) -> JournalView:
    """Every record strictly parsed (a line that is not one JSON object meaning one thing is a problem)
    and chained; the records whose seq is above ``after`` summed up as the unsealed tail (but the
    ``sealed`` record of seal ``sealed_sequence``, which comes after what that seal covers)."""
    view = JournalView()
    strangers: dict[str, list[int]] = {}
    previous = GENESIS
    try:
        handle = path.open("rb")
    except OSError as exc:
        view.problems.append(Finding(JOURNAL, f"cannot be read: {exc.strerror or exc}"))
        view.readable = False
        return view
    with handle:
        number = 0
        for line in iter(lambda: handle.readline(MAX_RECORD_BYTES + 1), b""):
            number += 1
            view.size += len(line)
            if len(line) > MAX_RECORD_BYTES:
                view.problems.append(Finding(JOURNAL, f"line {number}: longer than {MAX_RECORD_BYTES} bytes"))
                view.readable = False
                return view
            if not line.strip():
                continue
            try:
                record = strict_json(line)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                if not line.endswith(b"\n"):
                    view.torn_line = number
                else:
                    view.problems.append(Finding(JOURNAL, f"line {number}: {exc}"))
                if view.chain_break is None:
                    loose = _loose(line)
                    problem = chain_problem(loose, previous)
                    if problem is None:
                        previous, view.chained = loose["hash"], view.chained + 1
                    else:
                        view.chain_break = (number, problem)
                continue
            if view.chain_break is None:
                problem = chain_problem(record, previous)
                if problem is None:
                    previous, view.chained = record["hash"], view.chained + 1
                else:
                    view.chain_break = (number, problem)
            if record.get("incident") != incident:
                strangers.setdefault(repr(record.get("incident")), []).append(number)
            seq = strict_int(record.get("seq")) or 0
            view.count += 1
            view.last = (seq, str(record.get("hash", "")))
            if record.get("type") == "sealed":
                view.sealed.append((number, record))
            if after is not None and seq > after and not (
                    record.get("type") == "sealed" and sealed_sequence is not None
                    and record.get("sequence") == sealed_sequence):
                view.tail.add(number, record)
    for name, lines in strangers.items():
        where = f"line {lines[0]}" if len(lines) == 1 else f"{len(lines)} lines from line {lines[0]}"
        view.problems.append(Finding(JOURNAL, f"{where}: name incident {name}, not {incident!r} "
                                              "(a journal of another incident?)"))
    return view
