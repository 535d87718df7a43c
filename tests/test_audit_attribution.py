"""Which accesses fit the owner's own history, and when the ones that do not began.

Small cases a responder would recognise: a day worker who stays late once, a night-shift nurse at 3 am,
an owner working from a new workstation in their hospital's network, an attacker on a new network, a
login from nowhere; an owner's odd evening alone is not an attack, weeks of low-and-slow scraping and one
day of mass scraping are. The start is decided in one place (``attack_start``), from daily aggregates.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tourniquet.attribution import (
    AttributionSettings,
    Cell,
    DayCount,
    Detector,
    Profile,
    attack_start,
    is_anomalous,
    network_of,
)

S = AttributionSettings()
HOSPITAL = "10.10.4.0/24"
TOR = "185.220.101.0/24"


def day_worker() -> Profile:
    profile = Profile(S)
    for hour in range(8, 18):
        profile.add(HOSPITAL, hour, 40)
    return profile


def night_nurse() -> Profile:
    profile = Profile(S)
    for hour in (20, 21, 22, 23, 0, 1, 2, 3, 4, 5):
        profile.add(HOSPITAL, hour, 30)
    return profile


@pytest.mark.parametrize("address, network", [
    ("10.1.2.3", "10.1.2.0/24"), ("2001:db8:1:2::5", "2001:db8:1::/48"), (" 10.1.2.3 ", "10.1.2.0/24"),
    ("not an address", "not an address"), (None, None), ("", None),
])
def test_addresses_are_grouped_by_network(address: str | None, network: str | None) -> None:
    assert network_of(address, S) == network


@pytest.mark.parametrize("profile, network, hour, known, anomalous", [
    (day_worker(), HOSPITAL, 10, False, False),   # a new patient at work: every day
    (day_worker(), HOSPITAL, 18, False, False),   # staying an hour late: tolerated
    (day_worker(), HOSPITAL, 3, True, False),     # 3 am on a patient of the caseload: one sign
    (day_worker(), HOSPITAL, 3, False, True),     # 3 am on a new patient: two signs
    (day_worker(), TOR, 10, False, True),         # a new network on a new patient
    (day_worker(), TOR, 10, True, False),         # a new network on a known patient: one sign
    (night_nurse(), HOSPITAL, 3, False, False),   # the night shift's 3 am is usual
    (night_nurse(), HOSPITAL, 12, False, True),   # its noon is not
    (day_worker(), TOR, 10, None, True),          # a login from a new network
    (day_worker(), HOSPITAL, 2, None, True),      # a login at 2 am
    (day_worker(), HOSPITAL, 9, None, False),     # a login as every morning
    (Profile(S), HOSPITAL, 10, True, True),       # no history at all: nothing vouches for it
    (None, HOSPITAL, 10, True, True),
])
def test_two_signs_make_an_access_anomalous(profile: Profile | None, network: str, hour: int, known: bool | None,
                                            anomalous: bool) -> None:
    assert is_anomalous(profile, network, hour, known) is anomalous


D0 = date(2025, 6, 1)


def days(counts: dict[int, int], total: int = 40) -> list[DayCount]:
    """Day offsets → anomalous accesses that day (first at 01:00), over 60 days of work."""
    return [DayCount(D0 + timedelta(days=n), total, counts.get(n, 0),
                     datetime(2025, 6, 1, 1, tzinfo=timezone.utc) + timedelta(days=n) if counts.get(n) else None)
            for n in range(60)]


@pytest.mark.parametrize("counts, start", [
    ({}, None),
    ({20: 7}, None),                                             # an odd evening at home, alone
    ({20: 7, 41: 5}, None),                                      # two of them, weeks apart
    ({30: 12, 31: 20, 33: 25, 34: 18, 36: 30}, 30),              # low and slow from day 30
    ({29: 1, 30: 12, 31: 20, 33: 25}, 29),                       # its first quiet day is the start
    ({40: 1000}, 40),                                            # one day of mass scraping
    ({20: 7, 32: 1000, 34: 6, 40: 5}, 32),                       # an odd evening twelve days before is not it
    ({10: 4, 11: 4, 12: 4}, 10),                                 # persistence at the threshold
])
def test_attack_start_is_decided_from_daily_counts(counts: dict[int, int], start: int | None) -> None:
    found = attack_start(days(counts), S)
    assert (found.day if found else None) == (D0 + timedelta(days=start) if start is not None else None)


def cell(network: str, hour: int, new: bool | None, events: int = 5) -> Cell:
    return Cell(network, hour, new, events, datetime(2025, 6, 1, hour, tzinfo=timezone.utc))


def test_the_daily_walk_learns_a_new_workstation_network_but_never_the_attackers() -> None:
    detector = Detector(S)
    for n in range(S.warmup_days):
        detector.day(D0 + timedelta(days=n), [cell(HOSPITAL, 9, False, 20), cell(HOSPITAL, 14, True, 5)])
    new_office = "10.10.9.0/24"
    for n in range(S.warmup_days, S.warmup_days + 3):  # the new workstation, on the caseload, at work
        detector.day(D0 + timedelta(days=n), [cell(new_office, 10, False, 10)])
    assert new_office in detector.profile.networks
    for n in range(S.warmup_days + 3, S.warmup_days + 20):
        counted = detector.day(D0 + timedelta(days=n), [cell(TOR, 2, True, 30), cell(new_office, 10, True, 4)])
        assert counted.anomalous == 30, "the attacker's accesses, not the owner's new patients"
    assert TOR not in detector.profile.networks


@given(st.lists(st.integers(min_value=0, max_value=200), min_size=0, max_size=90))
@settings(max_examples=200, deadline=None)
def test_attack_start_is_a_day_that_had_anomalous_accesses(counts: list[int]) -> None:
    series = days(dict(enumerate(counts)))
    found = attack_start(series, S)
    if found is not None:
        assert found.anomalous > 0 and found.first_anomalous is not None
        assert any(d.anomalous >= S.min_daily for d in series if d.day >= found.day)
