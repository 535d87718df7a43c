"""The data scope of an incident: what each account touched, how many people, which data.

:class:`ScopeBuilder` folds *groups* — "``count`` accesses by this account on this person, from this
address, on this day, showing these fields, consistent with the owner's history or not" — into
per-account and total figures. A SQL source produces the groups with ``GROUP BY`` (one row per
combination, not per event); a file or search source turns each event into a group of one. Memory:
the figures are counters (per account, per address, per day); the only per-person state is the person
being folded, or — when the source cannot sort by person — one small record per person, never one per
event.

Every person is counted (the notification is conservative); the split between accesses consistent
with the owner's history and the others (:mod:`tourniquet.attribution`) is counted beside it, for the
investigation: ``anomalous.events``, ``anomalous.subjects`` (people with at least one anomalous
access) and ``anomalous.only_subjects`` (people *only* anomalous accesses touched).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from pydantic import BaseModel, Field, computed_field

__all__ = ["Group", "Person", "AffectedSubject", "AccountScope", "Anomalous", "AddressStat", "TimelineDay",
           "WindowNote", "WindowWarning", "Scope", "ScopeBuilder", "SSN", "IDENTITY", "CONTACT"]

SSN = "social_security_number"
IDENTITY = "identity"
CONTACT = "contact"


@dataclass(frozen=True, slots=True)
class Person:
    """What the platform's subject table says about a person (when the site has one)."""

    found: bool
    details: tuple[tuple[str, str], ...] = ()
    channels: tuple[str, ...] = ()
    national_hash: str | None = None


@dataclass(slots=True)
class Group:
    """``count`` accesses sharing account, person, address, day, fields really shown and attribution."""

    account: str
    subject: str | None
    source_ip: str | None
    categories: frozenset[str]
    count: int
    first: datetime
    last: datetime
    fields: frozenset[str] = frozenset()
    anomalous: bool = False
    network: str | None = None
    person: Person | None = None


class AffectedSubject(BaseModel):
    """One person whose data was shown to a compromised account (Art. 34 list)."""

    subject: str
    categories: list[str]
    accounts: list[str]
    records: int
    first: datetime
    last: datetime
    fields: list[str] = Field(default_factory=list, description="Data fields shown that the person's record holds.")
    anomalous_only: bool = Field(False, description="Every access to this person was anomalous.")
    details: dict[str, str] = Field(default_factory=dict, description="Identity and contact values (the letter).")
    channels: list[str] = Field(default_factory=list, description="Contact fields holding a value.")
    national_hash: str | None = Field(None, description="Keyed hash of the national identifier (never the value).")
    found: bool | None = Field(None, description="The subject table has a row for this person (None: no table).")


class Anomalous(BaseModel):
    """The accesses that do not fit the owner's history, and the people they touched."""

    events: int = 0
    subjects: int = Field(0, description="People with at least one anomalous access.")
    only_subjects: int = Field(0, description="People touched only by anomalous accesses.")


class AccountScope(BaseModel):
    """Figures for one account (or ``*`` for the total: a person touched by several accounts counts once)."""

    account: str
    since: datetime | None = None
    until: datetime | None = None
    events: int = 0
    subjects: int = 0
    first: datetime | None = None
    last: datetime | None = None
    source_ips: list[str] = Field(default_factory=list)
    networks: list[str] = Field(default_factory=list)
    records_by_category: dict[str, int] = Field(default_factory=dict, description="Events that showed the category.")
    subjects_by_category: dict[str, int] = Field(default_factory=dict, description="People whose category was shown.")
    anomalous: Anomalous = Field(default_factory=Anomalous)
    history_events: int | None = Field(None, description="Accesses in the owner's history (None: not read).")
    attack_start: datetime | None = Field(None, description="First access that did not fit the history (detected).")


class AddressStat(BaseModel):
    account: str
    source_ip: str
    network: str | None
    events: int
    anomalous: int
    first: datetime
    last: datetime


class TimelineDay(BaseModel):
    account: str
    day: date
    events: int
    anomalous: int
    in_window: bool


