"""Two runs never change the same account at the same time.

Scenario: two alerts about the same practitioner start two runs within a second. A run holds the
slots of the accounts it changes (:mod:`tourniquet.engine.locks`), so the second run's change waits
for the first run to finish: their changes follow each other, never overlap.
A control run without the lock shows that the same scenario does overlap, so the test can tell.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
import yaml
from pydantic import BaseModel, Field

from tourniquet import registry
from tourniquet.actions.context import ActionContext
from tourniquet.engine.locks import AccountLocks
from tourniquet.flows import respond

EVENTS: list[tuple[str, str]] = []
#: How long a change waits for the other run's change to start (the control waits longer: under load
#: two flow runs can start seconds apart).
WAIT_FOR_OTHER = {"seconds": 3.0}
_events_guard = threading.Lock()


class MarkResult(BaseModel):
    account: str


def slow_mark(ctx: ActionContext, account: Annotated[str, Field(description="Account to mark.")]) -> MarkResult:
    """Test action: a change that lasts until the other run's change has started too (or a few seconds)."""

    def mark() -> None:
        with _events_guard:
            EVENTS.append(("start", ctx.incident))
        end = time.monotonic() + WAIT_FOR_OTHER["seconds"]
        while time.monotonic() < end:
            with _events_guard:
                if sum(kind == "start" for kind, _ in EVENTS) >= 2:
                    break
            time.sleep(0.05)
        with _events_guard:
            EVENTS.append(("end", ctx.incident))

    ctx.change(system="testing", target=account, operation="mark", before={"marked": False}, after={"marked": True},
               apply=mark)
    return MarkResult(account=account)


@pytest.fixture
def slow_action() -> Iterator[None]:
    registry.action("testing.slow_mark", changes=True, target="account")(slow_mark)
    EVENTS.clear()
    yield
    registry._REGISTRY.pop("testing.slow_mark", None)


def _playbook(tmp_path: Path) -> Path:
    path = tmp_path / "slow.yaml"
    path.write_text(yaml.safe_dump({
        "playbook": "slow-change", "version": 1, "title": "One slow change per account",
        "inputs": {"accounts": {"type": "list[str]"}},
        "steps": [{"id": "mark", "action": "testing.slow_mark", "for_each": "${{ inputs.accounts }}",
                   "with": {"account": "${{ item }}"}, "timeout": 60}],
    }))
    return path


def _two_runs_at_once(playbook: Path, site_file: Path) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []

    def run(incident: str) -> None:
        results.append(respond.run_playbook(str(playbook), {"accounts": ["jdupont"]}, incident=incident,
                                            site=str(site_file)))

    threads = [threading.Thread(target=run, args=(name,)) for name in ("inc-first-alert", "inc-second-alert")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def _overlaps(events: list[tuple[str, str]]) -> bool:
    """True when a change started while another one was still running."""
    running = 0
    for kind, _ in events:
        running += 1 if kind == "start" else -1
        if running > 1:
            return True
    return False


def test_two_runs_on_the_same_account_take_turns(
    prefect_harness: None, slow_action: None, tmp_path: Path, site_file: Path
) -> None:
    results = _two_runs_at_once(_playbook(tmp_path), site_file)

    assert [r["status"] for r in results] == ["completed", "completed"]
    assert len(EVENTS) == 4
    assert not _overlaps(EVENTS), EVENTS
    assert EVENTS[0][1] == EVENTS[1][1] and EVENTS[2][1] == EVENTS[3][1] != EVENTS[0][1]


def test_without_the_lock_the_same_scenario_interleaves(
    prefect_harness: None, slow_action: None, tmp_path: Path, site_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(AccountLocks, "ensure", lambda *a, **k: None)
    monkeypatch.setitem(WAIT_FOR_OTHER, "seconds", 30.0)

    _two_runs_at_once(_playbook(tmp_path), site_file)

    assert _overlaps(EVENTS), "control: without the lock the two changes must overlap, else the test proves nothing"
