"""What a person reading the logs sees: one readable line per event, JSON only when asked, once per sink.

Scenario: a responder (or the worker's journald) reads the events of a containment. Each line says
when, how bad, which incident, which step, which account, and what happened. A log shipper asks
for JSON and gets one object per line. An expected error (an unknown account) is one line, not a
traceback; a real bug keeps its traceback. Prefect's console never prints our events a second time.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
import structlog

from tourniquet.errors import AccountNotFound
from tourniquet.logs import ExpectedErrorFilter, configure_logging, render_message

LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \| (INFO|WARNING|ERROR) +\| \[(?P<context>[^\]]*)\] (?P<event>\S+)(?P<rest>.*)$")


@pytest.fixture
def text_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Text lines at INFO on stdout for this test, whatever an earlier test configured."""
    monkeypatch.delenv("TOURNIQUET_LOG_FORMAT", raising=False)
    monkeypatch.delenv("TOURNIQUET_LOG_LEVEL", raising=False)
    configure_logging(logging.INFO, json=False)
    yield
    configure_logging(logging.INFO, json=False)


def _emit_lock_events() -> None:
    log = structlog.get_logger("tourniquet")
    with structlog.contextvars.bound_contextvars(incident="inc-20261201-624586d0", playbook="credential-misuse",
                                                 step="lock", dry_run=False):
        log.info("change.applied", account="jdupont", operation="lock",
                 before={"pwdAccountLockedTime": []}, after={"pwdAccountLockedTime": ["000001010000Z"]})
        log.warning("account.protected", account="breakglass-admin", pattern="uid=breakglass-*")


def test_each_event_is_one_readable_line_with_time_level_incident_step_account(
    text_logs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    _emit_lock_events()

    lines = capsys.readouterr().out.splitlines()
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert [(m["context"], m["event"]) for m in parsed if m] == [
        ("inc-20261201-624586d0 lock jdupont", "change.applied"),
        ("inc-20261201-624586d0 lock breakglass-admin", "account.protected"),
    ]
    assert 'after={"pwdAccountLockedTime": ["000001010000Z"]}' in lines[0] and "operation=lock" in lines[0]
    assert 'pattern="uid=breakglass-*"' in lines[1]


def test_json_lines_when_asked(text_logs: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True)
    _emit_lock_events()

    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["event"], e["level"], e["incident"], e["step"], e["account"]) for e in events] == [
        ("change.applied", "info", "inc-20261201-624586d0", "lock", "jdupont"),
        ("account.protected", "warning", "inc-20261201-624586d0", "lock", "breakglass-admin"),
    ]
    assert events[0]["after"] == {"pwdAccountLockedTime": ["000001010000Z"]} and events[0]["timestamp"].endswith("Z")


def test_the_printed_level_is_honoured(text_logs: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(logging.WARNING)
    _emit_lock_events()

    out = capsys.readouterr().out
    assert "account.protected" in out and "change.applied" not in out


def test_settings_come_from_the_environment_and_a_bad_one_is_named_not_fatal() -> None:
    """A worker's process reads TOURNIQUET_LOG_FORMAT / _LEVEL when it first logs (a fresh process here)."""
    script = ("import structlog; from tourniquet.logs import configure_logging; configure_logging(); "
              "log = structlog.get_logger('tourniquet'); log.info('run.started'); log.warning('account.protected')")

    def run(**env: str) -> list[str]:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "TOURNIQUET_LOG_FORMAT": "", "TOURNIQUET_LOG_LEVEL": "", **env})
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    as_json = run(TOURNIQUET_LOG_FORMAT="json", TOURNIQUET_LOG_LEVEL="warning")
    assert [json.loads(line)["event"] for line in as_json] == ["account.protected"]
    bad = run(TOURNIQUET_LOG_FORMAT="xml", TOURNIQUET_LOG_LEVEL="LOUD")
    assert [line.split(" | ")[2].split()[0] for line in bad] == [
        "logging.setting_ignored", "logging.setting_ignored", "run.started", "account.protected"], bad
    assert "TOURNIQUET_LOG_FORMAT='xml'" in bad[0] + bad[1] and "TOURNIQUET_LOG_LEVEL='LOUD'" in bad[0] + bad[1]


def test_an_expected_error_is_one_line_a_bug_keeps_its_traceback(text_logs: None,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    log = structlog.get_logger("tourniquet")
    try:
        raise AccountNotFound("no account matches 'nosuchuser'", system="directory")
    except AccountNotFound:
        log.exception("resolve.failed")
    try:
        {}["missing"]
    except KeyError:
        log.exception("bug")

    out = capsys.readouterr().out
    expected, bug = out.split("bug", 1)
    assert "Traceback" not in expected and "AccountNotFound: directory: no account matches 'nosuchuser'" in expected
    assert "Traceback (most recent call last)" in bug and "KeyError: 'missing'" in bug


def test_prefect_task_records_lose_the_traceback_of_an_expected_error_only() -> None:
    def record(error: BaseException) -> logging.LogRecord:
        try:
            raise error
        except BaseException as exc:
            return logging.LogRecord("prefect.task_runs", logging.ERROR, __file__, 1,
                                     "Task run failed with exception: %r - Retries are exhausted", (exc,),
                                     (type(exc), exc, exc.__traceback__))

    expected, bug = record(AccountNotFound("no account 'x'")), record(ZeroDivisionError("bug"))
    ExpectedErrorFilter().filter(expected)
    ExpectedErrorFilter().filter(bug)

    assert expected.exc_info is None and "AccountNotFound" in expected.getMessage()
    assert bug.exc_info is not None


def test_prefect_console_does_not_print_our_events_again(text_logs: None) -> None:
    from prefect.logging.handlers import PrefectConsoleHandler

    consoles = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    ours = logging.LogRecord("tourniquet", logging.WARNING, __file__, 1, "account.protected", (), None)
    theirs = logging.LogRecord("prefect.flow_runs", logging.WARNING, __file__, 1, "Pausing flow", (), None)

    assert consoles, "Prefect's logging is set up by configure_logging"
    assert all(not h.filter(ours) and h.filter(theirs) for h in consoles)


def test_message_shows_dry_run_and_the_item_when_there_is_no_account() -> None:
    line = render_message({"event": "step.retry", "incident": "inc-1", "step": "ticket", "dry_run": True,
                           "item": "ticket", "attempt": 2, "error": "rt: 503 Service Unavailable", "level": "warning"})
    assert line == '[inc-1 DRY-RUN ticket ticket] step.retry attempt=2 error="rt: 503 Service Unavailable"'
