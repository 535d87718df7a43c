"""The frozen figures both drafts are written from: the scope, and the measures the journal recorded.

One :class:`Figures` per scope folder; the Art. 33 draft and the CERT Santé declaration read the same
object, so they can never disagree. Source addresses are summarised here (count, networks, first and
last seen, the top ten with their events) — the full list goes to an annex CSV.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from tourniquet.drafts.words import zone
from tourniquet.scope import AccountScope, AddressStat, Scope

__all__ = ["Figures", "Measure", "AddressSummary", "measures_from_journal", "summarise_addresses"]

TOP_ADDRESSES = 10


@dataclass(frozen=True)
class Measure:
    """One kind of change, applied to ``count`` targets between ``first`` and ``last``."""

    operation: str
    system: str
    count: int
    first: datetime
    last: datetime
    targets: tuple[str, ...]


@dataclass(frozen=True)
class AddressSummary:
    """One account's source addresses, summarised."""

    account: str
    addresses: int
    networks: int
    top_networks: tuple[tuple[str, int], ...]
    first: datetime | None
    last: datetime | None


def measures_from_journal(records: Iterable[dict[str, Any]]) -> tuple[datetime | None, list[Measure]]:
    """When the response started (awareness), and each kind of change applied, grouped with its times."""
    started: datetime | None = None
    grouped: dict[tuple[str, str], list[tuple[datetime, str]]] = {}
    for record in records:
        when = _time(record.get("time"))
        if record.get("type") == "run" and record.get("status") == "started" and started is None:
            started = when
        if record.get("type") == "change" and record.get("outcome") == "applied" and when is not None:
            key = (str(record.get("operation")), str(record.get("system")))
            grouped.setdefault(key, []).append((when, str(record.get("account") or record.get("target"))))
    measures = [Measure(operation, system, len(items), min(t for t, _ in items), max(t for t, _ in items),
                        tuple(sorted({target for _, target in items})))
                for (operation, system), items in grouped.items()]
    return started, sorted(measures, key=lambda m: m.first)


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def summarise_addresses(addresses: Iterable[AddressStat]) -> tuple[dict[str, AddressSummary], list[AddressStat]]:
    """Per account: how many addresses and networks, the busiest networks, first and last seen; and the
    ten busiest (account, address) pairs overall."""
    per_account: dict[str, list[AddressStat]] = {}
    for stat in addresses:
        per_account.setdefault(stat.account, []).append(stat)
    summaries = {}
    everything: list[AddressStat] = []
    for account, stats in per_account.items():
        networks: dict[str, int] = {}
        for stat in stats:
            networks[stat.network or stat.source_ip] = networks.get(stat.network or stat.source_ip, 0) + stat.events
        top = tuple(sorted(networks.items(), key=lambda item: (-item[1], item[0]))[:3])
        summaries[account] = AddressSummary(account, len(stats), len(networks), top, min(s.first for s in stats),
                                            max(s.last for s in stats))
        everything += stats
    top_ten = sorted(everything, key=lambda s: (-s.events, s.account, s.source_ip))[:TOP_ADDRESSES]
    return summaries, top_ten


@dataclass
class Figures:
    """Everything the drafts say, computed once from the frozen scope and the incident's journal."""

    incident: str
    site: str
    scope: Scope
    labels: dict[str, str]
    generated: datetime
    tz: tzinfo
    noticed: datetime | None
    measures: list[Measure]
    files: dict[str, str]
    addresses: dict[str, AddressSummary] = field(default_factory=dict)
    top_addresses: list[AddressStat] = field(default_factory=list)
    field_labels: dict[str, str] = field(default_factory=dict)
    systems: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, *, incident: str, site: str, scope: Scope, labels: dict[str, str],
              journal: Iterable[dict[str, Any]], files: dict[str, str], generated: datetime,
              timezone_name: str = "Europe/Paris", field_labels: dict[str, str] | None = None,
              systems: list[str] | None = None) -> "Figures":
        noticed, measures = measures_from_journal(journal)
        summaries, top = summarise_addresses(scope.addresses)
        return cls(incident=incident, site=site, scope=scope, labels=labels, generated=generated,
                   tz=zone(timezone_name), noticed=noticed, measures=measures, files=files, addresses=summaries,
                   top_addresses=top, field_labels=dict(field_labels or {}), systems=list(systems or []))

    def label(self, account: str) -> str:
        return self.labels.get(account, account)

    @property
    def accounts(self) -> list[AccountScope]:
        return self.scope.accounts

    @property
    def contained(self) -> datetime | None:
        """When the last account was locked (or its password replaced): the end of the exposure."""
        times = [m.last for m in self.measures if m.operation in ("lock", "scramble_password", "disable")]
        return max(times) if times else None

    @property
    def began(self) -> datetime | None:
        """The first access that did not fit an owner's history, else the first access in the window."""
        starts = [a.attack_start for a in self.accounts if a.attack_start]
        return min(starts) if starts else self.scope.total.first
