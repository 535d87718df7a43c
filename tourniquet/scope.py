"""The data scope of an incident: what each account touched, how many people, which data.

:class:`ScopeBuilder` folds *groups* — "``count`` events by this account on this subject, from
this IP, showing these fields, between ``first`` and ``last``" — into per-account and total
figures. A SQL source produces the groups with ``GROUP BY`` (one row per combination, not per
event); a file or search source turns each event into a group of one. Memory: the figures
are counters; the only per-subject state is the subject being folded, or — when the source
cannot sort by subject — one small record per distinct subject, never one per event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, Field

__all__ = ["Group", "AffectedSubject", "AccountScope", "Scope", "ScopeBuilder", "SSN"]

SSN = "social_security_number"


@dataclass(slots=True)
class Group:
    """``count`` events sharing account, subject, source IP and categories shown."""

    account: str
    subject: str | None
    source_ip: str | None
    categories: frozenset[str]
    count: int
    first: datetime
    last: datetime


class AffectedSubject(BaseModel):
    """One person whose data was shown to a compromised account (Art. 34 list)."""

    subject: str
    categories: list[str]
    accounts: list[str]
    records: int
    first: datetime
    last: datetime


class AccountScope(BaseModel):
    """Figures for one account (or ``*`` for the total: a person touched by several accounts counts once)."""

    account: str
    events: int = 0
    subjects: int = 0
    first: datetime | None = None
    last: datetime | None = None
    source_ips: list[str] = Field(default_factory=list)
    records_by_category: dict[str, int] = Field(default_factory=dict, description="Events that showed the category.")
    subjects_by_category: dict[str, int] = Field(default_factory=dict, description="People whose category was shown.")


class Scope(BaseModel):
    since: datetime
    until: datetime
    accounts: list[AccountScope]
    total: AccountScope
    subjects: list[AffectedSubject] | None = Field(
        None, description="Filled only when no on_subject callback was given (memory grows with people, not events)."
    )


@dataclass
class _Tally:
    events: int = 0
    first: datetime | None = None
    last: datetime | None = None
    ips: set[str] = field(default_factory=set)
    records: dict[str, int] = field(default_factory=dict)
    subjects: int = 0
    subject_categories: dict[str, int] = field(default_factory=dict)

    def add(self, group: Group) -> None:
        self.events += group.count
        self.first = group.first if self.first is None or group.first < self.first else self.first
        self.last = group.last if self.last is None or group.last > self.last else self.last
        if group.source_ip:
            self.ips.add(group.source_ip)
        for category in group.categories:
            self.records[category] = self.records.get(category, 0) + group.count

    def count_subject(self, categories: Iterable[str]) -> None:
        self.subjects += 1
        for category in categories:
            self.subject_categories[category] = self.subject_categories.get(category, 0) + 1

    def model(self, account: str) -> AccountScope:
        return AccountScope(
            account=account, events=self.events, subjects=self.subjects, first=self.first, last=self.last,
            source_ips=sorted(self.ips), records_by_category=dict(sorted(self.records.items())),
            subjects_by_category=dict(sorted(self.subject_categories.items())),
        )


@dataclass
class _Subject:
    by_account: dict[str, set[str]] = field(default_factory=dict)
    records: int = 0
    first: datetime | None = None
    last: datetime | None = None


class ScopeBuilder:
    """Fold groups into a :class:`Scope`; affected subjects go to ``on_subject`` as they close.

    ``sorted_by_subject``: the groups arrive ordered by subject (SQL ``ORDER BY``), so a subject
    is closed as soon as the next one starts and nothing per subject is kept.
    """

    def __init__(
        self,
        accounts: Iterable[str],
        since: datetime,
        until: datetime,
        *,
        sorted_by_subject: bool = False,
        on_subject: Callable[[AffectedSubject], None] | None = None,
    ) -> None:
        self.accounts = list(dict.fromkeys(accounts))
        self.since, self.until = since, until
        self.sorted = sorted_by_subject
        self._collected: list[AffectedSubject] | None = None if on_subject else []
        self._emit = on_subject or self._collected.append  # type: ignore[union-attr]
        self._tallies = {account: _Tally() for account in self.accounts}
        self._total = _Tally()
        self._open: dict[str, _Subject] = {}
        self._current: str | None = None

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
        state.by_account.setdefault(group.account, set()).update(group.categories)
        state.records += group.count
        state.first = group.first if state.first is None or group.first < state.first else state.first
        state.last = group.last if state.last is None or group.last > state.last else state.last

    def _close(self, subject: str) -> None:
        state = self._open.pop(subject)
        every: set[str] = set()
        for account, categories in state.by_account.items():
            self._tallies[account].count_subject(categories)
            every |= categories
        self._total.count_subject(every)
        assert state.first is not None and state.last is not None
        # model_construct: the values are ours and already typed; validating each of millions costs seconds
        self._emit(AffectedSubject.model_construct(subject=subject, categories=sorted(every),
                                                   accounts=sorted(state.by_account), records=state.records,
                                                   first=state.first, last=state.last))

    def finish(self) -> Scope:
        for subject in sorted(self._open):
            self._close(subject)
        return Scope(
            since=self.since, until=self.until,
            accounts=[tally.model(account) for account, tally in self._tallies.items()],
            total=self._total.model("*"), subjects=self._collected,
        )
