"""Access checks for a misuse already under way when hygiene first runs — the usual case.

An account scraped for weeks before Tourniquet was installed has no clean recent baseline, so these
two checks do not use one:

- ``night_network``: an address range this account uses outside working hours that **no other
  account uses in working hours** — not a hospital, not a VPN everyone shares — is suspicious however
  long it has been used. The date of its first night is when the misuse (at least) began.
- ``behaviour_change``: the day the account's distinct patients **and** its off-hours accesses
  stepped up together and stayed up (:func:`tourniquet.changepoint.find_change`), while its peers
  (the accounts of its establishment, as the log shows it: the same home network) did not change at
  that date. Someone who moved to nights does not see more patients; a ward whose new screen logs every
  patient on a list changes with all its colleagues; an intruder adds patients at night on top of the
  owner's day.

Both say why in numbers: the account, its peers, the window, the day it started.
Imports the check base and :mod:`.activity`; imported by the catalogue only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pydantic import Field, field_validator

from tourniquet.changepoint import Change
from tourniquet.hygiene.checks.activity import (
    AddressUse,
    DailyActivity,
    NetworkFilter,
    addresses,
    daily_activity,
    hours_for,
)
from tourniquet.hygiene.checks.base import AccessCheck, Params
from tourniquet.hygiene.findings import Finding
from tourniquet.hygiene.spec import working_hours

__all__ = ["NightNetwork", "BehaviourChange"]

#: Accounts with a change point listed in the evidence, flagged or not (the change-point view).
CHANGES_IN_EVIDENCE = 1000


class _HoursParams(Params):
    working_hours: tuple[int, int] | None = Field(
        None, description="Local working hours [start, end) (default: the platform's).")
    utc_offset_hours: int | None = Field(None, ge=-12, le=14, description="Local time = UTC + this (default: the "
                                                                           "platform's).")

    @field_validator("working_hours")
    @classmethod
    def _hours(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        return None if value is None else working_hours(value)


# --------------------------------------------------------------------------- night-only networks


class NightNetworkParams(_HoursParams):
    min_events: int = Field(20, ge=1, description="Off-hours accesses by the account from the network (look-back).")
    min_nights: int = Field(3, ge=1, description="…on at least this many nights (counted per address)…")
    min_off_hours_share: float = Field(
        0.5, ge=0, le=1, description="…making at least this share of its accesses from the network: a home network "
                                     "used for a few late reports after a day of telework is not a night network.")
    max_accounts: int = Field(
        5, ge=1, description="A network used off-hours by more accounts than this, and by none in working hours, is "
                             "infrastructure (a night gateway): listed in the evidence for review, not reported.")
    prefix_v4: int = Field(24, ge=8, le=32, description="Network size for IPv4 addresses.")
    prefix_v6: int = Field(48, ge=16, le=128, description="Network size for IPv6 addresses.")


@dataclass
class _NightUse:
    """One account in one network: its addresses there, added up."""

    addresses: list[AddressUse] = field(default_factory=list)

    @property
    def off_hours(self) -> int:
        return sum(a.off_hours for a in self.addresses)

    @property
    def working_hours(self) -> int:
        return sum(a.working_hours for a in self.addresses)

    @property
    def nights(self) -> int:
        return sum(a.off_hours_days for a in self.addresses)

    @property
    def first_night(self) -> datetime | None:
        return min((a.first_off_hours for a in self.addresses if a.first_off_hours), default=None)

    @property
    def last_seen(self) -> datetime:
        return max(a.last_seen for a in self.addresses)


class NightNetwork(AccessCheck):
    """A network the account uses at night that no other account uses in working hours, however long it has been."""

    name = "night_network"
    parameters = NightNetworkParams

    def run(self) -> Iterable[Finding]:
        p = self.params
        found = addresses(self.ctx, hours_for(self.ctx, p.working_hours, p.utc_offset_hours))
        known = NetworkFilter(self.ctx.platform.known_networks)
        daytime: dict[str, set[str]] = {}             # network → accounts using it in working hours
        nights: dict[str, dict[str, _NightUse]] = {}  # network → account → its use there
        for use in found.uses:
            network = found.network(use.address, p.prefix_v4, p.prefix_v6)
            if network is None:
                continue
            if use.working_hours:
                daytime.setdefault(network, set()).add(use.account)
            nights.setdefault(network, {}).setdefault(use.account, _NightUse()).addresses.append(use)
        infrastructure: list[dict[str, Any]] = []
        self.evidence.update(window={"from": found.start.isoformat(), "end": found.end.isoformat()},
                             **found.hours.as_dict(), networks=len(nights),
                             networks_used_in_working_hours=len(daytime),
                             known_networks=self.ctx.platform.known_networks)
        for network, users in sorted(nights.items()):
            night_users = {a: u for a, u in users.items() if u.off_hours}
            if not night_users or network in known:
                continue
            day_users = daytime.get(network, set())
            if len(night_users) > p.max_accounts and not day_users:
                infrastructure.append({"network": network, "night_accounts": len(night_users)})
                continue
            for account, night in sorted(night_users.items()):
                if night.off_hours < p.min_events or night.nights < p.min_nights or day_users - {account}:
                    continue
                if night.off_hours < p.min_off_hours_share * (night.off_hours + night.working_hours):
                    continue
                yield self._finding(account, network, night, night_users, found.end)
        self.evidence["night_only_networks_not_reported"] = infrastructure
        self.evidence["queries"] = found.queries

    def _finding(self, account: str, network: str, use: _NightUse, night_users: dict[str, _NightUse],
                 end: date) -> Finding:
        first = use.first_night
        others = sorted(a for a in night_users if a != account)
        since = f"since {first:%Y-%m-%d}" if first else "in the look-back"
        days = (end - first.date()).days if first else None
        evidence = {
            "network": network, "first_off_hours_use": first.isoformat() if first else None,
            "started": first.date().isoformat() if first else None, "days_since": days,
            "last_use": use.last_seen.isoformat(), "off_hours_events": use.off_hours, "nights": use.nights,
            "working_hours_events_by_this_account": use.working_hours,
            "other_accounts_in_working_hours": 0, "other_accounts_off_hours": others[:20],
            "addresses": [{"source_ip": a.address, "events": a.events, "off_hours_events": a.off_hours,
                           "nights": a.off_hours_days, "first_seen": a.first_seen.isoformat(),
                           "last_seen": a.last_seen.isoformat()}
                          for a in sorted(use.addresses, key=lambda a: a.address)[:20]],
            "window": self.evidence["window"],
        }
        shared = f"; {len(others)} other account(s) use it at night too" if others else ""
        return self.finding(account, f"{since} ({days} days): {use.off_hours} accesses outside working hours on "
                                     f"{use.nights} nights from {network}, a network no other account uses in "
                                     f"working hours{shared}", evidence)


# --------------------------------------------------------------------------- change points


class ChangeParams(_HoursParams):
    min_score: float = Field(5.0, gt=0, description="Each of the two steps (patients, off-hours), in standard errors.")
    min_patients_increase: float = Field(8.0, ge=0, description="Distinct patients per day, after minus before.")
    min_off_hours_increase: float = Field(10.0, ge=0, description="Off-hours accesses per day, after minus before.")
    min_ratio: float = Field(1.25, ge=1, description="Both metrics at least this many times their level before.")
    max_peer_ratio: float = Field(
        1.25, ge=1, description="The peers' distinct patients per day rose less than this at the same date (more: the "
                                "whole establishment changed, e.g. a new screen logging every patient listed).")
    min_peers: int = Field(5, ge=1, description="Fewer accounts in the home network than this: the platform is the peer group.")
    prefix_v4: int = Field(24, ge=8, le=32, description="Network size that makes a home network (establishment).")
    prefix_v6: int = Field(48, ge=16, le=128)


class _PeerDays:
    """Per home network: the day-by-day totals of its accounts' distinct patients and how many were active."""

    def __init__(self, activity: DailyActivity, members: Iterable[str]) -> None:
        size = (activity.end - activity.start).days
        self.patients = [0] * size
        self.accounts = 0
        for account in members:
            rows = activity.accounts.get(account)
            if rows is None:
                continue
            self.accounts += 1
            for offset, patients in zip(rows.offsets, rows.patients):
                self.patients[offset] += patients

    def ratio(self, activity: DailyActivity, account: str, change: Change) -> tuple[float, float, float]:
        """The peers' distinct patients per account and day (the account itself left out), before and from
        the change day, and their ratio."""
        own = [0] * len(self.patients)
        rows = activity.accounts.get(account)
        if rows is not None:
            for offset, patients in zip(rows.offsets, rows.patients):
                own[offset] = patients
        first = (change.first_day - activity.start).days
        split = (change.day - activity.start).days
        before = [self.patients[i] - own[i] for i in range(first, split)]
        after = [self.patients[i] - own[i] for i in range(split, len(self.patients))]
        others = max(self.accounts - (1 if rows is not None else 0), 1)
        mean_before = sum(before) / len(before) / others if before else 0.0
        mean_after = sum(after) / len(after) / others if after else 0.0
        return mean_before, mean_after, mean_after / mean_before if mean_before else float("inf")


