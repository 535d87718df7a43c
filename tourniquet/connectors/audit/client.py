"""What actions use: a plan (windows, owners' histories, when each attack began), the scope, the events.

:meth:`AuditClient.plan` decides each account's window. It reads the accounts' daily accesses over the
lookback (``audit.attribution.lookback_days``), walks them with :class:`~tourniquet.attribution.Detector`
and asks :func:`~tourniquet.attribution.attack_start` when the accesses that do not fit began:

- ``since: auto``: each account's window starts ``margin_hours`` before its first such access (or, when
  none is found, ``fallback_days`` before the end, said in the scope);
- a fixed ``since``: kept, with a warning when such accesses began before it (and the earlier date).

Each owner's history is the ``history_days`` before the window (before the first odd access when a fixed
``since`` cut into the attack): its networks and hours (:class:`~tourniquet.attribution.Profile`) and its
caseload (joined by the source). :meth:`scope` and :meth:`events` then read the window with that plan,
so the figures and the frozen events agree access for access.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import BaseModel

from tourniquet.attribution import Cell, DayCount, Detector, Profile, attack_start, is_anomalous, network_of
from tourniquet.connectors.audit.config import CONTACT, IDENTITY, AuditConfig
from tourniquet.connectors.audit.events import (
    AuditEvent,
    AuditSource,
    RawGroup,
    Span,
    SubjectRow,
    Vocabulary,
    Windows,
    parse_time,
)
from tourniquet.errors import ConfigError
from tourniquet.nir import normalise
from tourniquet.scope import AffectedSubject, Group, Person, Scope, ScopeBuilder, TimelineDay, WindowWarning

__all__ = ["AuditClient", "ScopePlan", "account_key_of"]

Since = datetime | Literal["auto"]


def account_key_of(account: Any, key: str) -> str | None:
    """The value the log's account column holds for a resolved account (uid, RPPS, mail or DN)."""
    if isinstance(account, str):
        return account
    if isinstance(account, BaseModel):
        account = account.model_dump()
    value = account.get(key) if isinstance(account, dict) else None
    return None if value in (None, "") else str(value)


@dataclass
class ScopePlan:
    """Each account's window and history, the owners' profiles, and what the daily walk found."""

    mode: Literal["fixed", "auto"]
    until: datetime
    windows: Windows
    profiles: dict[str, Profile]
    days: dict[str, list[DayCount]]
    starts: dict[str, DayCount | None]
    warnings: list[WindowWarning] = field(default_factory=list)
    fallback: list[str] = field(default_factory=list)

    @property
    def accounts(self) -> list[str]:
        return self.windows.accounts


