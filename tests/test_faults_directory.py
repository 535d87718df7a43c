"""The directory goes down in the middle of an incident; the responder runs the playbook again.

A 50-account credential-misuse run, with slapd stopped before, during and after the lock
step (and once only for a moment), and once with the run itself SIGKILLed mid-lock. Each
time: the run fails with a clear error (or retries through the blip), the journal says
which accounts were changed, and a re-run for the same incident finishes the rest with no
account changed twice (counted over the incident's whole journal).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.guardrails_testbed import (  # noqa: F401 - fixtures
    Testbed,
    applied_counts,
    approve,
    locked_uids,
    private_slapd,
    testbed,
)
from tourniquet.connectors.directory import ADMIN_LOCK, DirectoryClient
from tourniquet.engine.undo import undo_incident
from tourniquet.journal import index_of, verify_chain

pytestmark = pytest.mark.usefixtures("each_transport")

ROOT = Path(__file__).resolve().parents[1]
ACCOUNTS = 50


def _fast_retries(testbed: Testbed) -> Path:
    """The playbook as shipped, with retries 0.05 s apart so the test does not wait on real back-off."""
    fast = {"retries": 2, "retry_delay": 0.05}
    return testbed.playbook(steps={"scramble": fast, "lock": fast, "reset": fast})


def _journal_view(records: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
    """(locks the journal says were applied, locks sent but not confirmed before the failure)."""
    applied = set(applied_counts(records, "lock"))
    uncertain = {target for (_, target, operation, _) in index_of(records).unconfirmed if operation == "lock"}
    return applied, uncertain


def _assert_rerun_completes_without_repeats(testbed: Testbed, incident: str, playbook: Path) -> None:
    people = testbed.people[:ACCOUNTS]
    second = testbed.run([p.uid for p in people], playbook=playbook, incident=incident, approver=approve)

    assert second.status == "completed", second.error
    records = testbed.journal(incident)
    # the scramble set pwdReset already (pwdMustChange), so the reset step is a no-op
    for operation in ("scramble_password", "lock"):
        counts = applied_counts(records, operation)
        assert counts == {p.uid: 1 for p in people}, f"{operation}: each account changed exactly once"
    assert locked_uids(testbed) == {p.uid for p in people}
    assert verify_chain(testbed.tmp_path / "evidence" / incident / "journal.jsonl") == len(records)


def stop_slapd_after_locks(monkeypatch: pytest.MonkeyPatch, testbed: Testbed, locks: int) -> None:
    """Fault injector: the directory goes down right after the ``locks``-th lock reached it."""
    original, count, guard = DirectoryClient.apply, [0], threading.Lock()

    def apply(self: DirectoryClient, dn: str, current: dict, wanted: dict) -> None:
        original(self, dn, current, wanted)
        if wanted.get("pwdAccountLockedTime") == [ADMIN_LOCK]:
            with guard:
                count[0] += 1
                if count[0] == locks:
                    testbed.slapd.stop()

    monkeypatch.setattr(DirectoryClient, "apply", apply)


@pytest.mark.slow
@pytest.mark.parametrize("when", ["before", "during", "after"])
def test_directory_down_around_the_lock_step_then_rerun(
    testbed: Testbed, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    playbook = _fast_retries(testbed)
    incident = f"inc-fault-{when}"
    people = testbed.people[:ACCOUNTS]

    def on_step(step: str, status: str) -> None:
        if (when, step, status) in (("before", "scramble", "completed"), ("after", "lock", "completed")):
            testbed.slapd.stop()

    if when == "during":
        stop_slapd_after_locks(monkeypatch, testbed, 20)

    first = testbed.run([p.uid for p in people], playbook=playbook, incident=incident, approver=approve,
                        on_step=on_step)

    assert first.status == "failed"
    failing = "reset" if when == "after" else "lock"
    assert first.error and first.error.startswith(f"step {failing} failed for ")
    assert "directory unreachable" in first.error
    testbed.slapd.start()
    monkeypatch.undo()
    applied, uncertain = _journal_view(testbed.journal(incident))
    locked = locked_uids(testbed)
    assert applied <= locked <= applied | uncertain, "the journal names every account that may have changed"
    expected_locked = {"before": 0, "during": 20, "after": ACCOUNTS}[when]
    assert len(applied) >= (expected_locked if when != "during" else 1)
    assert len(locked) >= expected_locked and (when != "before" or not locked)
    if when == "after":
        assert applied == {p.uid for p in people}
        assert not applied_counts(testbed.journal(incident), "force_password_reset")

    _assert_rerun_completes_without_repeats(testbed, incident, playbook)


@pytest.mark.slow
def test_a_short_directory_outage_is_retried_through(testbed: Testbed, monkeypatch: pytest.MonkeyPatch) -> None:
    playbook = testbed.playbook(steps={"lock": {"retries": 3, "retry_delay": 1.0}})
    original, count, guard = DirectoryClient.apply, [0], threading.Lock()

    def apply(self: DirectoryClient, dn: str, current: dict, wanted: dict) -> None:
        original(self, dn, current, wanted)
        if wanted.get("pwdAccountLockedTime") == [ADMIN_LOCK]:
            with guard:
                count[0] += 1
                if count[0] == 10:
                    testbed.slapd.stop()
                    threading.Timer(0.3, testbed.slapd.start).start()

    monkeypatch.setattr(DirectoryClient, "apply", apply)
    people = testbed.people[:ACCOUNTS]

    summary = testbed.run([p.uid for p in people], playbook=playbook, approver=approve)

    assert summary.status == "completed", summary.error
    assert applied_counts(testbed.journal(summary.incident), "lock") == {p.uid: 1 for p in people}
    assert locked_uids(testbed) == {p.uid for p in people}


_KILLED_RUN = textwrap.dedent("""
    import sys, threading, time
    from pathlib import Path
    from tourniquet.config import load_site
    from tourniquet.connectors.directory import ADMIN_LOCK, DirectoryClient
    from tourniquet.engine.run import ApprovalDecision, PlaybookRun
    from tourniquet.engine.loader import load_playbook
    from tourniquet.site import Site

    site_file, playbook, incident, marker, *accounts = sys.argv[1:]
    original, count, guard = DirectoryClient.apply, [0], threading.Lock()

    def apply(self, dn, current, wanted):
        if wanted.get("pwdAccountLockedTime") != [ADMIN_LOCK]:
            return original(self, dn, current, wanted)
        with guard:
            count[0] += 1
            mine = count[0]
        if mine > 20:
            time.sleep(3600)          # held before sending: these were never changed
        original(self, dn, current, wanted)
        if mine == 20:                # sent, not yet journaled: the worst moment to die
            Path(marker).write_text(dn)
            time.sleep(3600)

    DirectoryClient.apply = apply
    approve = lambda request: ApprovalDecision(True, "incident-lead", "ok")
    run = PlaybookRun(load_playbook(playbook), {"accounts": accounts}, Site(load_site(site_file)),
                      incident=incident, approver=approve)
    run.execute()
