"""What the access checks know about each account, from two ``GROUP BY`` queries shared by all of them.

- :class:`DailyActivity` — one row per account and UTC day: events, distinct patients, events
  outside working hours (``GROUP BY account, day``). Volume, off-hours, the change points and the
  peers' levels all come from it.
- :class:`Addresses` — one row per account and source address: events, events outside working
  hours, the nights it was used on, first and last use (``GROUP BY account, address``). New
  networks, night-only networks and each account's home network (its establishment, for peers)
  come from it.

Both cover the platform's ``lookback_days`` before the run (the retained log, six rolling months
by default), so that each account's **oldest** days are there to serve as its normal period —
or the days before its change point (:func:`tourniquet.changepoint.find_change`) when it has
one. Each is computed once per run and hygiene context (the first check asking runs the query),
and every check that reads it cites the query in its evidence.

Memory: the daily rows are kept as compact arrays (four numbers per account-day), the
addresses as one small record per account and address — never events.

Imports the check base, the access-log reader and :mod:`tourniquet.changepoint`; imported by the
access check modules.
"""

from __future__ import annotations

import ipaddress
import statistics
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from tourniquet.changepoint import Change, Day, find_change
from tourniquet.connectors.audit.aggregates import AuditDb
from tourniquet.hygiene.checks.base import HygieneContext

__all__ = ["Hours", "hours_for", "AccountDays", "DailyActivity", "AddressUse", "Addresses", "Window",
           "daily_activity", "addresses", "network_of", "NetworkFilter", "median", "moment"]


@dataclass(frozen=True)
class Hours:
    """Local working hours and the fixed UTC offset that turns stored UTC into local time."""

    working: tuple[int, int] = (7, 20)
    utc_offset: int = 1

    def off_sql(self, audit: AuditDb) -> str:
        hour = audit.dialect.local_hour(audit.ts)
        return f"({hour} < :work_start OR {hour} >= :work_end)"

    def params(self) -> dict[str, int]:
        return {"work_start": self.working[0], "work_end": self.working[1], "tz_hours": self.utc_offset}

    def as_dict(self) -> dict[str, Any]:
        return {"working_hours_local": list(self.working), "utc_offset_hours": self.utc_offset}


def hours_for(ctx: HygieneContext, working: tuple[int, int] | None = None, utc_offset: int | None = None) -> Hours:
    """A check's hours: its own parameters where given, else the platform's."""
    platform = ctx.platform
    return Hours(tuple(working or platform.working_hours),  # type: ignore[arg-type]
                 platform.utc_offset_hours if utc_offset is None else utc_offset)


def _day(value: Any, cache: dict[Any, date]) -> date:
    """A day as the database returns it: ``date`` (PostgreSQL) or ISO text (SQLite)."""
    found = cache.get(value)
    if found is None:
        found = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
        cache[value] = found
    return found


def moment(audit: AuditDb, value: Any) -> datetime | None:
    """A timestamp from the database as an aware UTC datetime (text, epoch seconds or timestamptz)."""
    text = audit.timestamp_text(value)
    if text is None:
        return None
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


# --------------------------------------------------------------------------- per account and day


@dataclass(frozen=True)
class Window:
    """Totals of one account over ``[since, until)``: what the checks compare."""

    since: date
    until: date
    events: int = 0
    patients: int = 0          # distinct patients summed over days (a patient seen on two days counts twice)
    off_hours: int = 0
    active_days: int = 0
    max_patients: int = 0      # the busiest day's distinct patients

    @property
    def days(self) -> int:
        return max((self.until - self.since).days, 0)

    @property
    def working_hours(self) -> int:
        return self.events - self.off_hours

    def per_day(self, value: int) -> float:
        return value / self.days if self.days else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"from": self.since.isoformat(), "to": self.until.isoformat(), "days": self.days,
                "active_days": self.active_days, "events": self.events, "off_hours_events": self.off_hours,
                "patients_per_active_day": round(self.patients / self.active_days, 1) if self.active_days else None}


class AccountDays:
    """One account's active days: parallel arrays (day offset from the span's start, and the numbers)."""

    __slots__ = ("offsets", "events", "patients", "off_hours")

    def __init__(self) -> None:
        self.offsets = array("H")
        self.events = array("l")
        self.patients = array("l")
        self.off_hours = array("l")

    def add(self, offset: int, events: int, patients: int, off_hours: int) -> None:
        self.offsets.append(offset)
        self.events.append(events)
        self.patients.append(patients)
        self.off_hours.append(off_hours)

    def sort(self) -> None:
        """Rows come in any order from PostgreSQL: put them in day order once."""
        if all(a < b for a, b in zip(self.offsets, self.offsets[1:])):
            return
        rows = sorted(zip(self.offsets, self.events, self.patients, self.off_hours))
        self.offsets = array("H", (r[0] for r in rows))
        self.events = array("l", (r[1] for r in rows))
        self.patients = array("l", (r[2] for r in rows))
        self.off_hours = array("l", (r[3] for r in rows))


