"""Checks on the access log: the signs of a misused account (see the domain reference).

Each check is one or two GROUP BY queries; Python only compares the per-account rows
with the account's own baseline or with its peers. Windows are whole UTC days ending at
the run's reference day (exclusive): ``recent`` is the last ``recent_days`` days, the
baseline the ``baseline_days`` before it.
"""

from __future__ import annotations

import ipaddress
import statistics
from array import array
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tourniquet.hygiene.checks import AccessCheck, check
from tourniquet.hygiene.findings import Finding

__all__ = ["UnusualVolume", "OffHours", "NewSourceIp", "SlowScraping"]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _windows(check: AccessCheck, recent_days: int, baseline_days: int) -> dict[str, str]:
    return {"start": check.ctx.day(recent_days + baseline_days), "recent": check.ctx.day(recent_days),
            "end": check.ctx.day(0)}


# --------------------------------------------------------------------------- distinct patients per day


class VolumeParams(_Params):
    recent_days: int = Field(1, ge=1, le=31, description="Days examined (the last ones before the run).")
    baseline_days: int = Field(30, ge=3, le=366, description="Days before them that make the account's baseline.")
    factor: float = Field(4.0, gt=1, description="Flag a day with this many times the account's usual distinct patients.")
    min_subjects: int = Field(40, ge=1, description="Never flag a day with fewer distinct patients than this.")
    min_baseline_days: int = Field(5, ge=1, description="With fewer active baseline days, compare with peers instead.")


@check("unusual_volume", VolumeParams)
class UnusualVolume(AccessCheck):
    """Distinct patients on one day far above the account's own baseline (or its peers' without one)."""

    def run(self) -> Iterable[Finding]:
        audit, p = self.ctx.audit, self.params
        first = len(audit.queries)
        window = _windows(self, p.recent_days, p.baseline_days)
        day = audit.dialect.day(audit.ts)
        daily = (f"SELECT {audit.account} AS account, {day} AS day, COUNT(DISTINCT {audit.subject}) AS n "
                 f"FROM {audit.table} WHERE {audit.ts} >= :start AND {audit.ts} < :end GROUP BY {audit.account}, {day}")
        sql = (f"SELECT account, MAX(CASE WHEN day >= :recent_day THEN n END) AS recent_max, "
               f"SUM(CASE WHEN day < :recent_day THEN n ELSE 0 END) AS base_sum, "
               f"SUM(CASE WHEN day < :recent_day THEN 1 ELSE 0 END) AS base_days, "
               f"MAX(CASE WHEN day < :recent_day THEN n END) AS base_max "
               f"FROM ({daily}) daily GROUP BY account")
        self.evidence["window"] = window
        # One row per account: the peers' average (distinct patients per account-day over the baseline)
        # comes from the same rows, so the log is read once.
        candidates: list[tuple[str, int, int, int, int | None]] = []
        peer_sum = peer_days = 0
        for account, recent_max, base_sum, base_days, base_max in audit.query(
                "distinct patients per account per day", sql, {**window, "recent_day": window["recent"]}):
            peer_sum += int(base_sum or 0)
            peer_days += int(base_days or 0)
            if recent_max is not None and recent_max >= p.min_subjects:
                candidates.append((str(account), int(recent_max), int(base_sum or 0), int(base_days or 0), base_max))
        peer_avg = peer_sum / peer_days if peer_days else 0.0
        self.evidence["peer_average_per_day"] = round(peer_avg, 2)
        for account, recent_max, base_sum, base_days, base_max in candidates:
            if base_days >= p.min_baseline_days:
                baseline, basis = base_sum / base_days, "own baseline"
            else:
                baseline, basis = peer_avg, "peers (no baseline of its own)"
            threshold = max(p.min_subjects, p.factor * max(baseline, 1.0))
            if recent_max < threshold:
                continue
            evidence = {"max_distinct_patients_per_day": recent_max, "baseline_per_day": round(baseline, 1),
                        "baseline_basis": basis, "baseline_active_days": base_days, "baseline_max": base_max,
                        "threshold": round(threshold, 1), "window": window}
            yield self.finding(account, f"{recent_max} distinct patients in one day, "
                                        f"{recent_max / max(baseline, 1.0):.1f}× its {basis} ({baseline:.0f}/day)",
                               evidence)
        self.record_queries(first)


# --------------------------------------------------------------------------- unusual hours


