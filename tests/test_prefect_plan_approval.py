"""The respond flow plans, waits on a person, and applies exactly the plan they approved — one flow run.

Scenario: the on-call opens the ``respond`` form (dry run, as an alert does). The run plans, then
pauses on an approval whose form shows the plan — the ids as given and what each resolved to, the
changes — and its SHA-256. ``tourniquet approve INCIDENT --approver NAME`` answers it; the same flow
run then changes exactly the planned accounts (the whole directory is compared) and the journal
records the approver and the plan hash. A rejected plan and an expired plan change nothing.
(A run of a deployment is suspended rather than paused: tests/e2e/test_prefect_deployments.py.)
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import LdapAdmin
from tourniquet.cli.main import main
from tourniquet.demo.practitioners import Directory
from tourniquet.flows.respond import respond
from tourniquet.journal import read_journal

REPO = Path(__file__).resolve().parents[1]


class _Background:
    """The flow run in a thread, as a worker would run it, so the test can answer its approval."""

    def __init__(self, **kwargs: Any) -> None:
        self.state: Any = None
        self.thread = threading.Thread(target=lambda: setattr(self, "state", respond(**kwargs, return_state=True)),
                                       daemon=True)
        self.thread.start()

    def join(self) -> Any:
        self.thread.join(timeout=120)
        assert not self.thread.is_alive(), "the flow run never finished"
        return self.state


def _paused_run(incident: str, deadline: float = 60) -> Any:
    """The incident's run once it waits for an approval."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_=incident)))
        paused = [run for run in runs if run.state is not None and run.state.is_paused()]
        if paused:
            return paused[0]
        time.sleep(0.3)
    raise AssertionError("the run never waited for an approval")


def _form_description(run_id: Any) -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        keyset = run.state.state_details.run_input_keyset
        return str(client.read_flow_run_input(run_id, keyset["description"]))


def _changed(before: dict, after: dict) -> set[str]:
    return {dn for dn in set(before) | set(after) if before.get(dn) != after.get(dn)}


def test_a_plan_approved_with_tourniquet_approve_is_applied_by_the_same_run(
    prefect_harness: None, site_file: Path, practitioners: Directory, ldap_admin: LdapAdmin
) -> None:
    first, second = practitioners.practitioners[30], practitioners.practitioners[31]
    incident = "inc-flow-plan-ok"
    before = ldap_admin.dump()
    run = _Background(accounts=f"{first.rpps}\n{second.mail}", reason="alert.siem.7", incident=incident,
                      site=str(site_file))
    paused = _paused_run(incident)
    assert paused.name == f"{incident}-plan"
    [plan_file] = sorted((site_file.parent / "state" / "plans" / incident).glob("plan-*.json"))
    digest = hashlib.sha256(plan_file.read_bytes()).hexdigest()
    form = _form_description(paused.id)
    assert digest in form and f"`{first.rpps}`" in form and f"**{first.uid}**" in form and first.establishment in form
    assert "lock (directory): to apply" in form
    assert _changed(before, ldap_admin.dump()) == set(), "nothing changes before the approval"

    assert main(["approve", incident, "--approver", "Dr Oncall", "--comment", "ARS call"]) == 0
    state = run.join()
    assert state.is_completed(), state.message
    result = state.result()
    assert result["plan"] == digest and result["approver"] == "Dr Oncall"
    assert _changed(before, ldap_admin.dump()) == {first.dn.lower(), second.dn.lower()}
    records = list(read_journal(site_file.parent / "evidence" / incident / "journal.jsonl"))
    [approval] = [r for r in records if r["type"] == "approval" and r["step"] == "plan"]
    assert (approval["approver"], approval["plan"], approval["run"]) == ("Dr Oncall", digest, str(paused.id))
    assert {r["run"] for r in records if r["type"] == "change"} == {str(paused.id)}  # the same flow run
    done = _run_named(f"{incident}-contain")
    assert done.id == paused.id and "live" in done.tags and "awaiting-approval" not in done.tags


def test_a_rejected_plan_changes_nothing(
    prefect_harness: None, site_file: Path, practitioners: Directory, ldap_admin: LdapAdmin
) -> None:
    person = practitioners.practitioners[32]
    incident = "inc-flow-plan-rejected"
    before = ldap_admin.dump()
    run = _Background(accounts=person.uid, incident=incident, site=str(site_file))
    _paused_run(incident)
    assert main(["approve", incident, "--approver", "Dr Petit", "--reject", "--comment", "false positive"]) == 0
    state = run.join()
    assert state.is_cancelled() and state.name == "Plan rejected"
    assert "plan rejected by Dr Petit" in state.message
    assert _changed(before, ldap_admin.dump()) == set()
    assert not (site_file.parent / "evidence" / incident / "journal.jsonl").exists()
    decisions = list(read_journal(site_file.parent / "state" / "plans" / incident / "decisions.jsonl"))
    assert [d["status"] for d in decisions] == ["asked", "rejected"]


