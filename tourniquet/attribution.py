"""Which of an account's accesses fit its owner's own history, and when the ones that do not began.

Three signs say an access is not the owner's usual work:

- **network**: it comes from a network (IPv4 /24, IPv6 /48) the owner never used before;
- **hours**: at an hour of the day the owner does not work (learnt from their history, so a night-shift
  nurse's 3 am is usual and a day worker's is not);
- **caseload**: about a patient the owner had not seen before.

Owners see new patients every day and sometimes stay late, so one sign alone proves nothing. An access is
counted as *anomalous* when two signs agree (a new network on a new patient, a new patient at 3 am …);
an access about nobody (a login) has no caseload to vouch for it, so one sign is enough. An account with no history at all
cannot be compared with anything: all its accesses count as anomalous (the scope says so).

:class:`Profile` is the owner's history (built from aggregates a database computes, never from events
kept in memory); :func:`is_anomalous` applies the rule; :class:`Detector` walks an account's days in
order, learning the profile from the accesses that fit it, and :func:`attack_start` — the one place that
decides *when it started* — reads the resulting daily counts. It takes per-account daily aggregates, so a
change-point method can replace it without touching anything else.

May import: the standard library and pydantic only. Imported by: ``connectors.audit``, ``scope``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AttributionSettings", "Profile", "Cell", "DayCount", "Detector", "network_of", "is_anomalous",
           "attack_start"]


class AttributionSettings(BaseModel):
    """How the owner's history is read (site ``audit.attribution``); the defaults suit a care platform."""

    model_config = ConfigDict(extra="forbid")

    history_days: int = Field(60, ge=1, le=3660, description="Days of the owner's history before the window.")
    lookback_days: int = Field(180, ge=1, le=3660,
                               description="How far back `since: auto` looks for the start (six months: the "
                                           "legal retention of access logs).")
    warmup_days: int = Field(14, ge=1, description="Active days at the start of the lookback taken as the owner's.")
    margin_hours: float = Field(24, ge=0, description="`since: auto` starts this long before the first odd access.")
    hour_tolerance: int = Field(1, ge=0, le=6, description="Hours next to a usual hour are usual too.")
    usual_hour_share: float = Field(0.01, gt=0, lt=1,
                                    description="An hour of the day is usual when it holds this share of the history.")
    ipv4_prefix: int = Field(24, ge=8, le=32, description="An IPv4 address's network: this many leading bits.")
    ipv6_prefix: int = Field(48, ge=16, le=128, description="An IPv6 address's network: this many leading bits.")
    min_daily: int = Field(3, ge=1, description="Anomalous accesses that make a day count towards a start.")
    persistence_days: int = Field(3, ge=1, description="Such days within episode_days make an attack ...")
    episode_days: int = Field(14, ge=1, description="... when they fall within this many days,")
    max_gap_days: int = Field(7, ge=1, description="... the first of them followed by the next within this many days,")
    start_share: float = Field(0.25, gt=0, le=1, description="... and holding this share of the days that follow "
                                                             "(median): an owner's odd evening before an attack is not it.")
    burst: int = Field(50, ge=1, description="One day with this many anomalous accesses is an attack by itself.")
    fallback_days: int = Field(30, ge=1,
                               description="`since: auto` with no odd access found: the window is this many days.")


def network_of(ip: str | None, settings: AttributionSettings) -> str | None:
    """The network an address belongs to (``10.1.2.0/24``); odd text is its own network."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ip.strip()
    prefix = settings.ipv4_prefix if address.version == 4 else settings.ipv6_prefix
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


@dataclass
class Profile:
    """An owner's history: the networks they used and how their accesses spread over the hours of the day."""

    settings: AttributionSettings
    networks: set[str] = field(default_factory=set)
    hours: list[int] = field(default_factory=lambda: [0] * 24)
    events: int = 0
    _usual: frozenset[int] | None = None

    def add(self, network: str | None, hour: int, count: int) -> None:
        if network is not None:
            self.networks.add(network)
        self.hours[hour % 24] += count
        self.events += count
        self._usual = None

    @property
    def usual_hours(self) -> frozenset[int]:
        if self._usual is None:
            floor = max(1.0, self.settings.usual_hour_share * self.events)
            core = [h for h in range(24) if self.hours[h] >= floor]
            k = self.settings.hour_tolerance
            self._usual = frozenset((h + d) % 24 for h in core for d in range(-k, k + 1))
        return self._usual

    def signs(self, network: str | None, hour: int, known_subject: bool | None) -> tuple[bool, bool, bool]:
        """(new network, unusual hour, patient outside the caseload); ``known_subject`` None: about nobody."""
        return (network is not None and network not in self.networks, hour % 24 not in self.usual_hours,
                known_subject is False)


