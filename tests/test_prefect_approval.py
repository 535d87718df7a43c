"""A person approves: the run pauses on the blast-radius limit (or an approval step) and waits.

Scenario: an alert names more accounts than the playbook may touch without a person. The
flow pauses with a form; the on-call approves it through the API (``tourniquet approve``)
and the accounts get locked, the approver's name in the journal. Nobody answering in time
counts as a rejection: the directory is left exactly as it was.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import LdapAdmin, bind_result
from tourniquet.cli.main import main
from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import Slapd
from tourniquet.flows.respond import RunFailed, run_playbook
from tourniquet.journal import read_journal

REPO = Path(__file__).resolve().parents[1]


def _playbook(tmp_path: Path, *, max_accounts: int = 2, timeout: str = "120s", approval_step: bool = False) -> Path:
    data = yaml.safe_load((REPO / "playbooks" / "credential-misuse.yaml").read_text())
    data["limits"]["max_accounts"] = max_accounts
    data["limits"]["approval_timeout"] = timeout
    if approval_step:
        data["steps"].insert(2, {
            "id": "confirm", "action": "flow.approval", "timeout": 120,
            "with": {"summary": "Lock ${{ join(pluck(steps.resolve.accounts, 'uid')) }}", "timeout": timeout},
        })
    path = tmp_path / "playbook.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class _Background:
    """Runs the flow in a thread, as a worker would, so the test can answer the pause."""

    def __init__(self, **kwargs: Any) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, kwargs=kwargs, daemon=True)
        self.thread.start()

    def _run(self, **kwargs: Any) -> None:
        try:
            self.result = run_playbook(**kwargs)
        except BaseException as exc:  # the test inspects it
            self.error = exc

    def join(self) -> None:
        self.thread.join(timeout=120)
        assert not self.thread.is_alive(), "the flow run never finished"


def _wait_for_request(journal: Path, deadline: float = 60) -> str:
    """The flow run id, read from the journal's 'approval requested' record."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        for record in read_journal(journal):
            if record["type"] == "approval" and record.get("status") == "requested":
                return str(record["run"])
        time.sleep(0.2)
    raise AssertionError("the run never asked for an approval")


def _resume_when_paused(run_id: str, argv: list[str], deadline: float = 30) -> int:
    """The journal record comes just before the pause: retry until the run is really paused."""
    end = time.monotonic() + deadline
    while True:
        code = main(["approve", run_id, *argv])
        if code == 0 or time.monotonic() > end:
            return code
        time.sleep(0.3)


def _journal(site_file: Path, incident: str) -> Path:
    return site_file.parent / "evidence" / incident / "journal.jsonl"


def test_blast_radius_pause_approved_through_the_api_locks_the_accounts(
    prefect_harness: None, tmp_path: Path, site_file: Path, slapd: Slapd, practitioners: Directory
) -> None:
    suspects = [practitioners.practitioners[i] for i in (5, 6, 7)]
    playbook = _playbook(tmp_path, max_accounts=2)
    incident = "inc-approval-granted"

    run = _Background(playbook=str(playbook), inputs={"accounts": [p.uid for p in suspects]},
                      incident=incident, site=str(site_file))
    run_id = _wait_for_request(_journal(site_file, incident))
    assert bind_result(slapd, suspects[0].dn, suspects[0].password) == "success", "nothing changes before approval"
    assert _resume_when_paused(run_id, ["--approver", "Dr Martin (on call)", "--comment", "ARS alert 42"]) == 0
    run.join()

    assert run.error is None, run.error
    assert run.result["status"] == "completed"
    for person in suspects:
        assert bind_result(slapd, person.dn, person.password) == "invalidCredentials"
    decisions = [r for r in read_journal(_journal(site_file, incident)) if r["type"] == "approval"]
    assert [d["status"] for d in decisions] == ["requested", "approved"]
    assert decisions[-1]["approver"] == "Dr Martin (on call)"
    assert decisions[-1]["comment"] == "ARS alert 42"
    assert "Dr Martin (on call)" in Path(run.result["report"]).read_text()


def test_approval_timeout_is_a_rejection_and_changes_nothing(
    prefect_harness: None, tmp_path: Path, site_file: Path, practitioners: Directory, ldap_admin: LdapAdmin
) -> None:
    suspects = [practitioners.practitioners[i] for i in (8, 9, 10)]
    playbook = _playbook(tmp_path, max_accounts=2, timeout="2s")
    before = ldap_admin.dump()

    with pytest.raises(RunFailed, match="nobody approved"):
        run_playbook(str(playbook), {"accounts": [p.uid for p in suspects]}, incident="inc-approval-timeout",
                     site=str(site_file))

    assert ldap_admin.dump() == before
    records = list(read_journal(_journal(site_file, "inc-approval-timeout")))
    decisions = [r for r in records if r["type"] == "approval"]
    assert [d["status"] for d in decisions] == ["requested", "rejected"]
    assert "no answer within" in decisions[-1]["comment"]
    assert not [r for r in records if r["type"] in ("intent", "change")]


def test_approval_step_rejected_fails_the_run_before_any_change(
    prefect_harness: None, tmp_path: Path, site_file: Path, practitioners: Directory, ldap_admin: LdapAdmin
) -> None:
    suspect = practitioners.practitioners[12]
    playbook = _playbook(tmp_path, max_accounts=20, approval_step=True)
    incident = "inc-approval-step"
    before = ldap_admin.dump()

    run = _Background(playbook=str(playbook), inputs={"accounts": [suspect.uid]}, incident=incident,
                      site=str(site_file))
    run_id = _wait_for_request(_journal(site_file, incident))
    assert _resume_when_paused(run_id, ["--approver", "Dr Petit", "--reject", "--comment", "false positive"]) == 0
    run.join()

    assert isinstance(run.error, RunFailed)
    assert "Dr Petit rejected: false positive" in str(run.error)
    assert ldap_admin.dump() == before
    decisions = [r for r in read_journal(_journal(site_file, incident)) if r["type"] == "approval"]
    assert [(d["status"], d.get("approver", "")) for d in decisions] == [("requested", ""), ("rejected", "Dr Petit")]
