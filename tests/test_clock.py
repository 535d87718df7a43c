"""The Art. 33 clock folded from records: awareness, deadline, reminders due, late and filed states. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from tourniquet.clock import ART33_DELAY, clock_of

AWARE = datetime(2026, 3, 28, 23, 30, tzinfo=timezone.utc)  # the night clocks change in Paris


def records(*extra: dict) -> list[dict]:
    return [{"type": "run", "status": "started", "time": AWARE.isoformat(), "inputs": {}},
            {"type": "scope", "time": (AWARE + timedelta(minutes=5)).isoformat()}, *extra]


def test_the_deadline_is_72_hours_after_the_first_plan_or_run_shown_in_paris_time() -> None:
    clock = clock_of("inc-1", records())
    assert clock.awareness == AWARE and clock.awareness_source == "first plan or run"
    assert clock.deadline == AWARE + ART33_DELAY
    assert "deadline 2026-04-01 01:30 CEST" in clock.describe(AWARE), "72 h later, across the change to summer time"


def test_the_alert_s_time_or_a_recorded_awareness_comes_first() -> None:
    alert = AWARE - timedelta(hours=5)
    started = {"type": "run", "status": "started", "time": AWARE.isoformat(), "inputs": {"alert_time": alert.isoformat()}}
    assert clock_of("inc", [started]).awareness == alert
    recorded = {"type": "awareness", "time": AWARE.isoformat(), "at": (AWARE - timedelta(days=1)).isoformat()}
    assert clock_of("inc", [started, recorded]).awareness_source == "recorded"
    hostile = {"type": "run", "status": "started", "time": AWARE.isoformat(), "inputs": {"alert_time": "soon"}}
    assert clock_of("inc", [hostile]).awareness == AWARE, "an alert time that is not one is ignored"


def test_reminders_are_due_at_48_and_70_hours_then_late_and_never_after_a_filing() -> None:
    clock = clock_of("inc", records())
    assert clock.due(AWARE + timedelta(hours=47)) == []
    assert clock.due(AWARE + timedelta(hours=48)) == ["48h"]
    sent = {"type": "notification", "once": "48h", "status": "sent", "time": AWARE.isoformat()}
    assert clock_of("inc", records(sent)).due(AWARE + timedelta(hours=60)) == []
    assert clock_of("inc", records(sent)).due(AWARE + timedelta(hours=71)) == ["70h"]
    assert clock.due(AWARE + timedelta(hours=80)) == ["late"], "the flow was down: only the latest, once"
    assert clock.state(AWARE + timedelta(hours=80)) == "late"
    filed = {"type": "filing", "authority": "cnil", "reference": "C-1", "by": "dpo", "time": AWARE.isoformat(),
             "at": (AWARE + timedelta(hours=75)).isoformat()}
    late_filed = clock_of("inc", records(filed))
    assert late_filed.due(AWARE + timedelta(hours=90)) == [] and late_filed.state(AWARE) == "filed late"
    assert clock_of("inc", records()[:1]).due(AWARE + timedelta(hours=90)) == [], "no scope frozen: no reminder"


@given(st.lists(st.sampled_from(["48h", "70h", "late"]), max_size=3), st.integers(min_value=0, max_value=200))
def test_a_reminder_already_sent_is_never_due_again(sent: list[str], hours: int) -> None:
    extra = [{"type": "notification", "once": key, "status": "sent", "time": AWARE.isoformat()} for key in sent]
    due = clock_of("inc", records(*extra)).due(AWARE + timedelta(hours=hours))
    assert not set(due) & set(sent) and len(due) <= 1
