"""The fold of a run's journal into outcomes: one vocabulary, headlines and exit codes that follow from the journal.

Scenarios as a responder meets them, written as the journal records a run leaves: three accounts
contained on a site without an identity provider (the IdP steps are skips, never work done), a
mistyped id beside a real one (partial), a run naming only a protected account (nothing contained),
a plan that will need an approval (said first), a reset the scramble implies.
"""

from __future__ import annotations

from typing import Any

from tourniquet.outcomes import ExitCode, Kind, fold

RUN = "run-1"


def _record(record_type: str, /, **fields: Any) -> dict[str, Any]:
    return {"type": record_type, "run": RUN, "incident": "inc-1", **fields}


def _started(dry_run: bool = False) -> list[dict[str, Any]]:
    return [_record("run", status="started", dry_run=dry_run)]


def _step(step: str, action: str) -> dict[str, Any]:
    return _record("step", step=step, action=action, status="started")


def _change(step: str, account: str, operation: str, outcome: str, system: str = "directory",
            **extra: Any) -> dict[str, Any]:
    return _record("change", step=step, action=f"{system}.{operation}", system=system, target=account,
                   account=account, operation=operation, before={}, after={"x": 1}, outcome=outcome, **extra)


def _contained(accounts: list[str], *, idp: str = "none", dry_run: bool = False) -> list[dict[str, Any]]:
    outcome = "planned" if dry_run else "applied"
    records = _started(dry_run) + [_step("resolve", "directory.resolve"), _step("lock", "directory.lock"),
                                   _step("end_sessions", "identity.end_sessions")]
    for account in accounts:
        records.append(_change("lock", account, "lock", outcome))
        if idp == "none":
            records.append(_record("skipped", step="end_sessions", action="identity.end_sessions", system="identity",
                                   account=account, reason="no identity provider configured"))
        else:
            records.append(_change("end_sessions", account, "end_sessions", outcome, system="identity"))
    return records


def test_three_accounts_contained_on_a_site_without_idp_say_so_and_no_more() -> None:
    outcomes = fold(_contained(["a", "b", "c"]), run=RUN)

    assert outcomes.headline() == "3 of 3 accounts contained"
    assert outcomes.exit_code() is ExitCode.CONTAINED
    assert outcomes.reached_line() == "contained: a, b, c"
    text = outcomes.text()
    assert "end_sessions (identity.end_sessions): skipped 3 (a, b, c) — no identity provider configured" in text
    assert "lock (directory.lock): applied 3 (a, b, c)" in text
    assert "handled" not in text and "applied 3 (a, b, c) — no identity" not in text
    assert outcomes.by_system() == {"directory": {Kind.APPLIED: 3}, "identity": {Kind.SKIPPED: 3}}


def test_a_mistyped_id_beside_a_real_one_is_a_partial_containment() -> None:
    records = _contained(["mmartin"]) + [_record(
        "failure", step="resolve", item="jdupnt", account="jdupnt", kind="AccountNotFound",
        error="refused: 'jdupnt': no account with uid='jdupnt' under ou=people,dc=chu,dc=fr")]

    outcomes = fold(records, run=RUN)

    assert outcomes.headline() == "1 of 2 contained; refused: jdupnt (no such account)"
    assert outcomes.exit_code() is ExitCode.PARTIAL
    assert outcomes.state_name == "Partially contained"
    assert outcomes.reached() == ["mmartin"]


def test_only_a_protected_account_is_nothing_contained() -> None:
    records = _started() + [_step("lock", "directory.lock"), _record(
        "refused", step="lock", action="directory.lock", account="breakglass-ward2",
        reason="protected by 'uid=breakglass-*'")]

    outcomes = fold(records, run=RUN)

    assert outcomes.headline() == "nothing contained: breakglass-ward2 is protected"
    assert outcomes.exit_code() is ExitCode.NONE
    assert outcomes.state_name == "Not contained"


def test_a_failure_after_a_change_is_not_contained_and_says_where() -> None:
    records = _contained(["a", "b"], idp="keycloak")
    records.append(_record("failure", step="end_sessions", item="b", account="b", kind="TransientError",
                           error="keycloak unreachable"))

    outcomes = fold(records, run=RUN)

    assert outcomes.headline() == "1 of 2 contained; failed: b (end_sessions: keycloak unreachable)"
    assert outcomes.exit_code() is ExitCode.PARTIAL


def test_only_skips_are_not_a_containment() -> None:
    records = _started() + [_record("skipped", step="end_sessions", system="identity", account="a",
                                    reason="no identity provider configured")]

    outcomes = fold(records, run=RUN)

    assert outcomes.reached() == []
    assert outcomes.exit_code() is ExitCode.NONE
    assert outcomes.headline() == "nothing contained: a (end_sessions: no identity provider configured)"