""")


@pytest.mark.slow
def test_a_run_killed_mid_lock_resumes_without_repeating_changes_and_undoes_exactly(testbed: Testbed) -> None:
    people = testbed.people[:ACCOUNTS]
    playbook = _fast_retries(testbed)
    incident = "inc-killed"
    marker = testbed.tmp_path / "sent-20th-lock"
    script = testbed.tmp_path / "killed_run.py"
    script.write_text(_KILLED_RUN)
    process = subprocess.Popen(
        [sys.executable, str(script), str(testbed.site_file), str(playbook), incident, str(marker),
         *[p.uid for p in people]],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert process.poll() is None, f"the run ended early: {process.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, "the run never reached the 20th lock"
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(30)
        process.stderr.close()

    locked = locked_uids(testbed)
    assert len(locked) == 20
    applied, uncertain = _journal_view(testbed.journal(incident))
    assert applied <= locked <= applied | uncertain
    assert locked - applied, "the 20th lock was sent but not journaled when the process died"

    _assert_rerun_completes_without_repeats(testbed, incident, playbook)
    recovered = [r for r in testbed.journal(incident) if r.get("recovered")]
    assert {r["target"] for r in recovered} == locked - applied

    site = testbed.site()
    try:
        result = undo_incident(incident, site)
    finally:
        site.close()
    assert {r["status"] for r in result} == {"done"}
    assert len([r for r in result if r["action"].startswith("directory.")]) == ACCOUNTS  # the locks
    password = {"userPassword", "pwdChangedTime", "pwdReset"}  # the stolen password never comes back
    assert all(set(attributes) <= password for attributes in testbed.changed().values()), testbed.changed()
    assert len(testbed.changed()) == ACCOUNTS, "undo returns every entry to its prior state but the password"


@pytest.mark.slow
def test_directory_down_during_the_lock_step_of_a_prefect_run_then_rerun(
    prefect_harness: None, testbed: Testbed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same fault through the Prefect flow (one task run per account, Prefect's own retries)."""
    from tourniquet.flows.respond import RunFailed, run_playbook

    people = testbed.people[:20]  # at the playbook's limit: no approval needed
    playbook = _fast_retries(testbed)
    stop_slapd_after_locks(monkeypatch, testbed, 8)
    arguments = dict(playbook=str(playbook), inputs={"accounts": [p.uid for p in people]},
                     incident="inc-fault-prefect", site=str(testbed.site_file))

    state = run_playbook(**arguments, return_state=True)

    with pytest.raises(RunFailed, match="step lock failed for .* directory unreachable"):
        state.result()
    testbed.slapd.start()
    monkeypatch.undo()
    applied, uncertain = _journal_view(testbed.journal("inc-fault-prefect"))
    assert applied <= locked_uids(testbed) <= applied | uncertain and len(applied) >= 8

    result = run_playbook(**arguments)

    assert result["status"] == "completed"
    records = testbed.journal("inc-fault-prefect")
    for operation in ("scramble_password", "lock"):
        assert applied_counts(records, operation) == {p.uid: 1 for p in people}, operation
    assert locked_uids(testbed) == {p.uid for p in people}