def _why_not(patients: bool, off_hours: bool, patients_stepped: bool, off_hours_stepped: bool) -> str:
    if off_hours or (off_hours_stepped and not patients_stepped):
        return "off-hours work rose, distinct patients did not (moved to nights?)"
    if patients or (patients_stepped and not off_hours_stepped):
        return "distinct patients rose, not at night"
    return "steps too small"


class BehaviourChange(AccessCheck):
    """The day an account's patients and off-hours work jumped together and stayed up, its peers unchanged."""

    name = "behaviour_change"
    parameters = ChangeParams

    def run(self) -> Iterable[Finding]:
        p = self.params
        hours = hours_for(self.ctx, p.working_hours, p.utc_offset_hours)
        activity = daily_activity(self.ctx, hours)
        found = addresses(self.ctx, hours)
        changes = activity.changes()
        homes = found.home_networks(p.prefix_v4, p.prefix_v6)
        members: dict[str, list[str]] = {}
        for account, network in homes.items():
            members.setdefault(network, []).append(account)
        groups: dict[str, _PeerDays] = {}
        platform: _PeerDays | None = None
        by_account = found.by_account()
        view: list[dict[str, Any]] = []
        self.evidence.update(window={"from": activity.start.isoformat(), "end": activity.end.isoformat()},
                             **hours.as_dict())
        for account, change in sorted(changes.items()):
            patients, off = change.shifts["patients"], change.shifts["off_hours"]
            rose_patients = patients.rose(min_score=p.min_score, min_increase=p.min_patients_increase,
                                          min_ratio=p.min_ratio)
            rose_off = off.rose(min_score=p.min_score, min_increase=p.min_off_hours_increase, min_ratio=p.min_ratio)
            entry: dict[str, Any] = {"account": account, **change.as_dict()}
            if not (rose_patients and rose_off):
                entry["flagged"] = False
                entry["why_not"] = _why_not(rose_patients, rose_off, patients.score >= p.min_score,
                                            off.score >= p.min_score)
                view.append(entry)
                continue
            home = homes.get(account)
            if home is not None and len(members.get(home, ())) > p.min_peers:
                if home not in groups:
                    groups[home] = _PeerDays(activity, members[home])
                peer_days, peer_name = groups[home], f"accounts of home network {home}"
            else:
                if platform is None:
                    platform = _PeerDays(activity, activity.accounts)
                peer_days, peer_name = platform, "all accounts of the platform"
            before, after, ratio = peer_days.ratio(activity, account, change)
            peers = {"group": peer_name, "accounts": peer_days.accounts - 1,
                     "patients_per_day_before": round(before, 1), "patients_per_day_after": round(after, 1),
                     "ratio": round(ratio, 2)}
            entry["peers"] = peers
            if ratio >= p.max_peer_ratio:
                entry["flagged"] = False
                entry["why_not"] = f"its peers changed too ({ratio:.2f}×): the establishment, not the account"
                view.append(entry)
                continue
            entry["flagged"] = True
            view.append(entry)
            yield self._finding(account, change, peers, by_account.get(account, []), activity.end)
        self.evidence.update(accounts=len(activity.accounts), accounts_with_a_change=len(changes),
                             changes=view[:CHANGES_IN_EVIDENCE],
                             changes_note="" if len(view) <= CHANGES_IN_EVIDENCE else
                             f"first {CHANGES_IN_EVIDENCE} of {len(view)} listed")
        self.evidence["queries"] = activity.queries + found.queries

    def _finding(self, account: str, change: Change, peers: dict[str, Any], uses: list[AddressUse],
                 end: date) -> Finding:
        patients, off = change.shifts["patients"], change.shifts["off_hours"]
        near = [u for u in uses if abs((u.first_seen.date() - change.day).days) <= 2]
        evidence = {
            "change": change.as_dict(), "started": change.day.isoformat(), "days_since": (end - change.day).days,
            "peers": peers,
            "addresses_first_used_near_the_change": [
                {"source_ip": u.address, "first_seen": u.first_seen.isoformat(), "events": u.events,
                 "off_hours_events": u.off_hours} for u in sorted(near, key=lambda u: (u.first_seen, u.address))[:10]],
            "window": self.evidence["window"],
        }
        new = f"; new address {near[0].address} from {near[0].first_seen:%Y-%m-%d}" if near else ""
        return self.finding(
            account,
            f"since {change.day} ({(end - change.day).days} days): {patients.before:.0f} → {patients.after:.0f} "
            f"distinct patients a day and {off.before:.0f} → {off.after:.0f} off-hours accesses a day "
            f"({patients.score:.0f} and {off.score:.0f} standard errors); its peers "
            f"{peers['patients_per_day_before']:.0f} → {peers['patients_per_day_after']:.0f}{new}", evidence)