def test_a_plan_names_the_approval_it_will_need_first() -> None:
    records = _contained([f"u{i:02}" for i in range(25)], dry_run=True)
    records.insert(3, _record("approval", step="lock", status="would be required",
                              reason="25 accounts exceed the limit of 20"))

    outcomes = fold(records, run=RUN)

    assert outcomes.headline().startswith("needs approval first (lock: 25 accounts exceed the limit of 20); "
                                          "25 of 25 accounts planned")
    assert outcomes.exit_code() is ExitCode.NEEDS_APPROVAL
    assert outcomes.lines()[2].startswith("approval needed at step lock: 25 accounts exceed the limit of 20")


def test_a_reset_the_scramble_implies_is_said_the_same_in_plan_and_run() -> None:
    plan = _started(True) + [_change("reset", "a", "force_password_reset", "noop", implied_by="scramble_password")]
    run = _started() + [_change("reset", "a", "force_password_reset", "noop", implied_by="scramble_password")]

    planned, done = fold(plan, run=RUN), fold(run, run=RUN)

    assert "already so 1 (a) — set by scramble_password" in planned.text()
    assert "already so 1 (a) — set by scramble_password" in done.text()


def test_other_runs_records_and_unconfirmed_intents() -> None:
    records = _contained(["a"]) + [{**_change("lock", "z", "lock", "applied"), "run": "other"}]
    records.append(_record("intent", step="lock", target="b", account="b", operation="lock", after={"x": 1},
                           system="directory"))

    outcomes = fold(records, run=RUN)

    assert sorted(outcomes.accounts) == ["a", "b"]
    assert outcomes.accounts["b"].entries["lock"].kind is Kind.FAILED


def test_a_queued_ticket_is_said_to_wait_in_the_outbox() -> None:
    records = _contained(["a"]) + [
        _record("change", step="ticket", system="tickets:rt", target="ticket:inc-1", account=None,
                operation="open_ticket", after={}, outcome="applied"),
        _record("ticket", step="ticket", status="queued")]

    outcomes = fold(records, run=RUN)

    assert outcomes.others[-1].kind is Kind.QUEUED
    assert outcomes.others[-1].why == "waiting in the outbox: the ticket system was unreachable"
    assert "open_ticket" not in outcomes.text(), "the ticket's own writes are not in the text the ticket carries"


def test_exit_codes_have_a_description_each() -> None:
    assert [int(code) for code in ExitCode] == [0, 1, 2, 3, 4, 70, 130]
    assert all(code.description for code in ExitCode)


def test_a_direct_dn_step_refused_by_the_guard_is_said_refused_never_applied() -> None:
    """``directory.lock`` handed ``{dn: "ou=people,…", uid: "people-ou"}``: the guard refuses it (journaled as
    ``refused``, the integrity half), and every word rendered from the fold says so."""
    records = _started() + [_step("lock_0", "directory.lock"), _step("lock_1", "directory.lock"), _record(
        "refused", step="lock_0", action="directory.lock", account="people-ou",
        reason="not a person's account: 'ou=people,dc=sante,dc=example' is the accounts' container "
               "(ou=people,dc=sante,dc=example), not an account"),
        _change("lock_1", "jdupont", "lock", "applied")]

    outcomes = fold(records, run=RUN)

    assert outcomes.headline() == "1 of 2 contained; refused: people-ou (lock_0: not a person's account)"
    assert outcomes.exit_code() is ExitCode.PARTIAL
    assert "lock_0 (directory.lock): refused 1 (people-ou) — not a person's account" in outcomes.text()
    assert "applied 1 (people-ou)" not in outcomes.text()


def test_a_hostile_id_is_named_short_and_printable() -> None:
    hostile = "x\u0007\n" + "y" * 5000
    records = _contained(["ok"]) + [_record("failure", step="resolve", item=hostile, account=hostile,
                                            kind="AccountNotFound", error=f"refused: no account with uid={hostile!r}")]

    headline = fold(records, run=RUN).headline()

    assert "\n" not in headline and "\u0007" not in headline and len(headline) < 200
    assert headline.startswith("1 of 2 contained; refused: x\\x07\\nyyy")


def test_the_exit_codes_page_shows_the_codes_as_the_code_defines_them() -> None:
    from pathlib import Path

    from tourniquet.outcomes import exit_codes_markdown

    page = (Path(__file__).resolve().parents[1] / "docs" / "reference" / "exit-codes.md").read_text(encoding="utf-8")
    assert exit_codes_markdown() in page


def test_a_rolled_back_run_contains_nothing_and_says_so() -> None:
    records = _contained(["a", "b"], idp="keycloak")
    for record in records:
        if record["type"] == "change":
            record["hash"] = f"h-{record['account']}-{record['step']}"
    records += [_record("undo", undoes="h-a-lock", status="done"), _record("undo", undoes="h-b-lock", status="done"),
                _record("run", status="rolled back", error="step scope failed: audit log unreachable")]

    outcomes = fold(records, run=RUN)

    assert outcomes.reached() == []
    assert outcomes.exit_code() is ExitCode.PARTIAL, "end_sessions still took: the run did part of its work"
    assert outcomes.headline() == ("0 of 2 contained; failed: a (lock: rolled back: the run undid it), b (lock: "
                                   "rolled back: the run undid it); the run was rolled back: step scope failed: "
                                   "audit log unreachable")
