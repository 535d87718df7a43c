"""Runs a responder can tell apart in the Prefect UI, and input that forgives — read through the Prefect API.

Scenario: the on-call pastes three suspected accounts into the ``respond`` form as one block of
text and plans first; then contains. In the runs list the plan is ``<incident>-DRY-RUN``
tagged ``dry-run``, the containment ``<incident>-contain`` tagged ``live``. A mistyped uid,
or an alert with no accounts, ends in a Failed run whose state message says what was wrong.
A run over the account limit pauses with a message saying what is asked and why, and is
approved by its name. A dry run's task reads "Planned", not "Completed".
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import yaml
from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, TaskRunFilter, TaskRunFilterFlowRunId

from tests.helpers import bind_result
from tourniquet.actions.context import PlannedChange
from tourniquet.cli.main import main
from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import Slapd
from tourniquet.flows.respond import respond
from tourniquet.flows.states import state_for

REPO = Path(__file__).resolve().parents[1]


def _flow_run(state: Any) -> Any:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(state.state_details.flow_run_id)


def test_a_plan_and_a_containment_are_named_and_tagged_apart_and_text_accounts_work(
    prefect_harness: None, site_file: Path, slapd: Slapd, practitioners: Directory
) -> None:
    a, b, c = (practitioners.practitioners[i] for i in (44, 45, 46))
    pasted = f"{a.uid}\n{b.rpps}, {c.mail}\n"

    plan = respond(accounts=pasted, reason="ARS call", site=str(site_file), return_state=True)
    contain = respond(accounts=pasted, reason="ARS call", dry_run=False, site=str(site_file), return_state=True)

    planned, contained = plan.result(), contain.result()
    assert planned["status"] == "planned" and contained["status"] == "completed"
    assert planned["incident"] == contained["incident"], "same accounts, same day: one incident"
    incident = contained["incident"]
    plan_run, contain_run = _flow_run(plan), _flow_run(contain)
    assert (plan_run.name, "dry-run" in plan_run.tags, "live" in plan_run.tags) == (f"{incident}-DRY-RUN", True, False)
    assert (contain_run.name, "live" in contain_run.tags) == (f"{incident}-contain", True)
    for person in (a, b, c):
        assert bind_result(slapd, person.dn, person.password) == "invalidCredentials"


def test_an_unknown_uid_beside_a_known_one_is_a_partial_containment_saying_which(
    prefect_harness: None, site_file: Path, practitioners: Directory
) -> None:
    known = practitioners.practitioners[47].uid

    state = respond(accounts=["nosuchuser-17", known], dry_run=False, site=str(site_file), return_state=True)

    run = _flow_run(state)
    assert (run.state.type.value, run.state.name) == ("COMPLETED", "Partially contained"), "neither failed nor done"
    assert run.state.message == "1 of 2 contained; refused: nosuchuser-17 (no such account)", run.state.message
    assert "Traceback" not in (run.state.message or "")


@pytest.mark.parametrize("accounts, said", [
    ("null", "no accounts were given"),         # what the trigger renders for an alert without "accounts"
    ('{"uid": "x"}', "not an object"),
])
def test_a_malformed_alert_is_a_failed_run_saying_what_was_wrong(
    prefect_harness: None, site_file: Path, accounts: str, said: str
) -> None:
    state = respond(accounts=accounts, reason="alert.siem.9: scraping", site=str(site_file), return_state=True)

    run = _flow_run(state)
    assert run.state.type.value == "FAILED" and said in (run.state.message or ""), run.state.message
    assert run.name == "invalid-input-DRY-RUN" and "dry-run" in run.tags


def test_a_hostile_incident_id_names_no_run_and_is_refused_saying_why(
    prefect_harness: None, site_file: Path, practitioners: Directory
) -> None:
    state = respond(accounts=practitioners.practitioners[43].uid, incident="../../etc x" * 40, site=str(site_file),
                    return_state=True)

    run = _flow_run(state)
    assert run.name == "invalid-input-DRY-RUN"
    assert run.state.type.value == "FAILED" and "incident id" in (run.state.message or ""), run.state.message


def test_a_planned_task_reads_planned_and_still_returns_its_result(prefect_harness: None) -> None:
    """``state_for`` as the executor is to return it from its task (the engine engineer wires it in)."""
    planned = PlannedChange(step="lock", action="directory.lock", system="directory", target="jdupont",
                            operation="lock", before={}, after={"pwdAccountLockedTime": ["000001010000Z"]},
                            outcome="planned", account="jdupont")

    @task(task_run_name="lock[jdupont]")
    def lock_plan() -> Any:
        return state_for([planned], {"account": "jdupont", "outcome": "planned"})

    @flow
    def plan() -> Any:
        return lock_plan.submit().result()

    state = plan(return_state=True)

    assert state.result() == {"account": "jdupont", "outcome": "planned"}
    tasks = _task_runs_with_states(state.state_details.flow_run_id)
    assert [(t.name, t.state.name, t.state.type.value) for t in tasks] == [("lock[jdupont]", "Planned", "COMPLETED")]


def _task_runs_with_states(flow_run_id: UUID, deadline: float = 30) -> list[Any]:
    """The flow run's task runs once the server has recorded their states (task runs are recorded from
    events, after the flow run returns)."""
    end = time.monotonic() + deadline
    while True:
        with get_client(sync_client=True) as client:
            tasks = client.read_task_runs(task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[flow_run_id])))
        if (tasks and all(t.state is not None and t.state.is_final() for t in tasks)) or time.monotonic() > end:
            return list(tasks)
        time.sleep(0.2)


def _paused_run(name: str, deadline: float = 60) -> Any:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])))
        paused = [r for r in runs if r.state and r.state.is_paused()]
        if paused:
            return paused[0]
        time.sleep(0.3)
    raise AssertionError(f"no run named {name} paused")


def test_a_paused_run_says_what_is_asked_and_is_approved_by_its_name(
    prefect_harness: None, tmp_path: Path, site_file: Path, slapd: Slapd, practitioners: Directory
) -> None:
    suspects = [practitioners.practitioners[i] for i in (48, 49)]
    playbook = yaml.safe_load((REPO / "playbooks" / "credential-misuse.yaml").read_text())
    playbook["limits"].update(max_accounts=1, approval_timeout="120s")
    path = tmp_path / "one-account-limit.yaml"
    path.write_text(yaml.safe_dump(playbook, sort_keys=False))
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.update(result=respond(
        accounts=" ".join(p.uid for p in suspects), dry_run=False, playbook=str(path), incident="inc-by-name",
        site=str(site_file))), daemon=True)
    thread.start()

    paused = _paused_run("inc-by-name-contain")
    assert paused.state.message.startswith("Approval needed: step scramble would change 2 accounts, above the limit of 1")
    assert "counts as a rejection" in paused.state.message
    assert bind_result(slapd, suspects[0].dn, suspects[0].password) == "success", "nothing changes while paused"
    assert main(["approve", "no-such-run-name", "--approver", "Dr Roux"]) == 2
    assert main(["approve", "inc-by-name-contain", "--approver", "Dr Roux", "--comment", "ARS call"]) == 0
    thread.join(timeout=120)

    assert box["result"]["status"] == "completed"
    assert all(bind_result(slapd, p.dn, p.password) == "invalidCredentials" for p in suspects)
    assert main(["approve", "inc-by-name-contain", "--approver", "Dr Roux"]) == 2, "no longer waiting"
    assert isinstance(UUID(str(paused.id)), UUID)
