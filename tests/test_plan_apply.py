"""Plan, then apply that plan: what the responder read is exactly what is changed, or nothing is.

Scenario: an alert names two practitioners, one by RPPS number. ``tourniquet plan`` writes a plan
file (each id with the account it resolved to, each change with the state it starts from) and its
SHA-256; ``tourniquet apply`` by a named approver changes exactly those two entries (the whole
directory is compared before and after) and the journal records the approver and the plan hash.
Someone locks one of the accounts by hand between plan and apply: nothing is applied to it, the
drift is named, and ``--replan`` makes a new plan that then applies. A plan left too long expires.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import LdapAdmin
from tourniquet.cli.main import main
from tourniquet.demo.practitioners import Directory
from tourniquet.journal import read_journal

REPO = Path(__file__).resolve().parents[1]
PASSWORD = {"userPassword", "pwdChangedTime", "pwdReset", "pwdFailureTime", "pwdAccountLockedTime",
            "pwdPolicySubentry"}


def _changed(before: dict, after: dict) -> set[str]:
    """DNs whose entry differs between two whole-directory dumps."""
    return {dn for dn in set(before) | set(after) if before.get(dn) != after.get(dn)}


def _plans(site_file: Path, incident: str) -> list[Path]:
    return sorted((site_file.parent / "state" / "plans" / incident).glob("plan-*.json"))


def _plan(site_file: Path, incident: str, accounts: str, capsys: pytest.CaptureFixture[str],
          playbook: str = "credential-misuse") -> str:
    code = main(["plan", playbook, "-i", f"accounts={accounts}", "--site", str(site_file), "--incident", incident])
    out = capsys.readouterr().out
    assert code in (0, 1, 3, 4) and "apply it with:" in out, out  # 4: an id was refused (partly planned)
    return out


def _journal(site_file: Path, incident: str) -> list[dict]:
    return list(read_journal(site_file.parent / "evidence" / incident / "journal.jsonl"))


def test_plan_then_apply_changes_exactly_the_planned_accounts(
    site_file: Path, practitioners: Directory, ldap_admin: LdapAdmin, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = practitioners.practitioners[41], practitioners.practitioners[42]
    incident = "inc-plan-apply-1"
    out = _plan(site_file, incident, f"{first.rpps},{second.uid},nobody-such", capsys)
    [plan_file] = _plans(site_file, incident)
    digest = hashlib.sha256(plan_file.read_bytes()).hexdigest()
    assert f"plan {digest}" in out
    assert f"{first.rpps} → {first.uid} (" in out and first.establishment in out  # the id, what it resolved to
    assert "nobody-such → refused" in out
    assert "to apply" in out and "lock" in out

    before = ldap_admin.dump()
    code = main(["apply", incident, "--approver", "Dr Oncall", "--site", str(site_file)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert _changed(before, ldap_admin.dump()) == {first.dn.lower(), second.dn.lower()}
    [approval] = [r for r in _journal(site_file, incident) if r["type"] == "approval" and r["step"] == "plan"]
    assert approval["approver"] == "Dr Oncall" and approval["plan"] == digest
    assert approval["accounts"] == [first.uid, second.uid]


def test_an_account_changed_by_hand_after_the_plan_gets_nothing_until_replanned(
    site_file: Path, practitioners: Directory, ldap_admin: LdapAdmin, capsys: pytest.CaptureFixture[str]
) -> None:
    moved, still = practitioners.practitioners[43], practitioners.practitioners[44]
    incident = "inc-plan-drift-1"
    _plan(site_file, incident, f"{moved.uid},{still.uid}", capsys)
    ldap_admin.set(moved.dn, {"pwdAccountLockedTime": ["000001010000Z"]})  # a colleague locked it by hand
    by_hand = ldap_admin.dump()

    code = main(["apply", incident, "--approver", "Dr Oncall", "--site", str(site_file)])
    out = capsys.readouterr().out
    assert code == 4, out  # partly applied
    assert f"drift    {moved.uid}: nothing applied; lock: planned lock from" in out
    assert _changed(by_hand, ldap_admin.dump()) == {still.dn.lower()}
    drift = [r for r in _journal(site_file, incident) if r["type"] == "drift"]
    assert [r["account"] for r in drift] == [moved.uid] and drift[0]["status"] == "not applied"

    assert main(["apply", incident, "--replan", "--site", str(site_file)]) == 0
    out = capsys.readouterr().out
    assert "NEW PLAN" in out and "already so" in out
    assert len(_plans(site_file, incident)) == 2
    newest = hashlib.sha256(_plans(site_file, incident)[-1].read_bytes()).hexdigest()
    replanned = ldap_admin.dump()
    assert main(["apply", incident, "--approver", "Dr Oncall", "--site", str(site_file)]) == 0, capsys.readouterr()
    assert _changed(replanned, ldap_admin.dump()) == {moved.dn.lower()}  # scrambled and reset; still locked
    approvals = [r for r in _journal(site_file, incident) if r["type"] == "approval" and r["step"] == "plan"]
    assert approvals[-1]["plan"] == newest


def test_an_expired_plan_changes_nothing(
    site_file: Path, practitioners: Directory, ldap_admin: LdapAdmin, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    data = yaml.safe_load((REPO / "playbooks" / "credential-misuse.yaml").read_text())
    data["limits"]["plan_expires"] = "1s"
    playbook = tmp_path / "short-lived.yaml"
    playbook.write_text(yaml.safe_dump(data, sort_keys=False))
    person = practitioners.practitioners[45]
    incident = "inc-plan-expired-1"
    _plan(site_file, incident, person.uid, capsys, playbook=str(playbook))
    time.sleep(1.5)
    before = ldap_admin.dump()
    code = main(["apply", incident, "--approver", "Dr Late", "--site", str(site_file)])
    err = capsys.readouterr().err
    assert code == 2 and "expired" in err and "nothing applied" in err
    assert _changed(before, ldap_admin.dump()) == set()
    decisions = list(read_journal(site_file.parent / "state" / "plans" / incident / "decisions.jsonl"))
    assert decisions[-1]["status"] == "expired"


def test_a_plan_edited_after_it_was_read_is_not_applied(
    site_file: Path, practitioners: Directory, ldap_admin: LdapAdmin, capsys: pytest.CaptureFixture[str]
) -> None:
    person, bystander = practitioners.practitioners[46], practitioners.practitioners[47]
    incident = "inc-plan-tampered-1"
    _plan(site_file, incident, person.uid, capsys)
    [plan_file] = _plans(site_file, incident)
    read = hashlib.sha256(plan_file.read_bytes()).hexdigest()
    plan_file.write_text(plan_file.read_text().replace(person.uid, bystander.uid))  # someone edits it
    before = ldap_admin.dump()
    code = main(["apply", incident, "--approver", "Dr Oncall", "--plan", read[:12], "--site", str(site_file)])
    assert code == 2 and f"no plan with hash {read[:12]}" in capsys.readouterr().err
    assert _changed(before, ldap_admin.dump()) == set()
