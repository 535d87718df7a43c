"""Guardrails under attack: a plan changes nothing, protected accounts stay untouched, the blast radius needs a person.

Scenario: an alert names practitioner accounts, some of them spelled as an attacker (or a
tired responder) would; some are protected look-alikes. Whatever the input, the directory
afterwards shows changes only on the accounts the run was allowed to change.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.guardrails_testbed import (  # noqa: F401 - fixtures
    PEOPLE,
    PROTECTED_RPPS,
    Testbed,
    applied_counts,
    approve,
    locked_uids,
    private_slapd,
    testbed,
)
from tourniquet.actions.directory import SCRAMBLED
from tourniquet.connectors.directory import DirectoryClient
from tourniquet.engine.run import ApprovalDecision, ApprovalRequest
from tourniquet.errors import TransientError
from tourniquet.journal import read_journal


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------- dry run


def test_plan_lists_each_change_and_changes_nothing_anywhere(testbed: Testbed) -> None:
    suspects = testbed.people[:3]
    files_before = _files(testbed.tmp_path)

    summary = testbed.run([suspects[0].uid, suspects[1].rpps, suspects[2].mail], dry_run=True)

    assert summary.status == "planned"
    planned = sorted((c.target, c.operation, str(c.before), str(c.after)) for c in summary.changes
                     if c.system == "directory")
    assert {c.outcome for c in summary.changes if not c.implied_by} == {"planned"}
    assert planned == sorted(
        (p.uid, op, str(before), str(after)) for p in suspects for op, before, after in (
            ("scramble_password", {"password": "the owner's"}, {"password": SCRAMBLED}),
            ("lock", {"pwdAccountLockedTime": []}, {"pwdAccountLockedTime": ["000001010000Z"]}),
            # the scramble sets pwdReset itself (pwdMustChange): the plan says so, as the run will find it
            ("force_password_reset", {"pwdReset": ["TRUE"]}, {"pwdReset": ["TRUE"]}),
        )
    )
    assert {(c.target, c.implied_by) for c in summary.changes if c.implied_by} == {
        (p.uid, "scramble_password") for p in suspects}
    assert testbed.changed() == {}, "a plan changes nothing in the directory"
    files_after = _files(testbed.tmp_path)
    new = {name for name in files_after if name not in files_before}
    assert all(name.startswith("state/plans/") for name in new), f"written outside the plan folder: {new}"
    assert {k: v for k, v in files_after.items() if k in files_before} == files_before
    assert not (testbed.tmp_path / "evidence").exists()
    assert not (testbed.tmp_path / "tickets").exists(), "the file ticket store is not written by a plan"
    plan = next((testbed.tmp_path / "state" / "plans" / summary.incident).glob("plan-*.jsonl"))
    assert not [r for r in read_journal(plan) if r["type"] == "intent"], "a plan sends nothing"


def test_tourniquet_plan_prints_before_and_after_and_changes_nothing(testbed: Testbed, capsys) -> None:
    from tourniquet.cli.main import main

    suspects = testbed.people[:2]

    code = main(["plan", str(testbed.playbook()), "--site", str(testbed.site_file),
                 "-i", "accounts=" + ",".join(p.uid for p in suspects) + ",breakglass-ward"])

    out = capsys.readouterr().out
    assert code == 4, "two accounts planned, one refused: a partial plan"
    for person in suspects:
        assert (f'planned  {person.uid}: lock {{"pwdAccountLockedTime": []}} -> '
                f'{{"pwdAccountLockedTime": ["000001010000Z"]}}') in out
        # the scramble sets pwdReset itself (the policy's pwdMustChange): the plan says so, as the run will
        assert f"implied  {person.uid}: force_password_reset (set by scramble_password)" in out
    assert "2 of 3 planned; refused: breakglass-ward is protected" in out
    assert "not planned (refused): breakglass-ward is protected" in out
    assert testbed.changed() == {}
    assert not (testbed.tmp_path / "evidence").exists()


# --------------------------------------------------------------------------- protected accounts


@pytest.mark.parametrize("spelling", [
    "breakglass-ward",                                   # uid glob from the site (uid=breakglass-*)
    " BREAKGLASS-WARD ",                                 # case and spaces: the directory still finds it
    "ｂｒｅａｋｇｌａｓｓ-ward",                              # full-width letters: LDAP matching folds them
    "breakglass-ward@SANTE.example",                     # by mail
    PROTECTED_RPPS,                                      # by RPPS number
    "8" + PROTECTED_RPPS,                                # by national id (8 + RPPS)
    f"uid=breakglass-ward,{PEOPLE}",                     # by DN
    "UID=BreakGlass-Ward,OU=People,DC=sante,DC=example",
    r"uid=breakglass\2dward,ou=people,dc=sante,dc=example",  # hex-escaped DN
    "dr-admin",                                          # member of cn=admins (memberOf pattern)
    "dr-admin@sante.example",
    "vip.director",                                      # DN pattern written with odd case and spaces
    f"uid=vip.director,{PEOPLE}",
])
def test_a_protected_account_is_never_changed_whatever_its_spelling(testbed: Testbed, spelling: str) -> None:
    bystander = testbed.people[5]

    summary = testbed.run([spelling, bystander.uid])

    assert summary.status == "completed"
    assert [r["account"] for r in summary.refused if r["step"] == "lock"], "the run says it refused"
    assert all("protected by" in r["reason"] for r in summary.refused)
    changed = testbed.changed()
    assert set(changed) == {bystander.dn.lower()}, f"only the bystander may change: {sorted(changed)}"
    refusals = [r for r in testbed.journal(summary.incident) if r["type"] == "refused"]
    assert {r["step"] for r in refusals} >= {"lock", "reset"}, "refused at every changing step"


def test_protection_is_checked_on_the_live_entry_not_on_what_the_step_claims(testbed: Testbed) -> None:
    """A hand-written account (no groups, another uid) for a member of cn=admins is still refused."""
    forged = {"dn": f"uid=dr-admin,{PEOPLE}", "uid": "innocent", "groups": []}
    playbook = testbed.playbook(steps={"lock": {"for_each": [forged]}, "reset": {"for_each": [forged]}})

    summary = testbed.run([testbed.people[0].uid], playbook=playbook)

    assert {r["account"] for r in summary.refused} == {"innocent"}
    assert "admins" in summary.refused[0]["reason"].lower()
    assert f"uid=dr-admin,{PEOPLE}" not in testbed.changed()


# --------------------------------------------------------------------------- blast radius


def test_above_the_limit_nothing_changes_before_a_person_approves(testbed: Testbed) -> None:
    ids = [p.uid for p in testbed.people[:21]]  # the playbook says max_accounts: 20
    seen_at_approval: list[dict] = []

    def nobody(request: ApprovalRequest) -> ApprovalDecision:
        seen_at_approval.append(testbed.changed())
        return ApprovalDecision(False, "", "no approver on duty")

    summary = testbed.run(ids, approver=nobody)

    assert summary.status == "failed"
    assert "21 accounts exceed the limit of 20" in (summary.error or "")
    assert seen_at_approval == [{}], "the approval is asked before any change"
    assert testbed.changed() == {}, "a rejection leaves the directory untouched"
    records = testbed.journal(summary.incident)
    assert not [r for r in records if r["type"] in ("intent", "change")]
    assert [r["status"] for r in records if r["type"] == "approval"] == ["requested", "rejected"]


def test_the_default_approver_outside_prefect_says_no(testbed: Testbed) -> None:
    summary = testbed.run([p.uid for p in testbed.people[:21]])

    assert summary.status == "failed" and "nobody approved" in (summary.error or "")
    assert testbed.changed() == {}


def test_the_site_ceiling_cannot_be_raised_by_a_playbook(testbed: Testbed) -> None:
    playbook = testbed.playbook(limits={"max_accounts": 500})
    asked: list[ApprovalRequest] = []

    def record(request: ApprovalRequest) -> ApprovalDecision:
        asked.append(request)
        return ApprovalDecision(False, "", "")

    summary = testbed.run([p.uid for p in testbed.people[:51]], playbook=playbook, approver=record)

    assert summary.status == "failed"
    assert asked and asked[0].limit == 50, "min(playbook 500, site ceiling 50)"
    assert testbed.changed() == {}


def test_an_approved_run_changes_every_account_once(testbed: Testbed) -> None:
    people = testbed.people[:21]

    summary = testbed.run([p.uid for p in people], approver=approve)

    assert summary.status == "completed"
    assert locked_uids(testbed) == {p.uid for p in people}
    assert set(applied_counts(testbed.journal(summary.incident), "lock").values()) == {1}


def test_an_approver_that_never_answers_is_a_rejection(testbed: Testbed, monkeypatch: pytest.MonkeyPatch) -> None:
    import tourniquet.engine.approvals as engine

    monkeypatch.setattr(engine, "APPROVAL_GRACE_SECONDS", 0.0)
    release = threading.Event()
    playbook = testbed.playbook(limits={"approval_timeout": "1s"})

    def hangs(request: ApprovalRequest) -> ApprovalDecision:
        release.wait(60)
        return ApprovalDecision(True, "too-late", "")

    try:
        summary = testbed.run([p.uid for p in testbed.people[:21]], playbook=playbook, approver=hangs)
    finally:
        release.set()

    assert summary.status == "failed"
    assert "no answer within 1s" in (summary.error or "")
    assert testbed.changed() == {}


def test_an_approver_that_crashes_is_a_rejection(testbed: Testbed) -> None:
    def crashes(request: ApprovalRequest) -> ApprovalDecision:
        raise ConnectionError("approval service down")

    summary = testbed.run([p.uid for p in testbed.people[:21]], approver=crashes)

    assert summary.status == "failed" and "approval service down" in (summary.error or "")
    assert testbed.changed() == {}


# --------------------------------------------------------------------------- timeouts


def test_a_step_that_hangs_fails_at_its_timeout_instead_of_hanging_the_run(
    testbed: Testbed, monkeypatch: pytest.MonkeyPatch
) -> None:
    stuck = testbed.people[1]
    release = threading.Event()
    original = DirectoryClient.apply

    def apply(self: DirectoryClient, dn: str, current: dict, wanted: dict) -> None:
        if dn == stuck.dn:
            release.wait(60)  # a call that never returns (a dead TCP peer without RST)
            raise TransientError("connection reset", system="directory")
        original(self, dn, current, wanted)

    monkeypatch.setattr(DirectoryClient, "apply", apply)
    playbook = testbed.playbook(steps={"lock": {"timeout": 2}})
    try:
        summary = testbed.run([p.uid for p in testbed.people[:3]], playbook=playbook)
    finally:
        release.set()

    assert summary.status == "failed"
    assert "did not finish within 2s" in (summary.error or "")
    assert stuck.uid not in locked_uids(testbed)


def test_two_spellings_of_one_account_in_one_step_change_it_once(testbed: Testbed) -> None:
    person = testbed.people[2]
    spellings = [{"dn": person.dn, "uid": person.uid},
                 {"dn": person.dn.upper().replace("-", "\\2d"), "uid": person.uid.upper()}]
    playbook = testbed.playbook(steps={"lock": {"for_each": spellings}, "reset": {"for_each": spellings}})

    summary = testbed.run([person.uid], playbook=playbook)

    assert summary.status == "completed", summary.error
    records = testbed.journal(summary.incident)
    assert applied_counts(records, "lock") == {person.uid: 1}
    assert len([r for r in records if r["type"] == "duplicate"]) == 2


def test_an_entry_outside_the_sites_base_dn_is_never_changed(testbed: Testbed) -> None:
    """A playbook cannot aim a change at the password policy, the admin or the services subtree."""
    forged = [{"dn": testbed.slapd.policy_dn, "uid": "policy"},
              {"dn": f"uid=breakglass-admin,ou=services,{testbed.directory.suffix}", "uid": "innocent"},
              {"dn": testbed.slapd.root_dn, "uid": "root"}]
    playbook = testbed.playbook(steps={"scramble": {"for_each": forged}, "lock": {"for_each": forged},
                                       "reset": {"for_each": forged}})

    summary = testbed.run([testbed.people[0].uid], playbook=playbook)

    assert {r["account"] for r in summary.refused} == {"policy", "innocent", "root"}
    assert testbed.changed() == {}
