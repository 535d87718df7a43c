"""The 72-hour clock of GDPR Art. 33, folded from an incident's journal records. Pure: no I/O.

Awareness is when the controller knew: the alert's time when the run was started by one
(``inputs.alert_time``), an ``awareness`` record if someone recorded it, else the first plan or run
of the incident. The CNIL must be notified within 72 hours of it (a late notification says why);
reminders go out at 48 h and 70 h once the scope is frozen and until the filing is recorded
(``tourniquet incidents notified``), and once more when the deadline has passed.

The incident list, its story and the ``deadlines`` flow all read :func:`clock_of`, so they agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["Clock", "Filing", "clock_of", "PARIS", "ART33_DELAY", "REMINDERS", "LATE", "paris", "parse_time"]

PARIS = ZoneInfo("Europe/Paris")
ART33_DELAY = timedelta(hours=72)
#: Reminder keys and how long after awareness each is due.
REMINDERS = {"48h": timedelta(hours=48), "70h": timedelta(hours=70)}
LATE = "late"


def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from ISO text (naive text is taken as UTC); None if it is not one."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def paris(moment: datetime) -> str:
    """``12/12/2026 14:05 (heure de Paris)``-style text, without the words: ``2026-12-12 14:05 CET``."""
    return moment.astimezone(PARIS).strftime("%Y-%m-%d %H:%M %Z")


@dataclass(frozen=True)
class Filing:
    """A notification filed with an authority: ``cnil`` or ``cert-sante``."""

    authority: str
    reference: str
    by: str
    at: datetime


@dataclass(frozen=True)
class Clock:
    incident: str
    awareness: datetime | None
    awareness_source: str
    scope_frozen: datetime | None
    cnil: Filing | None
    cert_sante: Filing | None
    #: Reminder keys already sent (``48h``, ``70h``, ``late``), to any role.
    reminded: frozenset[str]

    @property
    def deadline(self) -> datetime | None:
        return self.awareness + ART33_DELAY if self.awareness else None

    def state(self, now: datetime) -> str:
        """``no scope yet``, ``running``, ``late``, ``filed`` or ``filed late``."""
        deadline = self.deadline
        if self.cnil is not None:
            return "filed late" if deadline and self.cnil.at > deadline else "filed"
        if deadline is None or self.scope_frozen is None:
            return "no scope yet"
        return "late" if now > deadline else "running"

    def due(self, now: datetime) -> list[str]:
        """Reminders due now and not sent yet: only with a frozen scope and no CNIL filing."""
        if self.awareness is None or self.scope_frozen is None or self.cnil is not None:
            return []
        due = [key for key, after in REMINDERS.items() if now >= self.awareness + after and key not in self.reminded]
        if self.deadline is not None and now > self.deadline and LATE not in self.reminded:
            due.append(LATE)
        # Only the latest matters when several are due at once (the flow was down): one message, not three.
        return due[-1:]

    def describe(self, now: datetime) -> str:
        """One line for ``incidents`` and the story."""
        deadline = self.deadline
        if deadline is None:
            return "Art. 33 clock: awareness not recorded"
        state = self.state(now)
        if state in ("filed", "filed late"):
            assert self.cnil is not None
            cert = f", CERT Santé {self.cert_sante.reference}" if self.cert_sante else ", CERT Santé not recorded"
            return (f"Art. 33: {state} — CNIL {self.cnil.reference} by {self.cnil.by} on {paris(self.cnil.at)} "
                    f"(deadline {paris(deadline)}){cert}")
        if state == "late":
            return f"Art. 33: LATE by {_hours(now - deadline)} — deadline was {paris(deadline)}, no CNIL filing recorded"
        left = f"{_hours(deadline - now)} left" if now < deadline else "due now"
        scope = "scope frozen" if self.scope_frozen else "scope not frozen yet"
        return f"Art. 33: {left} — deadline {paris(deadline)} ({scope}; aware since {paris(self.awareness or now)})"


def _hours(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    minutes = int(delta.total_seconds() % 3600 // 60)
    return f"{hours} h {minutes:02d}"


def clock_of(incident: str, records: Iterable[dict[str, Any]]) -> Clock:
    """The clock of ``incident`` from its records (its journal and its plans', in any order)."""
    awareness: datetime | None = None
    source = ""
    first_run: datetime | None = None
    scope: datetime | None = None
    filings: dict[str, Filing] = {}
    reminded: set[str] = set()
    for record in records:
        kind, at = record.get("type"), parse_time(record.get("time"))
        if kind == "awareness":
            recorded = parse_time(record.get("at"))
            if recorded is not None and (source != "recorded" or awareness is None or recorded < awareness):
                awareness, source = recorded, "recorded"
        elif kind == "run" and record.get("status") == "started" and at is not None:
            first_run = at if first_run is None else min(first_run, at)
            alert = parse_time((record.get("inputs") or {}).get("alert_time")) if isinstance(
                record.get("inputs"), dict) else None
            if alert is not None and source != "recorded" and (awareness is None or alert < awareness):
                awareness, source = alert, "alert"
        elif kind == "scope" and at is not None:
            scope = at if scope is None else min(scope, at)
        elif kind == "filing" and at is not None:
            authority = str(record.get("authority", ""))
            if authority not in filings:  # the first filing counts; a correction is a new reference, noted
                filings[authority] = Filing(authority, str(record.get("reference", "")), str(record.get("by", "")),
                                            parse_time(record.get("at")) or at)
        elif kind == "notification" and record.get("once") and record.get("status") in ("sent", "queued"):
            reminded.add(str(record["once"]))
    if awareness is None and first_run is not None:
        awareness, source = first_run, "first plan or run"
    return Clock(incident, awareness, source, scope, filings.get("cnil"), filings.get("cert-sante"),
                 frozenset(reminded))