class WindowWarning(BaseModel):
    """A fixed window that starts after an account's accesses stopped fitting its owner's history."""

    account: str
    window_start: datetime
    began: datetime = Field(description="The first access that did not fit the history.")
    suggested_since: date
    continues: bool = Field(description="Such accesses go on inside the window.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def message(self) -> str:
        where = "and go on inside it" if self.continues else "and stopped before it"
        return (f"{self.account}: accesses that do not fit the account's history began {self.began:%Y-%m-%d %H:%M} "
                f"UTC, before the window's first day ({self.window_start:%Y-%m-%d}), {where}: run again with "
                f"since: {self.suggested_since.isoformat()} (or since: auto)")


class WindowNote(BaseModel):
    """How the window was chosen, and what the responder should know about it."""

    mode: str = Field("fixed", description="fixed | auto")
    warnings: list[WindowWarning] = Field(default_factory=list)
    fallback: list[str] = Field(default_factory=list, description="Accounts `since: auto` found nothing odd for.")


class Scope(BaseModel):
    since: datetime
    until: datetime
    accounts: list[AccountScope]
    total: AccountScope
    subjects: list[AffectedSubject] | None = Field(
        None, description="Filled only when no on_subject callback was given (memory grows with people, not events)."
    )
    window: WindowNote = Field(default_factory=WindowNote)
    no_contact: int | None = Field(None, description="People with no contact field holding a value (None: unknown).")
    not_in_subject_table: int | None = Field(None, description="Subjects the subject table has no row for.")
    unknown_actions: dict[str, int] = Field(default_factory=dict,
                                            description="Action codes action_fields does not list (shown nothing).")
    addresses: list[AddressStat] = Field(default_factory=list, description="Per account and source address.")
    timeline: list[TimelineDay] = Field(default_factory=list, description="Per account and day.")


@dataclass
class _Address:
    network: str | None
    events: int = 0
    anomalous: int = 0
    first: datetime | None = None
    last: datetime | None = None


@dataclass
class _Tally:
    events: int = 0
    first: datetime | None = None
    last: datetime | None = None
    addresses: dict[str, _Address] = field(default_factory=dict)
    records: dict[str, int] = field(default_factory=dict)
    subjects: int = 0
    subject_categories: dict[str, int] = field(default_factory=dict)
    anomalous_events: int = 0
    anomalous_subjects: int = 0
    only_anomalous_subjects: int = 0
    days: dict[date, list[int]] = field(default_factory=dict)

    def add(self, group: Group) -> None:
        self.events += group.count
        self.first = group.first if self.first is None or group.first < self.first else self.first
        self.last = group.last if self.last is None or group.last > self.last else self.last
        if group.anomalous:
            self.anomalous_events += group.count
        if group.source_ip:
            address = self.addresses.get(group.source_ip)
            if address is None:
                address = self.addresses[group.source_ip] = _Address(group.network)
            address.events += group.count
            address.anomalous += group.count if group.anomalous else 0
            address.first = group.first if address.first is None or group.first < address.first else address.first
            address.last = group.last if address.last is None or group.last > address.last else address.last
        for category in group.categories:
            self.records[category] = self.records.get(category, 0) + group.count
        day = self.days.get(group.first.date())
        if day is None:
            day = self.days[group.first.date()] = [0, 0]
        day[0] += group.count
        day[1] += group.count if group.anomalous else 0

    def count_subject(self, categories: Iterable[str], anomalous: bool, only_anomalous: bool) -> None:
        self.subjects += 1
        self.anomalous_subjects += anomalous
        self.only_anomalous_subjects += only_anomalous
        for category in categories:
            self.subject_categories[category] = self.subject_categories.get(category, 0) + 1

    def model(self, account: str, since: datetime | None, until: datetime | None,
              networks: Iterable[str | None] | None = None) -> AccountScope:
        nets = networks if networks is not None else (a.network for a in self.addresses.values())
        return AccountScope(
            account=account, since=since, until=until, events=self.events, subjects=self.subjects,
            first=self.first, last=self.last, source_ips=sorted(self.addresses),
            networks=sorted({n for n in nets if n}),
            records_by_category=dict(sorted(self.records.items())),
            subjects_by_category=dict(sorted(self.subject_categories.items())),
            anomalous=Anomalous(events=self.anomalous_events, subjects=self.anomalous_subjects,
                                only_subjects=self.only_anomalous_subjects),
        )


@dataclass
class _Subject:
    by_account: dict[str, list[object]] = field(default_factory=dict)  # account → [categories, consistent, odd]
    fields: set[str] = field(default_factory=set)
    records: int = 0
    first: datetime | None = None
    last: datetime | None = None
    person: Person | None = None


class ScopeBuilder:
    """Fold groups into a :class:`Scope`; affected subjects go to ``on_subject`` as they close.

    ``windows``: each account's (since, until). ``sorted_by_subject``: the groups arrive ordered by
    subject (SQL ``ORDER BY``), so a subject is closed as soon as the next one starts and nothing per
    subject is kept.
    """

    def __init__(
        self,
        windows: dict[str, tuple[datetime, datetime]],
        *,
        sorted_by_subject: bool = False,
        on_subject: Callable[[AffectedSubject], None] | None = None,
    ) -> None:
        self.windows = dict(windows)
        self.sorted = sorted_by_subject
        self._collected: list[AffectedSubject] | None = None if on_subject else []
        self._emit = on_subject or self._collected.append  # type: ignore[union-attr]
        self._tallies = {account: _Tally() for account in self.windows}
        self._total = _Tally()
        self._open: dict[str, _Subject] = {}
        self._current: str | None = None
        self.no_contact = 0
        self.not_found = 0
        self.people_known = False

    def add(self, group: Group) -> None:
        tally = self._tallies.get(group.account)
        if tally is None:  # a source that matched more loosely (case, spacing) than asked: keep it visible
            tally = self._tallies[group.account] = _Tally()
        tally.add(group)
        self._total.add(group)
        if group.subject is None:
            return
        if self.sorted and self._current is not None and group.subject != self._current:
            self._close(self._current)
        self._current = group.subject
        state = self._open.get(group.subject)
        if state is None:
            state = self._open[group.subject] = _Subject()
        seen = state.by_account.get(group.account)
        if seen is None:
            seen = state.by_account[group.account] = [set(), False, False]
        seen[0].update(group.categories)  # type: ignore[attr-defined]
        seen[2 if group.anomalous else 1] = True
        state.fields.update(group.fields)
        state.records += group.count
        state.first = group.first if state.first is None or group.first < state.first else state.first
        state.last = group.last if state.last is None or group.last > state.last else state.last
        if group.person is not None:
            state.person = group.person

    def _close(self, subject: str) -> None:
        state = self._open.pop(subject)
        every: set[str] = set()
        any_consistent = any_anomalous = False
        for account, (categories, consistent, anomalous) in state.by_account.items():
            self._tallies[account].count_subject(categories, bool(anomalous),  # type: ignore[arg-type]
                                                 bool(anomalous) and not consistent)
            every |= categories  # type: ignore[arg-type]
            any_consistent |= bool(consistent)
            any_anomalous |= bool(anomalous)
        self._total.count_subject(every, any_anomalous, any_anomalous and not any_consistent)
        person = state.person
        if person is not None:
            self.people_known = True
            self.no_contact += not person.channels
            self.not_found += not person.found
        assert state.first is not None and state.last is not None
        # model_construct: the values are ours and already typed; validating each of millions costs seconds
        self._emit(AffectedSubject.model_construct(
            subject=subject, categories=sorted(every), accounts=sorted(state.by_account), records=state.records,
            first=state.first, last=state.last, fields=sorted(state.fields),
            anomalous_only=any_anomalous and not any_consistent,
            details=dict(person.details) if person else {}, channels=list(person.channels) if person else [],
            national_hash=person.national_hash if person else None, found=person.found if person else None))

    def finish(self) -> Scope:
        for subject in sorted(self._open):
            self._close(subject)
        spans = [w for w in self.windows.values()]
        since = min((w[0] for w in spans), default=None)
        until = max((w[1] for w in spans), default=None)
        assert since is not None and until is not None, "a scope covers at least one account"
        accounts = [tally.model(account, *self.windows.get(account, (None, None)))
                    for account, tally in self._tallies.items()]
        addresses = [AddressStat(account=account, source_ip=ip, network=a.network, events=a.events,
                                 anomalous=a.anomalous, first=a.first, last=a.last)  # type: ignore[arg-type]
                     for account, tally in self._tallies.items() for ip, a in sorted(tally.addresses.items())]
        timeline = [TimelineDay(account=account, day=day, events=counts[0], anomalous=counts[1], in_window=True)
                    for account, tally in self._tallies.items() for day, counts in sorted(tally.days.items())]
        return Scope(
            since=since, until=until, accounts=accounts,
            total=self._total.model("*", since, until, (a.network for a in addresses)),
            subjects=self._collected, addresses=addresses, timeline=timeline,
            no_contact=self.no_contact if self.people_known else None,
            not_in_subject_table=self.not_found if self.people_known else None,
        )
