"""The change-point view: the day an account's behaviour stepped up, with the numbers behind it.

Pure functions, so the series are written by hand or drawn by hypothesis; the last test checks that
an event stream folded by :func:`fold_events` (what the data scope's ``since: auto`` can use) gives
the same days, and the same change, as the hygiene checks' ``GROUP BY`` query.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.testbed.hygiene_data import ATTACKS, build_scenario, write_access_log
from tourniquet.changepoint import Day, calendar, find_change, fold_events
from tourniquet.config import SiteConfig
from tourniquet.connectors.audit import AuditConfig
from tourniquet.hygiene.checks.activity import Hours, daily_activity
from tourniquet.hygiene.checks.base import HygieneContext
from tourniquet.site import Site

END = date(2026, 11, 28)


def _series(days: int, rng: random.Random, *, step_at: int | None = None, weekends: bool = False,
            patients: float = 12.0, extra: tuple[int, int] = (15, 40)) -> list[Day]:
    """A day worker's days (a few evening accesses), and from ``step_at`` days before the end an intruder's nights."""
    out = []
    for back in range(days, 0, -1):
        day = END - timedelta(days=back)
        seen = max(0, int(rng.gauss(patients, patients ** 0.5))) if weekends or day.weekday() < 5 else 0
        events = seen * 2
        off = sum(rng.random() < 0.02 for _ in range(events))
        if step_at is not None and back <= step_at:
            taken = rng.randint(*extra)
            seen, events, off = seen + taken, events + 2 * taken, off + 2 * taken
        out.append(Day(day, events, seen, off))
    return out


@pytest.mark.parametrize("age", [3, 10, 30, 45, 60, 75])
def test_a_step_is_dated_to_its_first_day(age: int) -> None:
    rng = random.Random(age)
    change = find_change(_series(90, rng, step_at=age), end=END)
    assert change is not None
    assert change.day == END - timedelta(days=age)
    assert change.days_after == age and change.days_before == (change.day - change.first_day).days >= 14
    assert change.shifts["off_hours"].before < 1 and change.shifts["off_hours"].after > 30
    assert change.shifts["patients"].ratio > 2 and change.score > 5


def test_no_change_in_a_steady_account() -> None:
    false_alarms = [s for s in range(300) if find_change(_series(90, random.Random(s)), end=END, min_score=5)]
    assert false_alarms == []


def test_a_holiday_and_the_return_from_it_are_not_a_step_up() -> None:
    rng = random.Random(7)
    days = [d if not (END - timedelta(days=40) <= d.day < END - timedelta(days=26)) else Day(d.day)
            for d in _series(90, rng)]
    assert find_change(days, end=END, min_score=5) is None


def test_too_short_a_history_has_no_change() -> None:
    rng = random.Random(3)
    assert find_change(_series(15, rng, step_at=5), end=END) is None  # 10 days before: fewer than 14
    assert find_change([], end=END) is None


def test_a_skipped_night_early_on_does_not_move_the_start() -> None:
    rng = random.Random(11)
    days = _series(90, rng, step_at=10)
    skipped = END - timedelta(days=8)
    days = [Day(d.day, 20, 10, 0) if d.day == skipped else d for d in days]
    change = find_change(days, end=END)
    assert change is not None and change.day == END - timedelta(days=10)


def test_unknown_metrics_are_refused() -> None:
    with pytest.raises(ValueError, match="metrics"):
        find_change([], end=END, metrics=("nights",))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 120), st.integers(0, 500), st.integers(0, 300), st.integers(0, 500)),
                max_size=150),
       st.integers(1, 30), st.integers(1, 10))
def test_any_days_give_a_change_inside_the_series_or_none(rows: list[tuple[int, int, int, int]], min_before: int,
                                                           min_after: int) -> None:
    days = [Day(END - timedelta(days=back + 1), e, p, o) for back, e, p, o in rows]
    change = find_change(days, end=END, min_before=min_before, min_after=min_after, metrics=("events", "patients",
                                                                                             "off_hours"))
    series = calendar(days, END)
    if change is None:
        return
    assert series[0].day == change.first_day <= change.day <= change.last_day == END - timedelta(days=1)
    assert change.days_before >= min_before and change.days_after >= min_after
    assert change.score > 0 and set(change.shifts) == {"events", "patients", "off_hours"}


def test_folded_events_give_the_days_and_the_change_of_the_group_by(tmp_path: Path) -> None:
    scenario = build_scenario(30, days=70, seed=2, plants={}, attacks=ATTACKS[:2], activity=0.5)
    write_access_log(scenario, tmp_path / "audit.sqlite", seed=4)
    site = Site(SiteConfig(site="t", state_dir=tmp_path / "state", evidence_dir=tmp_path / "evidence",
                           audit=AuditConfig(kind="sqlite", path=str(tmp_path / "audit.sqlite")),  # type: ignore[call-arg]
                           directory={"url": "ldap://127.0.0.1:9", "allow_plaintext": True, "bind_dn": "cn=x",
                                      "bind_password": {"env": "UNUSED"}, "base_dn": "ou=people,dc=x"}))
    ctx = HygieneContext(site, scenario.as_of, tmp_path)
    activity = daily_activity(ctx, Hours((7, 20), 1))
    connection = sqlite3.connect(tmp_path / "audit.sqlite")
    for uid, attack in scenario.attacks.items():
        events = [(datetime.fromisoformat(ts).replace(tzinfo=timezone.utc), patient) for ts, patient in
                  connection.execute("SELECT ts, patient_id FROM access_log WHERE account = ? ORDER BY ts", (uid,))]
        folded = fold_events(events, working_hours=(7, 20), utc_offset_hours=1)
        assert folded == activity.days(uid)
        from_events, from_sql = find_change(folded, end=scenario.as_of.date()), activity.changes()[uid]
        assert from_events == from_sql and from_sql.day == attack.start
    connection.close()
    ctx.close()