def test_a_plan_nobody_answers_expires_and_changes_nothing(
    prefect_harness: None, site_file: Path, practitioners: Directory, ldap_admin: LdapAdmin, tmp_path: Path
) -> None:
    data = yaml.safe_load((REPO / "playbooks" / "credential-misuse.yaml").read_text())
    data["limits"]["plan_expires"] = "3s"
    playbook = tmp_path / "short-lived.yaml"
    playbook.write_text(yaml.safe_dump(data, sort_keys=False))
    person = practitioners.practitioners[33]
    incident = "inc-flow-plan-expired"
    before = ldap_admin.dump()
    state = respond(accounts=person.uid, incident=incident, playbook=str(playbook), site=str(site_file),
                    return_state=True)
    assert state.is_cancelled() and state.name == "Plan expired", state.message
    assert "nothing changed" in state.message
    assert _changed(before, ldap_admin.dump()) == set()
    decisions = list(read_journal(site_file.parent / "state" / "plans" / incident / "decisions.jsonl"))
    assert decisions[-1]["status"] == "expired"


@pytest.fixture(autouse=True)
def _no_slow_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pause polls at most every 5 s; a test answers within a second."""
    import tourniquet.flows.approval as approval

    original = approval._pause
    monkeypatch.setattr(approval, "_pause", lambda d, m, t, poll_interval, key: original(d, m, t, 1, key))


def _artifacts(key: str) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        return list(client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))))


def _run_named(name: str) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with get_client(sync_client=True) as client:
        [run] = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])))
    return run


def test_every_run_of_the_incident_updates_its_story_and_the_ticket_links_them(
    prefect_harness: None, site_file: Path, practitioners: Directory, ldap_admin: LdapAdmin, tmp_path: Path
) -> None:
    from tourniquet.flows.recover import recover
    from tourniquet.flows.reinstate import undo

    person, other = practitioners.practitioners[34], practitioners.practitioners[35]
    incident = "inc-flow-story"
    run = _Background(accounts=person.uid, incident=incident, site=str(site_file))
    paused = _paused_run(incident)
    assert main(["approve", incident, "--approver", "Dr Oncall"]) == 0
    assert run.join().is_completed()
    key = f"tourniquet-{incident}-story"
    stories = _artifacts(key)
    assert len(stories) >= 2, "asked, then contained"  # one key, a new version each time
    latest = max(stories, key=lambda a: a.created).data
    assert "Dr Oncall approved plan" in latest and f"{person.uid} contained" in latest
    [ticket] = (site_file.parent / "tickets").glob(f"{incident}*.md")
    text = ticket.read_text()
    assert f"/runs/flow-run/{paused.id}" in text and f"/artifacts/key/{key}" in text

    assert main(["conclude", incident, "--by", "Dr Enquête", "--finding", "phished", "--site", str(site_file)]) == 0
    recover(incident=incident, accounts=[person.uid], password_file=str(tmp_path / "otp"), site=str(site_file))
    recovered = _run_named(f"{incident}-recover-{person.uid}")
    assert f"/runs/flow-run/{recovered.id}" in ticket.read_text()
    latest = max(_artifacts(key), key=lambda a: a.created).data
    assert "recovered" in latest.splitlines()[0] and f"{person.uid} recovered" in latest

    respond(accounts=other.uid, dry_run=False, incident="inc-flow-undo", site=str(site_file))
    undo(incident="inc-flow-undo", site=str(site_file))
    assert _run_named("inc-flow-undo-undo").state.is_completed()
    latest = max(_artifacts("tourniquet-inc-flow-undo-story"), key=lambda a: a.created).data
    assert "undone" in latest.splitlines()[0]


def test_a_plan_with_no_account_to_contain_asks_nobody_and_says_why(prefect_harness: None, site_file: Path) -> None:
    state = respond(accounts="nosuch-uid-1", incident="inc-flow-plan-nobody", site=str(site_file), return_state=True)
    assert state.is_failed() and "nosuch-uid-1" in state.message and "nothing was changed" in state.message
