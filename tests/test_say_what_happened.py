"""Say only what happened: the ticket, the report, the command's last lines and its exit code follow from the journal.

Scenarios on the session's real slapd (a site with no identity provider, as a small hospital has) and on
the guardrail testbed's slapd (protected look-alikes inside the people subtree):

- three accounts contained: the ticket says the identity steps were *skipped* (no IdP), never "handled";
- a mistyped id beside a real one: exit 4, "1 of 2 contained; refused: … (no such account)", the contained
  account named on a short line before the long ones, a Completed "Partially contained" Prefect run;
- only a protected account: exit 1, the ticket says nothing was contained and why;
- plan = result: what the plan lists as changes is what the run applies, the reset the scramble implies
  said so in both;
- a plan over the blast radius says first that the run will need an approval, and who can give it (exit 3).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.guardrails_testbed import Testbed, private_slapd, testbed  # noqa: F401  (fixtures)
from tests.helpers import LdapAdmin
from tourniquet.cli.main import main
from tourniquet.demo.practitioners import Directory
from tourniquet.engine.execute import execute_playbook
from tourniquet.journal import read_journal
from tourniquet.outcomes import ExitCode, fold

PLAYBOOK = str(Path(__file__).resolve().parents[1] / "playbooks" / "credential-misuse.yaml")


def _ticket(site_file: Path) -> dict[str, Any]:
    tickets = list((site_file.parent / "tickets").glob("*.json"))
    assert len(tickets) == 1, tickets
    return json.loads(tickets[0].read_text(encoding="utf-8"))


def test_a_site_without_identity_provider_ticket_says_skipped_not_handled(
    site_file: Path, practitioners: Directory
) -> None:
    suspects = sorted(p.uid for p in practitioners.practitioners[5:8])

    summary = execute_playbook(PLAYBOOK, {"accounts": suspects, "reason": "ARS alert 7"}, dry_run=False,
                               site=str(site_file))

    ticket = _ticket(site_file)
    body = ticket["body"]
    assert ticket["title"] == "Credential misuse: 3 of 3 accounts contained"
    assert "handled" not in body and "disabled: 3" not in body
    names = ", ".join(suspects)
    assert f"end_sessions (identity.end_sessions): skipped 3 ({names}) — no identity provider configured" in body
    assert f"idp_disable (identity.disable): skipped 3 ({names}) — no identity provider configured" in body
    assert f"lock (directory.lock): applied 3 ({names})" in body
    assert f"contained: {names}" in body
    report = Path(str(summary.report)).read_text(encoding="utf-8")
    assert "**3 of 3 accounts contained**" in report
    assert "skipped — no identity provider configured" in report


def test_a_mistyped_id_beside_a_real_one_exits_4_and_names_both(
    prefect_harness: None, site_file: Path, practitioners: Directory, capsys: pytest.CaptureFixture[str]
) -> None:
    real = practitioners.practitioners[12].uid

    code = main(["run", PLAYBOOK, "--site", str(site_file), "-i", f"accounts=jdupnt,{real}",
                 "--incident", "inc-partial-1"])

    captured = capsys.readouterr()
    assert code == ExitCode.PARTIAL == 4, captured.out + captured.err
    printed = captured.out.splitlines()
    lines = printed[next(i for i, line in enumerate(printed) if line.startswith("RUN: ")):]  # after the log lines
    assert lines[0].endswith(": 1 of 2 contained; refused: jdupnt (no such account)"), lines[0]
    assert lines[1] == f"  contained: {real}", "the contained account, on a short line before the long ones"
    assert captured.err.strip().splitlines()[-1] == "PARTIAL: 1 of 2 contained; refused: jdupnt (no such account)"
    ticket = _ticket(site_file)
    assert ticket["title"] == "Credential misuse: 1 of 2 contained; refused: jdupnt (no such account)"


def test_a_partial_containment_is_a_completed_prefect_run_named_partially_contained(
    prefect_harness: None, site_file: Path, practitioners: Directory
) -> None:
    from tourniquet.flows.respond import run_playbook

    real = practitioners.practitioners[13].uid

    state = run_playbook(PLAYBOOK, {"accounts": ["jdupnt", real]}, site=str(site_file), incident="inc-partial-2",
                         return_state=True)

    assert state.is_completed() and state.name == "Partially contained"
    assert state.message == "1 of 2 contained; refused: jdupnt (no such account)"
    result = state.result()
    assert isinstance(result, dict)
    assert result["outcome"]["contained"] == [real] and result["outcome"]["exit_code"] == 4


def test_a_run_naming_only_a_protected_account_contains_nothing_and_says_why(
    prefect_harness: None, testbed: Testbed, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    code = main(["run", str(testbed.playbook()), "--site", str(testbed.site_file), "-i", "accounts=breakglass-ward",
                 "--incident", "inc-protected-1"])

    captured = capsys.readouterr()
    assert code == ExitCode.NONE == 1, captured.out + captured.err
    assert "nothing contained: breakglass-ward is protected" in captured.err
    ticket = _ticket(testbed.site_file)
    assert ticket["title"] == "Credential misuse: nothing contained: breakglass-ward is protected"
    assert "not contained (refused): breakglass-ward is protected" in ticket["body"]
    assert "contained: none" in ticket["body"]
    assert testbed.changed() == {}


def test_plan_lists_as_changes_what_the_run_applies(site_file: Path, practitioners: Directory,
                                                    ldap_admin: LdapAdmin) -> None:
    suspects = [p.uid for p in practitioners.practitioners[20:23]]

    plan = execute_playbook(PLAYBOOK, {"accounts": suspects}, dry_run=True, site=str(site_file))
    run = execute_playbook(PLAYBOOK, {"accounts": suspects}, dry_run=False, site=str(site_file))

    planned = {(c.target, c.operation) for c in plan.changes if c.outcome == "planned"}
    applied = {(c.target, c.operation) for c in run.changes if c.outcome == "applied"}
    assert planned == applied, "what the plan lists as changes is what the run applied"
    for summary in (plan, run):
        implied = {(c.target, c.operation, c.implied_by) for c in summary.changes if c.implied_by}
        assert implied == {(uid, "force_password_reset", "scramble_password") for uid in suspects}
    names = ", ".join(sorted(suspects))
    assert f"reset (directory.force_password_reset): already so 3 ({names}) — set by scramble_password" \
        in plan.outcome().text()
    assert f"reset (directory.force_password_reset): already so 3 ({names}) — set by scramble_password" \
        in run.outcome().text()


def test_a_plan_over_the_blast_radius_names_the_approval_first(
    site_file: Path, practitioners: Directory, capsys: pytest.CaptureFixture[str]
) -> None:
    accounts = [p.uid for p in practitioners.practitioners[30:55]]  # 25 > the playbook's 20

    code = main(["plan", PLAYBOOK, "--site", str(site_file), "-i", "accounts=" + ",".join(accounts)])

    printed = capsys.readouterr().out.splitlines()
    out = printed[next(i for i, line in enumerate(printed) if line.startswith("PLAN ")):]  # after the log lines
    assert code == ExitCode.NEEDS_APPROVAL == 3
    assert out[0].endswith(": needs approval first (scramble: 25 accounts exceed the limit of 20); 25 of 25 accounts planned"), out[0]
    asks = next(i for i, line in enumerate(out) if "approval needed at step scramble" in line)
    first_change = next(i for i, line in enumerate(out) if line.startswith("  planned  "))
    assert asks < first_change, "what the run will ask comes before the list of changes"
    assert "tourniquet approve" in out[asks]


def test_every_renderer_of_a_real_run_agrees_with_its_journal(site_file: Path, practitioners: Directory) -> None:
    suspects = [p.uid for p in practitioners.practitioners[40:42]]

    summary = execute_playbook(PLAYBOOK, {"accounts": [*suspects, "nobody-x"]}, dry_run=False, site=str(site_file))

    records = list(read_journal(Path(str(summary.journal))))
    again = fold(records, run=[r for r in records if r["type"] == "run"][-1]["run"])
    assert again.headline() == summary.outcome().headline() == "2 of 3 contained; refused: nobody-x (no such account)"
    assert summary.as_result()["outcome"]["exit_code"] == 4
