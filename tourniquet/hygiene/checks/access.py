"""Access checks for the signs of a misused account (see the domain reference): one day's volume,
off-hours work, a new network, "low and slow" scraping over weeks.

Each compares the account with **its own normal period** — the days before its change point when
it has one, else its oldest days in the log — and, where the account has too little history, with
its peers; never with the days just before the run, which an ongoing misuse would already fill.
The numbers come from the shared per-account aggregates (:mod:`.activity`); ``slow_scraping``
adds one query of its own (distinct patients over whole windows cannot be added up from days).
Windows are whole UTC days ending at the run's reference day (exclusive).

Imports the check base and :mod:`.activity`; imported by the catalogue only.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable
from datetime import datetime, time, timedelta, timezone
from typing import Any

from pydantic import Field, field_validator

from tourniquet.hygiene.checks.activity import (
    NetworkFilter,
    Window,
    addresses,
    daily_activity,
    hours_for,
    median,
)
from tourniquet.hygiene.checks.base import AccessCheck, Params
from tourniquet.hygiene.findings import Finding
from tourniquet.hygiene.spec import working_hours

__all__ = ["UnusualVolume", "OffHours", "NewSourceIp", "SlowScraping"]


def _baseline_evidence(window: Window, why: str) -> dict[str, Any]:
    return {**window.as_dict(), "why": why}


# --------------------------------------------------------------------------- distinct patients per day


class VolumeParams(Params):
    recent_days: int = Field(1, ge=1, le=31, description="Days examined (the last ones before the run).")
    baseline_days: int = Field(30, ge=3, le=366, description="Days of the account's normal period that make its baseline.")
    factor: float = Field(4.0, gt=1, description="Flag a day with this many times the account's usual distinct patients.")
    min_subjects: int = Field(40, ge=1, description="Never flag a day with fewer distinct patients than this.")
    min_baseline_days: int = Field(5, ge=1, description="With fewer active baseline days, compare with peers instead.")


class UnusualVolume(AccessCheck):
    """Distinct patients on one day far above the account's own normal days (or its peers' without them)."""

    name = "unusual_volume"
    parameters = VolumeParams

    def run(self) -> Iterable[Finding]:
        p = self.params
        activity = daily_activity(self.ctx, hours_for(self.ctx))
        end = activity.end
        recent = end - timedelta(days=p.recent_days)
        peer_from = recent - timedelta(days=p.baseline_days)
        peer_sum = peer_days = 0
        candidates: list[tuple[str, Window]] = []
        for account in activity.accounts:
            peers = activity.window(account, peer_from, recent)
            peer_sum += peers.patients
            peer_days += peers.active_days
            latest = activity.window(account, recent, end)
            if latest.max_patients >= p.min_subjects:
                candidates.append((account, latest))
        peer_avg = peer_sum / peer_days if peer_days else 0.0
        self.evidence.update(window={"recent": recent.isoformat(), "end": end.isoformat(),
                                     "peers_from": peer_from.isoformat()},
                             peer_average_per_day=round(peer_avg, 2), accounts=len(activity.accounts))
        for account, latest in candidates:
            period = activity.normal_period(account, recent, p.baseline_days)
            base = activity.window(account, period[0], period[1]) if period else None
            if base is not None and period is not None and base.active_days >= p.min_baseline_days:
                baseline, basis = base.patients / base.active_days, f"own baseline ({period[2]})"
            else:
                baseline, basis = peer_avg, "peers (no baseline of its own)"
            threshold = max(p.min_subjects, p.factor * max(baseline, 1.0))
            if latest.max_patients < threshold:
                continue
            evidence = {"max_distinct_patients_per_day": latest.max_patients, "baseline_per_day": round(baseline, 1),
                        "baseline_basis": basis, "baseline_active_days": base.active_days if base else 0,
                        "baseline_max": base.max_patients if base else None,
                        "baseline": _baseline_evidence(base, period[2]) if base and period else None,
                        "peer_average_per_day": round(peer_avg, 1),
                        "threshold": round(threshold, 1),
                        "window": {"recent": recent.isoformat(), "end": end.isoformat()}}
            yield self.finding(account, f"{latest.max_patients} distinct patients in one day, "
                                        f"{latest.max_patients / max(baseline, 1.0):.1f}× its {basis} "
                                        f"({baseline:.0f}/day; peers {peer_avg:.0f}/day)", evidence)
        self.evidence["queries"] = activity.queries


# --------------------------------------------------------------------------- unusual hours


class OffHoursParams(Params):
    working_hours: tuple[int, int] | None = Field(
        None, description="Local working hours [start, end): outside is off-hours (default: the platform's).")
    utc_offset_hours: int | None = Field(None, ge=-12, le=14, description="Local time = UTC + this (default: the "
                                                                           "platform's; Europe/Paris: 1, 2 in summer).")
    recent_days: int = Field(7, ge=1, le=31)
    baseline_days: int = Field(60, ge=7, le=366, description="Days of the account's normal period that make its baseline.")
    min_events: int = Field(30, ge=1, description="At least this many off-hours accesses in the recent days (a few "
                                                  "night calls a week are not a sign)…")
    factor: float = Field(4.0, gt=1, description="…at this many times the account's own off-hours accesses per day "
                                                 "in its normal period (night-shift accounts are compared with "
                                                 "themselves)…")
    min_share: float = Field(0.1, gt=0, le=1, description="…making at least this share of its recent accesses…")
    daytime_kept: float = Field(
        0.25, ge=0, le=1,
        description="…while its working-hours accesses stay above this share of its baseline's: someone who moved "
                    "to nights stops working days, an intruder's nights come on top of the owner's days (a light "
                    "week of day work is not a move; 0: off).")

    @field_validator("working_hours")
    @classmethod
    def _hours(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        return None if value is None else working_hours(value)


class OffHours(AccessCheck):
    """Accesses at hours the account does not usually work, on top of its usual day's work, more than in
    any week of its normal period."""

    name = "off_hours"
    parameters = OffHoursParams

    def run(self) -> Iterable[Finding]:
        p = self.params
        hours = hours_for(self.ctx, p.working_hours, p.utc_offset_hours)
        activity = daily_activity(self.ctx, hours)
        end = activity.end
        recent = end - timedelta(days=p.recent_days)
        shares = array("d")
        candidates: list[tuple[str, Window]] = []
        for account in activity.accounts:
            latest = activity.window(account, recent, end)
            if latest.events:
                shares.append(latest.off_hours / latest.events)
            if latest.off_hours >= p.min_events:
                candidates.append((account, latest))
        ranked = sorted(shares)
        self.evidence.update(window={"recent": recent.isoformat(), "end": end.isoformat()}, **hours.as_dict(),
                             accounts_active_recently=len(ranked),
                             peers_median_off_hours_share=round(median(ranked) or 0.0, 3))
        for account, latest in candidates:
            share = latest.off_hours / latest.events
            period = activity.normal_period(account, recent, p.baseline_days)
            base = activity.window(account, period[0], period[1]) if period else Window(recent, recent)
            recent_rate, base_rate = latest.off_hours / p.recent_days, base.per_day(base.off_hours)
            day_rate, base_day_rate = latest.working_hours / p.recent_days, base.per_day(base.working_hours)
            if share < p.min_share or recent_rate < p.factor * base_rate:
                continue
            if p.daytime_kept and base.days and day_rate < p.daytime_kept * base_day_rate:
                continue  # the days are gone: the account moved to nights, nobody came on top of it
            busiest = activity.busiest_off_hours(account, base.since, base.until, p.recent_days) if period else 0
            if latest.off_hours <= busiest:
                continue  # it has had nights like these before (on call): not new
            at_or_above = 1 - bisect.bisect_left(ranked, share) / len(ranked)
            base_share = base.off_hours / base.events if base.events else None
            evidence = {"recent_off_hours_events": latest.off_hours, "recent_events": latest.events,
                        "recent_off_hours_share": round(share, 3),
                        "recent_off_hours_per_day": round(recent_rate, 2),
                        "recent_working_hours_per_day": round(day_rate, 2),
                        "baseline_off_hours_per_day": round(base_rate, 2),
                        "baseline_working_hours_per_day": round(base_day_rate, 2),
                        "baseline_off_hours_share": None if base_share is None else round(base_share, 3),
                        "baseline_events": base.events,
                        f"baseline_busiest_{p.recent_days}_days_off_hours_events": busiest,
                        "baseline": _baseline_evidence(base, period[2]) if period else None,
                        "peers_with_this_share_or_more": round(at_or_above, 4),
                        **hours.as_dict(), "window": {"recent": recent.isoformat(), "end": end.isoformat()}}
            usual = "no baseline" if base_share is None else f"usually {base_rate:.1f}/day, {base_share:.0%}"
            start, stop = hours.working
            yield self.finding(account, f"{latest.off_hours} accesses ({share:.0%}) outside {start}h-{stop}h in "
                                        f"{p.recent_days} days, {recent_rate:.1f}/day ({usual}); "
                                        f"{at_or_above:.1%} of active accounts work that late", evidence)
        self.evidence["queries"] = activity.queries


# --------------------------------------------------------------------------- new source IPs


class NewIpParams(Params):
    recent_days: int = Field(1, ge=1, le=31)
    baseline_days: int = Field(60, ge=1, le=366)
    min_events: int = Field(5, ge=1, description="Ignore an address used fewer times than this.")
    prefix_v4: int = Field(24, ge=8, le=32, description="An IPv4 network is known when the site used it in the baseline.")
    prefix_v6: int = Field(48, ge=16, le=128)


class NewSourceIp(AccessCheck):
    """An address the account never used before, in a network nobody on the platform used before."""

    name = "new_source_ip"
    parameters = NewIpParams

    def run(self) -> Iterable[Finding]:
        p = self.params
        found = addresses(self.ctx, hours_for(self.ctx))
        recent_day = found.end - timedelta(days=p.recent_days)
        recent = datetime.combine(recent_day, time(), timezone.utc)
        baseline = recent - timedelta(days=p.baseline_days)
        site_known = NetworkFilter(self.ctx.platform.known_networks)
        known: set[str] = set()
        for use in found.uses:
            if use.first_seen < recent and use.last_seen >= baseline:
                network = found.network(use.address, p.prefix_v4, p.prefix_v6)
                if network:
                    known.add(network)
        self.evidence.update(window={"baseline": baseline.date().isoformat(), "recent": recent_day.isoformat(),
                                     "end": found.end.isoformat()}, known_networks=len(known))
        per_account: dict[str, list[dict[str, object]]] = {}
        for use in found.uses:
            if use.first_seen < recent or use.events < p.min_events:
                continue
            network = found.network(use.address, p.prefix_v4, p.prefix_v6)
            if network is None or network in known or network in site_known:
                continue  # a new workstation in a known hospital network is normal
            per_account.setdefault(use.account, []).append(
                {"source_ip": use.address, "network": network, "first_seen": use.first_seen.isoformat(),
                 "events": use.events, "off_hours_events": use.off_hours})
        for account, new in sorted(per_account.items()):
            new.sort(key=lambda a: str(a["source_ip"]))
            events = sum(int(a["events"]) for a in new)  # type: ignore[call-overload]
            shown = ", ".join(str(a["source_ip"]) for a in new[:3])
            yield self.finding(account, f"{events} accesses from {len(new)} new address(es) in unknown "
                                        f"networks: {shown}",
                               {"new_addresses": new, "window": self.evidence["window"]})
        self.evidence["queries"] = found.queries


# --------------------------------------------------------------------------- low and slow


class SlowParams(Params):
    window_days: int = Field(28, ge=7, le=183, description="Rolling window over which distinct patients add up.")
    peer_factor: float = Field(3.0, gt=1, description="Flag above this many times the peers' median.")
    self_factor: float = Field(2.0, ge=0, description="…and this many times the account's own oldest window in the "
                                                      "log (its normal period; 0: off).")
    min_subjects: int = Field(300, ge=1, description="Never flag fewer distinct patients than this in the window.")
    min_peers: int = Field(20, ge=1, description="Fewer active accounts than this: no peer comparison.")


class SlowScraping(AccessCheck):
    """Distinct patients piling up over weeks ("low and slow"), far above peers and the account's own normal weeks."""

    name = "slow_scraping"
    parameters = SlowParams

    def run(self) -> Iterable[Finding]:
        audit, p = self.ctx.audit, self.params
        first = len(audit.queries)
        window_start = self.ctx.end_day - timedelta(days=p.window_days)
        log_start = (audit.coverage()["first_event"] or window_start.isoformat())[:10]
        look_back = self.ctx.end_day - timedelta(days=self.ctx.platform.lookback_days)
        reference_start = max(datetime.fromisoformat(log_start).date(), look_back)
        reference_end = reference_start + timedelta(days=p.window_days)
        own = reference_end <= window_start  # a whole window of its own before the current one
        if not own:
            reference_start = reference_end = window_start
        window = {"start": reference_start.isoformat(), "recent": reference_end.isoformat(),
                  "window_start": window_start.isoformat(), "end": self.ctx.day(0)}
        day = audit.dialect.day(audit.ts)
        current = f"{audit.ts} >= :window_start"
        reference = f"{audit.ts} < :recent"
        sql = (f"SELECT {audit.account}, "
               f"COUNT(DISTINCT CASE WHEN {current} THEN {audit.subject} END) AS cur, "
               f"COUNT(DISTINCT CASE WHEN {reference} THEN {audit.subject} END) AS ref, "
               f"COUNT(DISTINCT CASE WHEN {current} THEN {day} END) AS active_days, "
               f"SUM(CASE WHEN {current} THEN 1 ELSE 0 END) AS events "
               f"FROM {audit.table} WHERE {audit.ts} >= :start AND {audit.ts} < :end "
               f"AND ({reference} OR {current}) GROUP BY {audit.account}")
        counts = array("l")
        candidates: list[tuple[str, int, int, int, int]] = []
        for account, cur, ref, days, events in audit.query(
                "distinct patients per account: the last window and the oldest one", sql, window):
            if cur:
                counts.append(int(cur))
            if cur >= p.min_subjects:
                candidates.append((str(account), int(cur), int(ref or 0), int(days), int(events or 0)))
        peer_median = median(counts) if len(counts) >= p.min_peers else None
        threshold = max(float(p.min_subjects), p.peer_factor * peer_median) if peer_median else float(p.min_subjects)
        reference_window = {"from": reference_start.isoformat(), "to": reference_end.isoformat()} if own else None
        self.evidence.update(window=window, reference_window=reference_window, active_accounts=len(counts),
                             peer_median=peer_median, threshold=round(threshold, 1),
                             warnings=[] if own else [f"the log starts {log_start}: no whole {p.window_days}-day "
                                                      "window before the current one, no own baseline"])
        for account, cur, ref, days, events in candidates:
            if cur < threshold:
                continue
            if p.self_factor and ref and cur < p.self_factor * ref:
                continue  # consistently high: a busy service, not a new pattern
            evidence = {"distinct_patients_in_window": cur, "reference_window_patients": ref if own else None,
                        "reference_window": reference_window, "active_days": days,
                        "per_active_day": round(cur / max(days, 1), 1), "events": events,
                        "peer_median": peer_median, "threshold": round(threshold, 1), "window": window}
            peers = f"{cur / peer_median:.1f}× the peers' median" if peer_median else "no peer comparison"
            own_text = f"its oldest {p.window_days} days in the log: {ref}" if own else "no own baseline"
            yield self.finding(account, f"{cur} distinct patients in {p.window_days} days ({peers}; "
                                        f"{own_text}), ~{cur / max(days, 1):.0f} a day", evidence)
        self.record_queries(first)