@dataclass
class DailyActivity:
    """Every account's days over ``[start, end)``, one query."""

    start: date
    end: date
    hours: Hours
    accounts: dict[str, AccountDays] = field(default_factory=dict)
    queries: list[dict[str, Any]] = field(default_factory=list)
    _changes: dict[str, Change] | None = None

    def first_day(self, account: str) -> date | None:
        days = self.accounts.get(account)
        return self.start + timedelta(days=days.offsets[0]) if days and days.offsets else None

    def days(self, account: str) -> list[Day]:
        rows = self.accounts.get(account)
        if rows is None:
            return []
        start = self.start
        return [Day(start + timedelta(days=o), e, p, f)
                for o, e, p, f in zip(rows.offsets, rows.events, rows.patients, rows.off_hours)]

    def window(self, account: str, since: date, until: date) -> Window:
        rows = self.accounts.get(account)
        since, until = max(since, self.start), min(until, self.end)
        if rows is None or until <= since:
            return Window(since, max(until, since))
        low, high = (since - self.start).days, (until - self.start).days
        events = patients = off = active = busiest = 0
        for offset, e, p, f in zip(rows.offsets, rows.events, rows.patients, rows.off_hours):
            if low <= offset < high:
                events += e
                patients += p
                off += f
                active += 1
                busiest = max(busiest, p)
        return Window(since, until, events, patients, off, active, busiest)

    def busiest_off_hours(self, account: str, since: date, until: date, days: int) -> int:
        """The most off-hours events the account had in any ``days`` consecutive days of ``[since, until)``:
        what its own nights look like at their busiest (an on-call doctor's bad week)."""
        rows = self.accounts.get(account)
        if rows is None:
            return 0
        low, high = (max(since, self.start) - self.start).days, (min(until, self.end) - self.start).days
        per_day = {o: f for o, f in zip(rows.offsets, rows.off_hours) if low <= o < high}
        busiest = running = 0
        for offset in range(low, high):
            running += per_day.get(offset, 0) - per_day.get(offset - days, 0)
            busiest = max(busiest, running)
        return busiest

    def changes(self) -> dict[str, Change]:
        """Each account's change point (the defaults of :func:`find_change`), computed once."""
        if self._changes is None:
            found: dict[str, Change] = {}
            for account in self.accounts:
                change = find_change(self.days(account), end=self.end)
                if change is not None:
                    found[account] = change
            self._changes = found
        return self._changes

    def normal_period(self, account: str, until: date, days: int) -> tuple[date, date, str] | None:
        """The account's own baseline, taken where an ongoing misuse cannot be: the ``days`` days before
        its change point when it has one before ``until``, else its oldest ``days`` days — never reaching
        ``until``. ``None`` when the account has no day before ``until``."""
        first = self.first_day(account)
        if first is None or first >= until:
            return None
        change = self.changes().get(account)
        if change is not None and first < change.day <= until:
            return max(first, change.day - timedelta(days=days)), change.day, f"before its change on {change.day}"
        return first, min(until, first + timedelta(days=days)), "its oldest days in the log"


def daily_activity(ctx: HygieneContext, hours: Hours) -> DailyActivity:
    """Per account and UTC day over the platform's look-back, computed once per run."""
    key = ("daily", hours)
    if key in ctx.shared:
        return ctx.shared[key]  # type: ignore[no-any-return]
    audit = ctx.audit
    first = len(audit.queries)
    end = ctx.end_day
    start = end - timedelta(days=ctx.platform.lookback_days)
    day = audit.dialect.day(audit.ts)
    off = hours.off_sql(audit)
    sql = (f"SELECT {audit.account}, {day}, COUNT(*), COUNT(DISTINCT {audit.subject}), "
           f"SUM(CASE WHEN {off} THEN 1 ELSE 0 END) "
           f"FROM {audit.table} WHERE {audit.ts} >= :start AND {audit.ts} < :end GROUP BY {audit.account}, {day}")
    activity = DailyActivity(start, end, hours)
    days: dict[Any, date] = {}
    accounts = activity.accounts
    for account, when, events, patients, off_hours in audit.query(
            "events, distinct patients and off-hours events per account per day", sql,
            {"start": start.isoformat(), "end": end.isoformat(), **hours.params()}):
        name = str(account)
        rows = accounts.get(name)
        if rows is None:
            rows = accounts[name] = AccountDays()
        rows.add((_day(when, days) - start).days, int(events), int(patients or 0), int(off_hours or 0))
    for rows in accounts.values():
        rows.sort()
    activity.queries = audit.queries[first:]
    ctx.shared[key] = activity
    return activity


# --------------------------------------------------------------------------- per account and address


