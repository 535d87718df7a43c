"""The incident: three practitioner accounts are used by someone else; contain them.

Runs playbooks/credential-misuse.yaml against the real slapd, through the Prefect flow,
and checks what the directory and the journal say afterwards.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import LdapAdmin, bind_result
from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import Slapd
from tourniquet.engine.execute import execute_playbook
from tourniquet.flows.respond import run_playbook
from tourniquet.journal import read_journal, verify_chain

PLAYBOOK = str(Path(__file__).resolve().parents[1] / "playbooks" / "credential-misuse.yaml")


def _suspects(practitioners: Directory) -> list:
    return [practitioners.practitioners[i] for i in (3, 11, 27)]


def test_plan_changes_nothing_in_the_directory(
    site_file: Path, practitioners: Directory, ldap_admin: LdapAdmin
) -> None:
    suspects = _suspects(practitioners)
    before = ldap_admin.dump()

    summary = execute_playbook(PLAYBOOK, {"accounts": [p.uid for p in suspects]}, dry_run=True, site=str(site_file))

    assert summary.status == "planned"
    assert ldap_admin.dump() == before
    planned = {(c.target, c.operation) for c in summary.changes if c.outcome == "planned" and c.system == "directory"}
    # what the run will apply: the scramble sets pwdReset itself (pwdMustChange), so the reset is implied by it
    assert planned == {(p.uid, op) for p in suspects for op in ("scramble_password", "lock")}
    implied = {(c.target, c.operation, c.implied_by) for c in summary.changes if c.implied_by}
    assert implied == {(p.uid, "force_password_reset", "scramble_password") for p in suspects}
    assert not (site_file.parent / "evidence").exists(), "a plan writes no evidence"


def test_containment_locks_accounts_and_writes_the_journal(
    prefect_harness: None, site_file: Path, slapd: Slapd, practitioners: Directory
) -> None:
    suspects = _suspects(practitioners)
    bystander = practitioners.practitioners[4]
    ids = [suspects[0].uid, suspects[1].rpps, suspects[2].mail]

    result = run_playbook(PLAYBOOK, {"accounts": ids, "reason": "ARS alert 2025-09"}, site=str(site_file))

    assert result["status"] == "completed"
    for person in suspects:
        assert bind_result(slapd, person.dn, person.password) == "invalidCredentials"
    assert bind_result(slapd, bystander.dn, bystander.password) == "success"
    journal = Path(result["journal"])
    assert verify_chain(journal) > 0
    applied = {(r["target"], r["operation"]) for r in read_journal(journal)
               if r["type"] == "change" and r["outcome"] == "applied" and r["system"] == "directory"}
    # the scramble sets pwdReset itself (pwdMustChange): the reset step is then a no-op
    assert applied == {(p.uid, op) for p in suspects for op in ("scramble_password", "lock")}
    assert (journal.parent / "snapshots" / f"{suspects[0].uid}.json").exists()
    assert Path(result["report"]).read_text().count("applied") >= 6


def test_second_run_changes_nothing(site_file: Path, practitioners: Directory, ldap_admin: LdapAdmin) -> None:
    suspects = _suspects(practitioners)
    inputs = {"accounts": [p.uid for p in suspects]}
    first = execute_playbook(PLAYBOOK, inputs, dry_run=False, site=str(site_file))
    after_first = ldap_admin.dump()

    second = execute_playbook(PLAYBOOK, inputs, dry_run=False, site=str(site_file))

    assert first.status == second.status == "completed"
    assert ldap_admin.dump() == after_first
    assert {c.outcome for c in second.changes} == {"noop"}
    assert first.incident == second.incident, "same inputs on the same day resume the same incident"


@pytest.mark.parametrize("hostile", ["*", "*)(uid=*", "admin)(|(uid=*", "*)(|(objectClass=*", "\\2a", "x*"])
def test_injection_shaped_ids_never_widen_the_filter(
    hostile: str, site_file: Path, ldap_admin: LdapAdmin
) -> None:
    before = ldap_admin.dump()

    summary = execute_playbook(PLAYBOOK, {"accounts": [hostile]}, dry_run=False, site=str(site_file))

    assert summary.status == "failed"
    assert "no account with" in (summary.error or "")
    assert ldap_admin.dump() == before


@pytest.mark.parametrize("incident", ["../../etc", "INC 42", "", "x" * 200, "inc/1"])
def test_an_incident_id_cannot_escape_the_evidence_folder(incident: str, site_file: Path) -> None:
    """The incident id names the evidence folder and goes into ticket searches: a safe alphabet only."""
    from tourniquet.errors import PlaybookError

    with pytest.raises(PlaybookError, match="incident id"):
        execute_playbook(PLAYBOOK, {"accounts": ["nobody"]}, dry_run=False, incident=incident or "-",
                         site=str(site_file))
    assert not (site_file.parent / "evidence").exists()
