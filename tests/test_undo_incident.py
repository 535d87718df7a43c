"""False alarm: the accounts were not misused after all. Undo must put the directory back exactly.

Also the automatic kind of undo: a playbook with ``on_failure: rollback`` that fails after
locking undoes its own changes, newest first, and only its own.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import yaml

from tests.guardrails_testbed import (  # noqa: F401 - fixtures
    Testbed,
    applied_counts,
    locked_uids,
    private_slapd,
    testbed,
)
from tests.helpers import bind_result
from tourniquet import registry
from tourniquet.cli.main import main
from tourniquet.journal import verify_chain


def _ticket(testbed: Testbed) -> dict:
    """The incident's ticket in the site's file ticket store."""
    tickets = [json.loads(p.read_text()) for p in (testbed.tmp_path / "tickets").glob("*.json")]
    assert len(tickets) == 1, tickets
    return tickets[0]


def _failing_after_changes(testbed: Testbed) -> Path:
    """credential-misuse with rollback and a last step that fails: the alert named an account that does not exist."""
    playbook = testbed.playbook(on_failure="rollback")
    data = yaml.safe_load(playbook.read_text())
    data["steps"].append({"id": "confirm", "action": "directory.resolve", "with": {"ids": ["no-such-account"]}})
    playbook.write_text(yaml.safe_dump(data, sort_keys=False))
    return playbook


#: What the containment's scramble changes for good (the stolen password never comes back), and the
#: failure counter a test's own bind with that dead password leaves.
PASSWORD = {"userPassword", "pwdChangedTime", "pwdReset", "pwdFailureTime"}


def _beyond_password(changed: dict) -> dict:
    """The whole-directory diff without the replaced password (which undo cannot and must not restore)."""
    kept = {dn: {a: v for a, v in attributes.items() if a not in PASSWORD} for dn, attributes in changed.items()}
    return {dn: attributes for dn, attributes in kept.items() if attributes}


def test_every_account_changing_action_declares_its_inverse_or_that_it_has_none() -> None:
    for spec in registry.all_actions():
        if not spec.changes or spec.target is None:
            continue  # e.g. ticket comments: not an account, nothing a false alarm must give back
        if spec.undo is None:
            # Some changes cannot be reversed (ended sessions are gone, a scrambled password is never
            # read) or are themselves an undo: the action must say so, so nobody expects undo to act.
            doc = (inspect.getdoc(spec.function) or "").lower()
            assert "undo" in doc, f"{spec.name} changes something but says nothing about its undo"
            continue
        inverse = registry.get(spec.undo)
        assert inverse is not None and inverse.changes, f"{spec.name}: undo {spec.undo} is not a changing action"
        assert spec.target in spec.parameters.model_fields, f"{spec.name}: guardrails need a target"


def test_undo_after_a_full_credential_misuse_run_restores_the_exact_directory(
    prefect_harness: None, testbed: Testbed, capsys
) -> None:
    from tourniquet.flows.respond import run_playbook

    suspects = [testbed.people[i] for i in (3, 11, 27)]
    result = run_playbook(str(testbed.playbook()), {"accounts": [suspects[0].uid, suspects[1].rpps, suspects[2].mail]},
                          site=str(testbed.site_file))
    assert result["status"] == "completed"
    assert bind_result(testbed.slapd, suspects[0].dn, suspects[0].password) == "invalidCredentials"
    assert set(testbed.changed()) == {p.dn.lower() for p in suspects}

    code = main(["undo", result["incident"], "--site", str(testbed.site_file)])

    assert code == 0
    assert _beyond_password(testbed.changed()) == {}, "whole-directory diff after undo: only the password"
    assert set(testbed.changed()) == {p.dn.lower() for p in suspects}
    assert bind_result(testbed.slapd, suspects[0].dn, suspects[0].password) == "invalidCredentials", \
        "the stolen password cannot come back"
    records = testbed.journal(result["incident"])
    undone = [r for r in records if r["type"] == "undo"]
    assert len(undone) == 4 and {r["status"] for r in undone} == {"done"}, "3 locks and the ticket"
    applied = [r for r in records if r["type"] == "change" and r["outcome"] == "applied"
               and r.get("undo") and not r["step"].startswith("undo:")]
    accounts = [r["hash"] for r in reversed(applied) if r["system"] == "directory"]
    ticket = [r["hash"] for r in reversed(applied) if r["system"] != "directory"]
    assert [r["undoes"] for r in undone] == accounts + ticket, "newest account change first, the ticket last"
    assert [r["status"] for r in records if r["type"] == "run"][-2:] == ["undo started", "undo finished"]
    assert verify_chain(Path(result["journal"])) == len(records)
    said = capsys.readouterr().out
    assert "4 reversed" in said
    assert all(f"kept   {p.uid}: the password was replaced" in said for p in suspects)
    ticket = _ticket(testbed)
    assert ticket["status"] == "closed", "the undo is recorded on the ticket"
    assert any("False alarm" in c["text"] for c in ticket["comments"])

    again = main(["undo", result["incident"], "--site", str(testbed.site_file)])

    assert again == 0 and _beyond_password(testbed.changed()) == {}
    assert len([r for r in testbed.journal(result["incident"]) if r["type"] == "undo"]) == 4, "nothing left to undo"


def test_a_failed_run_with_rollback_undoes_its_changes_newest_first(testbed: Testbed) -> None:
    people = testbed.people[:4]
    summary = testbed.run([p.uid for p in people], playbook=_failing_after_changes(testbed))

    assert summary.status == "rolled back"
    assert "no-such-account" in (summary.error or "")
    assert _beyond_password(testbed.changed()) == {}, "rollback leaves the directory as it was, but the password"
    records = testbed.journal(summary.incident)
    assert len([r for r in records if r["type"] == "change" and r["outcome"] == "applied"
                and r["system"] == "directory" and not r["step"].startswith("undo:")]) == 8  # 4 scrambles, 4 locks
    assert [r["undoes"] for r in records if r["type"] == "undo"][:4] == [
        r["hash"] for r in reversed(records) if r["type"] == "change" and r["outcome"] == "applied"
        and r["system"] == "directory" and not r["step"].startswith("undo:") and r.get("undo")]


def test_rollback_undoes_only_the_failing_runs_changes(testbed: Testbed) -> None:
    first, second = testbed.people[0], testbed.people[1]
    incident = "inc-two-runs"
    done = testbed.run([first.uid], incident=incident)
    assert done.status == "completed"

    failed = testbed.run([second.uid], playbook=_failing_after_changes(testbed), incident=incident)

    assert failed.status == "rolled back"
    assert locked_uids(testbed) == {first.uid}, "the earlier run's lock stays"
    assert applied_counts(testbed.journal(incident), "lock") == {first.uid: 1, second.uid: 1}


def test_undo_with_the_directory_down_fails_clearly_and_can_be_run_again(testbed: Testbed) -> None:
    people = testbed.people[:3]
    summary = testbed.run([p.uid for p in people])
    assert summary.status == "completed"
    site_file = str(testbed.site_file)

    testbed.slapd.stop()
    try:
        failed = main(["undo", summary.incident, "--site", site_file])
    finally:
        testbed.slapd.start()

    assert failed == 1
    records = testbed.journal(summary.incident)
    statuses = {(r["action"], r["status"]) for r in records if r["type"] == "undo"}
    assert statuses == {("directory.unlock", "failed"), ("tickets.close", "deferred")}, \
        "the ticket is not told 'undone' before it is"
    assert all("unreachable" in r["error"] for r in records if r["type"] == "undo" and r["status"] == "failed")
    assert set(testbed.changed()) == {p.dn.lower() for p in people}, "nothing was undone yet"
    assert _ticket(testbed)["status"] != "closed"

    assert main(["undo", summary.incident, "--site", site_file]) == 0
    assert _beyond_password(testbed.changed()) == {}
    assert _ticket(testbed)["status"] == "closed"


def test_every_changing_action_that_takes_an_account_names_it_as_its_target() -> None:
    """Without ``target`` the protected-account and blast-radius guards would not see the account."""
    from tourniquet.connectors.directory import Account

    for spec in registry.all_actions():
        takes_account = [name for name, info in spec.parameters.model_fields.items()
                         if info.annotation is Account or "Account" in str(info.annotation)]
        if spec.changes and takes_account:
            assert spec.target in takes_account, f"{spec.name} changes {takes_account} but declares target={spec.target}"