class OffHoursParams(_Params):
    working_hours: tuple[int, int] = Field((7, 20), description="Local working hours [start, end): outside is off-hours.")
    utc_offset_hours: int = Field(1, ge=-12, le=14, description="Local time = UTC + this (Europe/Paris: 1, 2 in summer).")
    recent_days: int = Field(7, ge=1, le=31)
    baseline_days: int = Field(60, ge=7, le=366)
    min_events: int = Field(15, ge=1, description="At least this many off-hours accesses in the recent days…")
    factor: float = Field(4.0, gt=1, description="…at this many times the account's own off-hours accesses per day "
                                                 "in the baseline (night-shift accounts are compared with themselves)…")
    min_share: float = Field(0.1, gt=0, le=1, description="…making at least this share of its recent accesses.")

    @field_validator("working_hours")
    @classmethod
    def _hours(cls, value: tuple[int, int]) -> tuple[int, int]:
        start, end = value
        if not (0 <= start < end <= 24):
            raise ValueError("working_hours is [start, end) with 0 <= start < end <= 24")
        return value


@check("off_hours", OffHoursParams)
class OffHours(AccessCheck):
    """Accesses at hours the account does not usually work (night-shift accounts are compared with themselves)."""

    def run(self) -> Iterable[Finding]:
        audit, p = self.ctx.audit, self.params
        first = len(audit.queries)
        window = _windows(self, p.recent_days, p.baseline_days)
        hour = audit.dialect.local_hour(audit.ts)
        off = f"({hour} < :work_start OR {hour} >= :work_end)"
        recent = f"{audit.ts} >= :recent"
        sql = (f"SELECT {audit.account}, "
               f"SUM(CASE WHEN {recent} AND {off} THEN 1 ELSE 0 END) AS recent_off, "
               f"SUM(CASE WHEN {recent} THEN 1 ELSE 0 END) AS recent_all, "
               f"SUM(CASE WHEN {audit.ts} < :recent AND {off} THEN 1 ELSE 0 END) AS base_off, "
               f"SUM(CASE WHEN {audit.ts} < :recent THEN 1 ELSE 0 END) AS base_all, "
               f"COUNT(DISTINCT CASE WHEN {recent} AND {off} THEN {audit.subject} END) AS recent_off_subjects "
               f"FROM {audit.table} WHERE {audit.ts} >= :start AND {audit.ts} < :end GROUP BY {audit.account} "
               f"HAVING SUM(CASE WHEN {recent} AND {off} THEN 1 ELSE 0 END) >= :min_events")
        params = {**window, "work_start": p.working_hours[0], "work_end": p.working_hours[1],
                  "tz_hours": p.utc_offset_hours, "min_events": p.min_events}
        self.evidence["window"] = window
        for account, recent_off, recent_all, base_off, base_all, subjects in audit.query(
                "off-hours accesses per account", sql, params):
            share = recent_off / recent_all if recent_all else 0.0
            base_share = base_off / base_all if base_all else None
            recent_rate, base_rate = recent_off / p.recent_days, base_off / p.baseline_days
            if share < p.min_share or recent_rate < p.factor * base_rate:
                continue
            evidence = {"recent_off_hours_events": recent_off, "recent_events": recent_all,
                        "recent_off_hours_share": round(share, 3), "recent_off_hours_patients": subjects,
                        "recent_off_hours_per_day": round(recent_rate, 2),
                        "baseline_off_hours_per_day": round(base_rate, 2),
                        "baseline_off_hours_share": None if base_share is None else round(base_share, 3),
                        "baseline_events": base_all, "working_hours_local": list(p.working_hours),
                        "utc_offset_hours": p.utc_offset_hours, "window": window}
            usual = "no baseline" if base_share is None else f"usually {base_rate:.1f}/day, {base_share:.0%}"
            yield self.finding(str(account), f"{recent_off} accesses ({share:.0%}) outside "
                                             f"{p.working_hours[0]}h-{p.working_hours[1]}h in {p.recent_days} days, "
                                             f"{recent_rate:.1f}/day ({usual}), {subjects} patients", evidence)
        self.record_queries(first)


# --------------------------------------------------------------------------- new source IPs


class NewIpParams(_Params):
    recent_days: int = Field(1, ge=1, le=31)
    baseline_days: int = Field(60, ge=1, le=366)
    min_events: int = Field(5, ge=1, description="Ignore an address used fewer times than this.")
    prefix_v4: int = Field(24, ge=8, le=32, description="An IPv4 network is known when the site used it in the baseline.")
    prefix_v6: int = Field(48, ge=16, le=128)


