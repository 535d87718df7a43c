"""When did an account's behaviour change? The day its activity jumped, with the numbers behind it.

An account that is already misused when Tourniquet is installed has no "recent baseline" worth the
name: the days just before the run hold the attack. What it still has is a *change*: the day the
distinct patients it sees, or its accesses outside working hours, stepped up and stayed up. Hygiene
uses that day to take the account's own baseline from before it (and to say since when it looks
misused); the data scope's ``since: auto`` can use the same day so that hygiene and response agree on
when an attack began.

The interface is three names:

- :class:`Day` — one account's aggregates for one UTC day: ``events``, distinct ``patients``,
  ``off_hours`` events (outside local working hours). Any source can fill it: a ``GROUP BY account,
  day`` query, or :func:`fold_events` over one account's events;
- :func:`find_change` — the most likely single upward step in the chosen metrics, or ``None``;
- :class:`Change` — its first day and, per metric, the mean per day before and after and a score.

How: for every candidate day τ the days are split in two (before τ, from τ on) and, per metric, the
difference of the two means is divided by its standard error (a two-sample t statistic with the
pooled day-to-day deviation, floored at one event so that a quiet account's first few accesses are
not a "change"); only rises count, and the metrics' squared scores add up. Among the days whose
combined score reaches ``min_score``, the change is where the two parts are each most regular (the
smallest ``n₁·log σ₁² + n₂·log σ₂²``, the Gaussian likelihood of a change in level and spread): a
clean "before" has a small spread, so this keeps every intrusion day out of it even when the
intruder skipped nights, where the largest score alone would put the split after the last gap. Days without activity count as zeros from the account's first active day on, so a night
of scraping every day is a step even for an account that never works weekends. Pure Python,
``O(days × metrics)`` per account; no I/O, no Prefect, no database.

Imports only the standard library; anything may import it (hygiene's access checks do, and the
data scope's ``since: auto`` can).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

__all__ = ["Day", "Shift", "Change", "METRICS", "find_change", "fold_events", "calendar"]

#: The metrics a :class:`Day` carries.
METRICS = ("events", "patients", "off_hours")

#: Variance floor (events²): below one event a day, noise is not measured but assumed.
VARIANCE_FLOOR = 1.0


@dataclass(frozen=True, slots=True)
class Day:
    """One account, one UTC day."""

    day: date
    events: int = 0
    patients: int = 0
    off_hours: int = 0


@dataclass(frozen=True, slots=True)
class Shift:
    """One metric around the change day: mean per day before and from it, and the step in standard errors."""

    metric: str
    before: float
    after: float
    score: float

    @property
    def increase(self) -> float:
        return self.after - self.before

    @property
    def ratio(self) -> float:
        """after / before (before floored at one a day, so a metric rising from nothing has a finite ratio)."""
        return self.after / max(self.before, 1.0)

    def rose(self, *, min_score: float, min_increase: float = 0.0, min_ratio: float = 1.0) -> bool:
        return self.score >= min_score and self.increase >= min_increase and self.ratio >= min_ratio

    def as_dict(self) -> dict[str, Any]:
        return {"before_per_day": round(self.before, 2), "after_per_day": round(self.after, 2),
                "ratio": round(self.ratio, 2), "score": round(self.score, 1)}


@dataclass(frozen=True)
class Change:
    """The day the new behaviour started (the first day of the "after" part)."""

    day: date
    first_day: date          # the account's first active day: the "before" part starts there
    last_day: date           # the last day considered (the day before the end)
    shifts: dict[str, Shift] = field(default_factory=dict)
    score: float = 0.0       # root of the summed squared scores of the rising metrics

    @property
    def days_before(self) -> int:
        return (self.day - self.first_day).days

    @property
    def days_after(self) -> int:
        return (self.last_day - self.day).days + 1

    def as_dict(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), "days_before": self.days_before, "days_after": self.days_after,
                "score": round(self.score, 1), "metrics": {m: s.as_dict() for m, s in self.shifts.items()}}


def calendar(days: Iterable[Day], end: date, start: date | None = None) -> list[Day]:
    """Every day from the first active one (or ``start`` if later) to ``end`` (exclusive), gaps as zeros.

    Days outside that range are dropped; several entries for one day are added up."""
    merged: dict[date, list[int]] = {}
    for item in days:
        if item.day >= end or (start is not None and item.day < start):
            continue
        totals = merged.setdefault(item.day, [0, 0, 0])
        totals[0] += item.events
        totals[1] += item.patients
        totals[2] += item.off_hours
    active = [d for d, totals in merged.items() if totals[0] or totals[1] or totals[2]]
    if not active:
        return []
    first = min(active)
    out: list[Day] = []
    day = first
    while day < end:
        values = merged.get(day)
        out.append(Day(day, *values) if values else Day(day))
        day += timedelta(days=1)
    return out


def _prefix(values: Sequence[float]) -> tuple[list[float], list[float]]:
    sums, squares = [0.0], [0.0]
    for value in values:
        sums.append(sums[-1] + value)
        squares.append(squares[-1] + value * value)
    return sums, squares


def _shift(metric: str, sums: list[float], squares: list[float], split: int) -> Shift:
    total = len(sums) - 1
    n1, n2 = split, total - split
    s1, s2 = sums[split], sums[total] - sums[split]
    m1, m2 = s1 / n1, s2 / n2
    within = (squares[split] - s1 * m1) + (squares[total] - squares[split] - s2 * m2)
    variance = max(within / max(total - 2, 1), VARIANCE_FLOOR)
    score = (m2 - m1) / math.sqrt(variance * (1.0 / n1 + 1.0 / n2))
    return Shift(metric, m1, m2, score)


def find_change(
    days: Iterable[Day],
    *,
    end: date,
    start: date | None = None,
    metrics: Sequence[str] = ("patients", "off_hours"),
    min_before: int = 14,
    min_after: int = 3,
    min_score: float = 4.0,
) -> Change | None:
    """The most likely day the account's ``metrics`` stepped up and stayed up until ``end`` (exclusive).

    ``days`` are one account's :class:`Day` (any order, gaps allowed); the series runs from its first
    active day (not before ``start``) to the day before ``end``. At least ``min_before`` days before the
    change and ``min_after`` from it; ``None`` when no split reaches ``min_score`` (in standard errors,
    the metrics' scores combined as the root of their summed squares); of those that do, the most
    likely one (see the module's docstring)."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ValueError(f"metrics are among {', '.join(METRICS)}, not {unknown or 'none'}")
    series = calendar(days, end, start)
    total = len(series)
    if total < min_before + min_after:
        return None
    prefixes = {m: _prefix([getattr(d, m) for d in series]) for m in metrics}
    columns = list(prefixes.values())
    dof = max(total - 2, 1)
    threshold = min_score * min_score
    best_split, best_cost = -1, math.inf
    log = math.log
    for split in range(min_before, total - min_after + 1):  # the loop of _shift, inlined: it runs per account
        after_days = total - split
        spread = 1.0 / split + 1.0 / after_days
        combined = cost = 0.0
        for sums, squares in columns:
            s1 = sums[split]
            s2 = sums[total] - s1
            m1, m2 = s1 / split, s2 / after_days
            within1 = squares[split] - s1 * m1
            within2 = squares[total] - squares[split] - s2 * m2
            cost += (split * log(max(within1 / split, VARIANCE_FLOOR))
                     + after_days * log(max(within2 / after_days, VARIANCE_FLOOR)))
            if m2 > m1:
                combined += (m2 - m1) ** 2 / (max((within1 + within2) / dof, VARIANCE_FLOOR) * spread)
        if combined >= threshold and cost < best_cost:
            best_split, best_cost = split, cost
    if best_split < 0:
        return None
    split = _first_day_of_the_step(series, prefixes, best_split, min_before)
    shifts = {m: _shift(m, *prefixes[m], split) for m in metrics}
    score = math.sqrt(sum(s.score ** 2 for s in shifts.values() if s.score > 0))
    return Change(series[split].day, series[0].day, series[-1].day, shifts, score)


#: How far back the first day of a step may be found before the split that scores best.
REFINE_DAYS = 7


def _first_day_of_the_step(series: list[Day], prefixes: dict[str, tuple[list[float], list[float]]],
                           split: int, min_before: int) -> int:
    """Move the split back to the step's first day when the best-scoring split is a little late.

    The score favours a split after which *every* day is high; an intrusion that skipped a night
    early on, or whose first night straddles midnight UTC, has a first high day a few days before
    it. In the metric that stepped most clearly, a day is *high* when it is above the level before by
    a quarter of the step and by three standard deviations of the days before; the step starts at the
    earliest high day within :data:`REFINE_DAYS` before the split from which at least half the days up
    to the split are high."""
    shift = max((_shift(m, sums, squares, split) for m, (sums, squares) in prefixes.items()), key=lambda s: s.score)
    metric, squares = shift.metric, prefixes[shift.metric][1]
    if shift.increase <= 0:
        return split
    spread = math.sqrt(max(squares[split] / split - shift.before ** 2, 0.0))
    high = shift.before + max(0.25 * shift.increase, 3 * spread)
    earliest = split
    for candidate in range(split - 1, max(min_before, split - REFINE_DAYS) - 1, -1):
        values = [getattr(d, metric) for d in series[candidate:split]]
        if values[0] >= high and sum(v >= high for v in values) * 2 >= len(values):
            earliest = candidate
    return earliest


def fold_events(
    events: Iterable[tuple[datetime, str | None]],
    *,
    working_hours: tuple[int, int] = (7, 20),
    utc_offset_hours: int = 1,
) -> list[Day]:
    """One account's events (``(timestamp, patient)``; naive timestamps are UTC) folded into days.

    For a source that streams events instead of answering ``GROUP BY`` (files, a search engine): the
    same :class:`Day` a hygiene query gives. Memory: the distinct patients of one day at a time per day
    seen, so keep it to one account's events."""
    start_hour, end_hour = working_hours
    counts: dict[date, list[int]] = {}
    patients: dict[date, set[str]] = {}
    for moment, patient in events:
        utc = moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
        day = utc.date()
        local_hour = (utc.hour + utc_offset_hours) % 24
        totals = counts.setdefault(day, [0, 0])
        totals[0] += 1
        if not (start_hour <= local_hour < end_hour):
            totals[1] += 1
        if patient is not None:
            patients.setdefault(day, set()).add(patient)
    return [Day(day, events, len(patients.get(day, ())), off) for day, (events, off) in sorted(counts.items())]