@dataclass(slots=True)
class AddressUse:
    """One account's use of one source address over the look-back."""

    account: str
    address: str
    events: int
    off_hours: int
    off_hours_days: int
    first_seen: datetime
    last_seen: datetime
    first_off_hours: datetime | None

    @property
    def working_hours(self) -> int:
        return self.events - self.off_hours


def network_of(address: str, prefix_v4: int = 24, prefix_v6: int = 48) -> str | None:
    """The network an address belongs to (``10.20.3.0/24``), or None for something that is not an address."""
    try:
        ip = ipaddress.ip_interface(address.strip()).ip  # PostgreSQL's inet may carry a mask
    except ValueError:
        return None
    prefix = prefix_v4 if ip.version == 4 else prefix_v6
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


class NetworkFilter:
    """The site's known networks (hospitals, VPN, gateways): never suspicious."""

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks]

    def __contains__(self, network: str) -> bool:
        if not self.networks:
            return False
        try:
            candidate = ipaddress.ip_network(network, strict=False)
        except ValueError:
            return False
        return any(candidate.version == known.version and candidate.subnet_of(known)  # type: ignore[arg-type]
                   for known in self.networks)


@dataclass
class Addresses:
    """Every (account, address) pair over the look-back, one query."""

    start: date
    end: date
    hours: Hours
    uses: list[AddressUse] = field(default_factory=list)
    queries: list[dict[str, Any]] = field(default_factory=list)
    _networks: dict[tuple[int, int], dict[str, str | None]] = field(default_factory=dict)

    def by_account(self) -> dict[str, list[AddressUse]]:
        grouped: dict[str, list[AddressUse]] = {}
        for use in self.uses:
            grouped.setdefault(use.account, []).append(use)
        return grouped

    def network(self, address: str, prefix_v4: int = 24, prefix_v6: int = 48) -> str | None:
        table = self._networks.setdefault((prefix_v4, prefix_v6), {})
        if address not in table:
            table[address] = network_of(address, prefix_v4, prefix_v6)
        return table[address]

    def home_networks(self, prefix_v4: int = 24, prefix_v6: int = 48) -> dict[str, str]:
        """Each account's establishment, as the log shows it: of the networks where several accounts work in
        the daytime (an intruder's network is nobody's home), the one of most of its working-hours accesses,
        then of most of its accesses (an account that only works nights)."""
        weight: dict[str, dict[str, list[int]]] = {}
        daytime: dict[str, set[str]] = {}
        for use in self.uses:
            network = self.network(use.address, prefix_v4, prefix_v6)
            if network is None:
                continue
            if use.working_hours:
                daytime.setdefault(network, set()).add(use.account)
            totals = weight.setdefault(use.account, {}).setdefault(network, [0, 0])
            totals[0] += use.working_hours
            totals[1] += use.events
        return {account: max(per.items(), key=lambda item: (len(daytime.get(item[0], ())) > 1, item[1], item[0]))[0]
                for account, per in weight.items()}


def addresses(ctx: HygieneContext, hours: Hours) -> Addresses:
    """Per account and source address over the platform's look-back, computed once per run."""
    key = ("addresses", hours)
    if key in ctx.shared:
        return ctx.shared[key]  # type: ignore[no-any-return]
    audit = ctx.audit
    first = len(audit.queries)
    end = ctx.end_day
    start = end - timedelta(days=ctx.platform.lookback_days)
    off = hours.off_sql(audit)
    day = audit.dialect.day(audit.ts)
    sql = (f"SELECT {audit.account}, {audit.source_ip}, COUNT(*), SUM(CASE WHEN {off} THEN 1 ELSE 0 END), "
           f"COUNT(DISTINCT CASE WHEN {off} THEN {day} END), MIN({audit.ts}), MAX({audit.ts}), "
           f"MIN(CASE WHEN {off} THEN {audit.ts} END) "
           f"FROM {audit.table} WHERE {audit.ts} >= :start AND {audit.ts} < :end AND {audit.source_ip} IS NOT NULL "
           f"GROUP BY {audit.account}, {audit.source_ip}")
    found = Addresses(start, end, hours)
    for account, address, events, off_hours, off_days, first_seen, last_seen, first_off in audit.query(
            "events and off-hours nights per account and source address", sql,
            {"start": start.isoformat(), "end": end.isoformat(), **hours.params()}):
        seen, last = moment(audit, first_seen), moment(audit, last_seen)
        if seen is None or last is None:
            continue
        found.uses.append(AddressUse(str(account), str(address), int(events), int(off_hours or 0), int(off_days or 0),
                                     seen, last, moment(audit, first_off)))
    found.queries = audit.queries[first:]
    ctx.shared[key] = found
    return found


def median(values: Iterable[float]) -> float | None:
    items = list(values)
    return float(statistics.median(items)) if items else None