@check("new_source_ip", NewIpParams)
class NewSourceIp(AccessCheck):
    """An address the account never used before, in a network nobody on the platform used before."""

    def _network(self, address: str) -> str | None:
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return None
        prefix = self.params.prefix_v4 if ip.version == 4 else self.params.prefix_v6
        return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))

    def run(self) -> Iterable[Finding]:
        audit, p = self.ctx.audit, self.params
        first = len(audit.queries)
        window = _windows(self, p.recent_days, p.baseline_days)
        known_sql = (f"SELECT DISTINCT {audit.source_ip} FROM {audit.table} "
                     f"WHERE {audit.ts} >= :start AND {audit.ts} < :recent")
        known: set[str] = set()
        for (address,) in audit.query("addresses used in the baseline (whole platform)", known_sql, window):
            network = self._network(str(address)) if address else None
            if network:
                known.add(network)
        new_sql = (f"SELECT {audit.account}, {audit.source_ip}, MIN({audit.ts}), COUNT(*), "
                   f"COUNT(DISTINCT {audit.subject}) FROM {audit.table} "
                   f"WHERE {audit.ts} >= :start AND {audit.ts} < :end "
                   f"GROUP BY {audit.account}, {audit.source_ip} "
                   f"HAVING MIN({audit.ts}) >= :recent AND COUNT(*) >= :min_events")
        self.evidence["window"] = window
        self.evidence["known_networks"] = len(known)
        per_account: dict[str, list[dict[str, object]]] = {}
        for account, address, first_seen, events, subjects in audit.query(
                "addresses first used by each account in the recent days", new_sql, {**window, "min_events": p.min_events}):
            network = self._network(str(address)) if address else None
            if network is None or network in known:
                continue  # a new workstation in a known hospital network is normal
            per_account.setdefault(str(account), []).append(
                {"source_ip": str(address), "network": network, "first_seen": audit.timestamp_text(first_seen), "events": events,
                 "patients": subjects})
        for account, addresses in sorted(per_account.items()):
            events = sum(int(a["events"]) for a in addresses)  # type: ignore[call-overload]
            evidence = {"new_addresses": addresses, "window": window}
            shown = ", ".join(str(a["source_ip"]) for a in addresses[:3])
            yield self.finding(account, f"{events} accesses from {len(addresses)} new address(es) in unknown "
                                        f"networks: {shown}", evidence)
        self.record_queries(first)


# --------------------------------------------------------------------------- low and slow


class SlowParams(_Params):
    window_days: int = Field(28, ge=7, le=183, description="Rolling window over which distinct patients add up.")
    peer_factor: float = Field(3.0, gt=1, description="Flag above this many times the peers' median.")
    self_factor: float = Field(2.0, ge=0, description="…and this many times the account's previous window (0: off).")
    min_subjects: int = Field(300, ge=1, description="Never flag fewer distinct patients than this in the window.")
    min_peers: int = Field(20, ge=1, description="Fewer active accounts than this: no peer comparison.")


@check("slow_scraping", SlowParams)
class SlowScraping(AccessCheck):
    """Distinct patients piling up over weeks ("low and slow"), far above peers and the account's own past."""

    def run(self) -> Iterable[Finding]:
        audit, p = self.ctx.audit, self.params
        first = len(audit.queries)
        window = {"start": self.ctx.day(2 * p.window_days), "window_start": self.ctx.day(p.window_days),
                  "end": self.ctx.day(0)}
        day = audit.dialect.day(audit.ts)
        current = f"{audit.ts} >= :window_start"
        sql = (f"SELECT {audit.account}, "
               f"COUNT(DISTINCT CASE WHEN {current} THEN {audit.subject} END) AS cur, "
               f"COUNT(DISTINCT CASE WHEN {audit.ts} < :window_start THEN {audit.subject} END) AS prev, "
               f"COUNT(DISTINCT CASE WHEN {current} THEN {day} END) AS active_days, "
               f"SUM(CASE WHEN {current} THEN 1 ELSE 0 END) AS events "
               f"FROM {audit.table} WHERE {audit.ts} >= :start AND {audit.ts} < :end GROUP BY {audit.account}")
        counts = array("l")
        candidates: list[tuple[str, int, int, int, int]] = []
        for account, cur, prev, days, events in audit.query("distinct patients per account over the window", sql, window):
            if cur:
                counts.append(int(cur))
            if cur >= p.min_subjects:
                candidates.append((str(account), int(cur), int(prev), int(days), int(events)))
        median = float(statistics.median(counts)) if len(counts) >= p.min_peers else None
        threshold = max(float(p.min_subjects), p.peer_factor * median) if median is not None else float(p.min_subjects)
        self.evidence.update(window=window, active_accounts=len(counts), peer_median=median,
                             threshold=round(threshold, 1))
        for account, cur, prev, days, events in candidates:
            if cur < threshold:
                continue
            if p.self_factor and prev and cur < p.self_factor * prev:
                continue  # consistently high: a busy service, not a new pattern
            evidence = {"distinct_patients_in_window": cur, "previous_window": prev, "active_days": days,
                        "per_active_day": round(cur / max(days, 1), 1), "events": events,
                        "peer_median": median, "threshold": round(threshold, 1), "window": window}
            peers = f"{cur / median:.1f}× the peers' median" if median else "no peer comparison"
            yield self.finding(account, f"{cur} distinct patients in {p.window_days} days ({peers}, "
                                        f"previous window {prev}), ~{cur / max(days, 1):.0f} a day", evidence)
        self.record_queries(first)
