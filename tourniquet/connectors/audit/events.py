"""The canonical access event, the platform's vocabulary turned into it, and what every source yields.

    timestamp   when the record was accessed (UTC)
    account     who accessed it (the value the log's account column holds; see ``account_key``)
    subject     the data subject (patient) id
    action      the platform's action code, mapped by ``actions``
    fields      the data fields shown: the action's ``action_fields``, or the log's fields column
    source_ip   where the request came from

Sources yield *raw* rows (the platform's codes, the subject row's presence flags, whether the patient
was in the owner's caseload); :class:`Vocabulary` turns them into fields and categories, and the client
adds the attribution. Nothing here does I/O.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Protocol

from tourniquet.connectors.audit.config import SSN, AuditConfig
from tourniquet.nir import is_nir

__all__ = ["AuditEvent", "AuditSource", "Span", "Windows", "SubjectRow", "RawGroup", "RawEvent", "HistoryRow",
           "DailyRow", "Vocabulary", "parse_fields", "parse_time", "SYSTEM"]

SYSTEM = "audit"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One access, in the canonical model (``anomalous``: see :mod:`tourniquet.attribution`)."""

    timestamp: datetime
    account: str
    subject: str | None
    action: str
    fields: tuple[str, ...]
    source_ip: str | None
    nir_shown: bool = False
    anomalous: bool | None = None

    def as_json(self) -> dict[str, Any]:
        return {"timestamp": self.timestamp.isoformat(), "account": self.account, "subject": self.subject,
                "action": self.action, "fields": list(self.fields), "source_ip": self.source_ip,
                "nir_shown": self.nir_shown, "anomalous": self.anomalous}


@dataclass(frozen=True, slots=True)
class Span:
    """``start <= t < end``, UTC."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class Windows:
    """Per account (as the log names it): the exposure window, and the owner's history before it."""

    exposure: dict[str, Span]
    history: dict[str, Span]

    @property
    def accounts(self) -> list[str]:
        return list(self.exposure)


@dataclass(frozen=True, slots=True)
class SubjectRow:
    """What the subject table holds for one person: whether the row exists, values, fields present."""

    found: bool
    present: frozenset[str]
    values: tuple[tuple[str, Any], ...]


@dataclass(frozen=True, slots=True)
class RawGroup:
    """``count`` accesses sharing subject, account, address, action, fields cell, NIR values and hour."""

    subject: str | None
    account: str
    source_ip: str | None
    action: Any
    fields: Any
    nir_values: tuple[Any, ...]
    hour: int
    count: int
    first: datetime
    last: datetime
    known: bool | None
    subject_row: SubjectRow | None


@dataclass(frozen=True, slots=True)
class RawEvent:
    timestamp: datetime
    account: str
    subject: str | None
    action: Any
    fields: Any
    source_ip: str | None
    nir_values: tuple[Any, ...]
    known: bool | None


@dataclass(frozen=True, slots=True)
class HistoryRow:
    account: str
    source_ip: str | None
    hour: int
    events: int


@dataclass(frozen=True, slots=True)
class DailyRow:
    """Accesses of one account on one day sharing address, hour and whether the patient was new that day."""

    account: str
    day: date
    source_ip: str | None
    hour: int
    new_subject: bool | None
    events: int
    first: datetime


class AuditSource(Protocol):
    """What every access-log backend provides; all streamed, oldest first where order matters.

    ``sorted_groups``: groups arrive ordered by subject (SQL ``ORDER BY``), so the scope keeps no
    per-person state; otherwise it keeps one small record per person.
    """

    sorted_groups: bool

    def groups(self, windows: Windows) -> Iterator[RawGroup]: ...

    def events(self, windows: Windows) -> Iterator[RawEvent]: ...

    def history(self, spans: dict[str, Span]) -> Iterator[HistoryRow]: ...

    def daily(self, spans: dict[str, Span]) -> Iterator[DailyRow]: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------- value parsing


def parse_fields(value: Any) -> tuple[str, ...]:
    """A fields cell: JSON list, comma-separated text, a database array, or nothing."""
    if value is None or value == "":
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(str(v).strip() for v in value if str(v).strip())
    text = str(value).strip()
    if text.startswith("["):
        with contextlib.suppress(ValueError, TypeError):
            return tuple(str(v).strip() for v in json.loads(text) if str(v).strip())
    return tuple(part.strip() for part in text.split(",") if part.strip())


_EPOCH = re.compile(r"\d+(\.\d+)?")


def parse_time(value: Any) -> datetime:
    """ISO text (naive = UTC), epoch seconds, or a datetime; always returned timezone-aware."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
    elif isinstance(value, str) and _EPOCH.fullmatch(value):
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
    else:  # millions of rows: ISO text first, the cheap way (Python 3.11 reads "Z" itself)
        moment = datetime.fromisoformat(str(value).strip())
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def text_or_none(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


class Vocabulary:
    """The platform's words turned into canonical ones: actions, fields shown, categories, NIRs.

    Memoised: a log has few distinct action codes and field lists, and millions of rows.
    """

    def __init__(self, config: AuditConfig) -> None:
        self.config = config
        self._fields: dict[Any, tuple[str, ...]] = {}
        self._shown: dict[tuple[Any, ...], tuple[frozenset[str], frozenset[str]]] = {}
        self.subject_fields = frozenset(config.subjects.fields) if config.subjects else frozenset()
        #: action codes seen that action_fields does not list, with their number of events
        self.unknown_actions: dict[str, int] = {}

    def action(self, code: Any) -> str:
        text = "" if code is None else str(code)
        return self.config.actions.get(text, text)

    def fields(self, code: Any, cell: Any, count: int = 1) -> tuple[str, ...]:
        """What an access showed: its action's fields (action_fields), else the fields cell."""
        table = self.config.action_fields
        if table is not None:
            text = "" if code is None else str(code)
            shown = table.get(text)
            if shown is None:
                self.unknown_actions[text] = self.unknown_actions.get(text, 0) + count
                return ()
            return tuple(shown)
        key = cell if isinstance(cell, (str, type(None))) else tuple(cell) if isinstance(cell, list) else cell
        try:
            known = self._fields.get(key)
        except TypeError:  # an unhashable cell: parse it every time
            return parse_fields(cell)
        if known is None:
            known = parse_fields(cell)
            if len(self._fields) < 10_000:
                self._fields[key] = known
        return known

    def category(self, field: str) -> str:
        return self.config.categories.get(field, "other")

    def shown(self, fields: tuple[str, ...], present: frozenset[str] | None,
              nir_shown: bool) -> tuple[frozenset[str], frozenset[str]]:
        """(fields, categories) really shown: a field with a subject column only when the person's row
        holds a value for it (``present``; None: no subject table configured)."""
        key = (fields, present, nir_shown)
        known = self._shown.get(key)
        if known is None:
            kept = frozenset(f for f in fields
                             if present is None or f not in self.subject_fields or f in present)
            categories = frozenset(self.category(f) for f in kept)
            known = (kept, categories | {SSN} if nir_shown else categories)
            if len(self._shown) < 10_000:
                self._shown[key] = known
        return known

    @staticmethod
    def nir_shown(values: Iterable[Any]) -> bool:
        return any(is_nir(v) for v in values if v is not None)