def is_anomalous(profile: Profile | None, network: str | None, hour: int, known_subject: bool | None) -> bool:
    """Two signs agree (for an access about nobody, one); no history: anomalous."""
    if profile is None or profile.events == 0:
        return True
    new_network, odd_hour, new_patient = profile.signs(network, hour, known_subject)
    if known_subject is None:
        return new_network or odd_hour
    return new_network + odd_hour + new_patient >= 2


@dataclass(frozen=True, slots=True)
class Cell:
    """Accesses of one account on one day sharing network, hour and whether the patient was new."""

    network: str | None
    hour: int
    new_subject: bool | None
    events: int
    first: datetime


@dataclass(frozen=True, slots=True)
class DayCount:
    """One account's day: accesses, how many did not fit, and the first of those."""

    day: date
    events: int
    anomalous: int
    first_anomalous: datetime | None


class Detector:
    """Walk one account's days in time order, learning the owner's profile from the accesses that fit.

    The first ``warmup_days`` active days are taken as the owner's. After that an access that fits
    teaches its hour; its network is learnt once it has been seen, on two different days, on a patient
    of the caseload at a usual hour (an owner's new workstation network), never from anomalous accesses,
    so an attacker's network stays new however long the attack lasts.
    """

    def __init__(self, settings: AttributionSettings) -> None:
        self.settings = settings
        self.profile = Profile(settings)
        self.days: list[DayCount] = []
        self._candidates: dict[str, set[date]] = {}

    def day(self, day: date, cells: Iterable[Cell]) -> DayCount:
        cells = list(cells)
        events = sum(c.events for c in cells)
        if len(self.days) < self.settings.warmup_days:
            for cell in cells:
                self.profile.add(cell.network, cell.hour, cell.events)
            count = DayCount(day, events, 0, None)
            self.days.append(count)
            return count
        anomalous, first = 0, None
        fitting: list[Cell] = []
        for cell in cells:  # judged against the profile as it was before the day, learnt after it
            known = None if cell.new_subject is None else not cell.new_subject
            if is_anomalous(self.profile, cell.network, cell.hour, known):
                anomalous += cell.events
                first = cell.first if first is None or cell.first < first else first
                continue
            fitting.append(cell)
            new_network, odd_hour, new_patient = self.profile.signs(cell.network, cell.hour, known)
            if new_network and cell.network is not None and not odd_hour and not new_patient:
                seen = self._candidates.setdefault(cell.network, set())
                seen.add(day)
                if len(seen) >= 2:
                    self.profile.networks.add(cell.network)
        for cell in fitting:
            self.profile.add(None, cell.hour, cell.events)
        count = DayCount(day, events, anomalous, first)
        self.days.append(count)
        return count


def attack_start(days: Sequence[DayCount], settings: AttributionSettings) -> DayCount | None:
    """The day the accesses that do not fit began, or None: the one "when did it start" decision.

    A day counts when it holds ``min_daily`` anomalous accesses. The start is the first such day that holds
    ``burst`` of them (a day of mass scraping), or that opens ``persistence_days`` counting days within
    ``episode_days``, the next one within ``max_gap_days``, with at least ``start_share`` of the median of the
    days that follow (weeks of low-and-slow scraping). An owner's odd evening — alone, or a few days before
    an attack and far smaller than it — is not the start. A quieter day just before the start (one or two odd
    accesses, a day or two earlier: an attack that began late in the evening) is taken as the start.
    """
    counting = [d for d in days if d.anomalous >= settings.min_daily]
    for index, candidate in enumerate(counting):
        later = counting[index + 1:]
        episode = [d for d in later if (d.day - candidate.day).days < settings.episode_days]
        if candidate.anomalous >= settings.burst:
            return _extend_back(candidate, days)
        if len(episode) + 1 < settings.persistence_days or (episode[0].day - candidate.day).days > settings.max_gap_days:
            continue
        typical = sorted(d.anomalous for d in episode)[len(episode) // 2]
        if candidate.anomalous >= settings.start_share * typical:
            return _extend_back(candidate, days)
    return None


def _extend_back(start: DayCount, days: Sequence[DayCount]) -> DayCount:
    for earlier in reversed([d for d in days if d.day < start.day]):
        if (start.day - earlier.day).days > 2 or not earlier.anomalous:
            break
        start = earlier
    return start