class AuditClient:
    """The scope of some accounts over a window, and the events behind it (see the module docstring)."""

    def __init__(self, config: AuditConfig, source: AuditSource) -> None:
        self.config = config
        self.source = source
        self.vocabulary = Vocabulary(config)
        self._networks: dict[str | None, str | None] = {}
        self._hash_key: bytes | None = None
        self._letter_fields: frozenset[str] | None = None
        self._last_person: tuple[SubjectRow | None, Person | None] = (None, None)
        self._contact_fields: frozenset[str] = frozenset()

    # ---------------------------------------------------------------- the plan

    def plan(self, accounts: Sequence[str], since: Since, until: datetime | None = None) -> ScopePlan:
        settings = self.config.attribution
        names = list(dict.fromkeys(accounts))
        end = parse_time(until or datetime.now(timezone.utc))
        auto = isinstance(since, str) and since == "auto"
        fixed: datetime | None = None
        lookback = end - timedelta(days=settings.lookback_days)
        if not auto:
            fixed = parse_time(since)
            if fixed >= end:
                raise ConfigError(f"audit: empty window {fixed.isoformat()} .. {end.isoformat()}")
            lookback = min(lookback, fixed - timedelta(days=settings.history_days))
        days = self._walk(names, Span(lookback, end))
        starts = {a: attack_start(days.get(a, []), settings) for a in names}
        margin = timedelta(hours=settings.margin_hours)
        exposure: dict[str, Span] = {}
        history: dict[str, Span] = {}
        warnings: list[WindowWarning] = []
        fallback: list[str] = []
        for account in names:
            start = starts[account]
            odd = start.first_anomalous if start else None
            if fixed is None:
                if odd is not None:
                    account_since = min(odd - margin, end - timedelta(seconds=1))
                else:
                    account_since = end - timedelta(days=settings.fallback_days)
                    fallback.append(account)
                history_end = account_since
            else:
                account_since = history_end = fixed
                if odd is not None and odd < fixed:
                    history_end = odd - margin
                    continues = any(d.anomalous for d in days.get(account, []) if d.day >= fixed.date())
                    warnings.append(WindowWarning(account=account, window_start=fixed, began=odd,
                                                  suggested_since=(odd - margin).date(), continues=continues))
            exposure[account] = Span(account_since, end)
            history[account] = Span(history_end - timedelta(days=settings.history_days), history_end)
        profiles = {a: Profile(settings) for a in names}
        for row in self.source.history(history):
            profile = profiles.get(row.account)
            if profile is not None:
                profile.add(self._network(row.source_ip), row.hour, row.events)
        return ScopePlan(mode="auto" if auto else "fixed", until=end, windows=Windows(exposure, history),
                         profiles=profiles, days=days, starts=starts, warnings=warnings, fallback=fallback)

    def _walk(self, names: list[str], span: Span) -> dict[str, list[DayCount]]:
        """Each account's days over ``span``, with the accesses that do not fit counted (Detector)."""
        detectors = {a: Detector(self.config.attribution) for a in names}
        current: date | None = None
        pending: dict[str, list[Cell]] = {}

        def flush() -> None:
            if current is not None:
                for account, cells in pending.items():
                    detectors[account].day(current, cells)
            pending.clear()

        for row in self.source.daily({a: span for a in names}):
            if row.account not in detectors:
                continue
            if row.day != current:
                flush()
                current = row.day
            pending.setdefault(row.account, []).append(
                Cell(self._network(row.source_ip), row.hour, row.new_subject, row.events, row.first))
        flush()
        return {a: d.days for a, d in detectors.items()}

    def _network(self, ip: str | None) -> str | None:
        known = self._networks.get(ip, "?")
        if known == "?":
            known = network_of(ip, self.config.attribution)
            if len(self._networks) < 100_000:
                self._networks[ip] = known
        return known

    # ---------------------------------------------------------------- the scope

    def scope(self, plan: ScopePlan, *, on_subject: Callable[[AffectedSubject], None] | None = None) -> Scope:
        """Per account and in total: events, people, categories, the anomalous split; people streamed."""
        windows = {a: (s.start, s.end) for a, s in plan.windows.exposure.items()}
        builder = ScopeBuilder(windows, sorted_by_subject=self.source.sorted_groups, on_subject=on_subject)
        self.vocabulary.unknown_actions = {}
        for raw in self.source.groups(plan.windows):
            builder.add(self._group(raw, plan))
        scope = builder.finish()
        scope.unknown_actions = dict(sorted(self.vocabulary.unknown_actions.items()))
        scope.window.mode = plan.mode
        scope.window.warnings = list(plan.warnings)
        scope.window.fallback = list(plan.fallback)
        for row in scope.accounts:
            start = plan.starts.get(row.account)
            row.attack_start = start.first_anomalous if start else None
            profile = plan.profiles.get(row.account)
            row.history_events = profile.events if profile else None
        before = [TimelineDay(account=a, day=d.day, events=d.events, anomalous=d.anomalous, in_window=False)
                  for a, days in plan.days.items() for d in days
                  if d.day < plan.windows.exposure[a].start.date()]
        scope.timeline = sorted(before + scope.timeline, key=lambda t: (t.account, t.day))
        return scope

    def snapshot_scope(self, accounts: Sequence[str], since: Since, until: datetime | None = None, *,
                       on_subject: Callable[[AffectedSubject], None] | None = None) -> Scope:
        """:meth:`plan` then :meth:`scope`."""
        return self.scope(self.plan(accounts, since, until), on_subject=on_subject)

    def _group(self, raw: RawGroup, plan: ScopePlan) -> Group:
        network = self._network(raw.source_ip)
        known = None if raw.subject is None else raw.known
        anomalous = is_anomalous(plan.profiles.get(raw.account), network, raw.hour, known)
        fields = self.vocabulary.fields(raw.action, raw.fields, raw.count)
        row = raw.subject_row
        present = None if row is None else row.present
        shown, categories = self.vocabulary.shown(fields, present, self.vocabulary.nir_shown(raw.nir_values))
        return Group(account=raw.account, subject=raw.subject, source_ip=raw.source_ip, categories=categories,
                     count=raw.count, first=raw.first, last=raw.last, fields=shown, anomalous=anomalous,
                     network=network, person=self._person(row) if row is not None and raw.subject else None)

    def _person(self, row: SubjectRow) -> Person:
        """What the letter needs of a person; the same subject row (consecutive groups of one person) once."""
        if row is self._last_person[0] and self._last_person[1] is not None:
            return self._last_person[1]
        person = self._read_person(row)
        self._last_person = (row, person)
        return person

    def _read_person(self, row: SubjectRow) -> Person:
        if self._letter_fields is None:
            subjects, categories = self.config.subjects, self.config.categories
            national = subjects.national_id if subjects else None
            self._letter_fields = frozenset(f for f, c in categories.items() if c in (IDENTITY, CONTACT)) - {national}
            self._contact_fields = frozenset(f for f, c in categories.items() if c == CONTACT) - {national}
        letter, contact = self._letter_fields, self._contact_fields
        details = tuple((f, _text(v)) for f, v in row.values if f in letter)
        channels = tuple(f for f, _ in row.values if f in contact)
        national = self.config.subjects.national_id if self.config.subjects else None
        digest = None
        if national is not None:
            value = next((v for f, v in row.values if f == national), None)
            if value is not None:
                digest = self.national_hash(str(value))
        return Person(found=row.found, details=details, channels=channels, national_hash=digest)

    def national_hash(self, value: str) -> str:
        """HMAC-SHA256 of the normalised national identifier under the site's key (the same person, the
        same hash, on every site sharing the key; the value itself is never written)."""
        if self._hash_key is None:
            if self.config.national_id_key is None:
                raise ConfigError("audit: national_id_key is not configured")
            self._hash_key = self.config.national_id_key.get().encode("utf-8")
        return hmac.new(self._hash_key, normalise(value).encode("utf-8"), hashlib.sha256).hexdigest()

    # ---------------------------------------------------------------- the events

    def events(self, plan: ScopePlan) -> Iterator[AuditEvent]:
        """Every access in the plan's windows, oldest first where the source can sort, with its attribution."""
        for raw in self.source.events(plan.windows):
            known = None if raw.subject is None else raw.known
            yield AuditEvent(
                timestamp=raw.timestamp, account=raw.account, subject=raw.subject,
                action=self.vocabulary.action(raw.action), fields=self.vocabulary.fields(raw.action, raw.fields),
                source_ip=raw.source_ip, nir_shown=self.vocabulary.nir_shown(raw.nir_values),
                anomalous=is_anomalous(plan.profiles.get(raw.account), self._network(raw.source_ip),
                                       raw.timestamp.hour, known))

    def close(self) -> None:
        self.source.close()


def _text(value: Any) -> str:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value).strip()
