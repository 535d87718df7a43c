"""Every renderer says what the journal holds: a property test over random mixes of outcomes.

Hypothesis writes the journal of a run: accounts, each meeting each step (two directory, two identity) with
one of applied, already so, skipped, refused, failed or nothing. The run's summary folds it; then the
shipped playbook's ticket template, the report, the command's last lines, the Prefect state and the
artifacts are rendered, and each number and each account they name is checked against the journal,
computed here on its own (not through the fold).
"""

from __future__ import annotations

import io
import re
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tourniquet.engine import expressions
from tourniquet.engine.report import account_rows, render_markdown
from tourniquet.engine.summary import RunSummary
from tourniquet.outcomes import ExitCode, fold

STEPS = [("scramble", "directory.scramble_password", "directory"), ("lock", "directory.lock", "directory"),
         ("end_sessions", "identity.end_sessions", "identity"), ("idp_disable", "identity.disable", "identity")]
WORDS = ["applied", "already so", "skipped", "refused", "failed", None]
STRENGTH = {"failed": 5, "refused": 4, "applied": 3, "already so": 1, "skipped": 0}
PLAYBOOK = Path(__file__).resolve().parents[1] / "playbooks" / "credential-misuse.yaml"

uids = st.from_regex(r"[a-z]{2,7}[0-9]{0,2}", fullmatch=True)
#: Each account meets at least one step (an account the journal never mentions is not part of the run).
words = st.tuples(*[st.sampled_from(WORDS) for _ in STEPS]).filter(lambda met: any(met))
mixes = st.dictionaries(uids, words, min_size=1, max_size=14)


def _journal(mix: dict[str, tuple[str | None, ...]]) -> list[dict[str, Any]]:
    run = "run-prop"
    records: list[dict[str, Any]] = [{"type": "run", "run": run, "status": "started", "dry_run": False,
                                      "playbook": "credential-misuse"}]
    for step, action, _ in STEPS:
        records.append({"type": "step", "run": run, "step": step, "action": action, "status": "started"})
    for account, met in mix.items():
        for (step, action, system), word in zip(STEPS, met):
            base = {"run": run, "step": step, "action": action, "account": account}
            if word in ("applied", "already so"):
                records.append({**base, "type": "change", "system": system, "target": account,
                                "operation": action.split(".")[1], "before": {}, "after": {"x": 1},
                                "outcome": "applied" if word == "applied" else "noop"})
            elif word == "skipped":
                records.append({**base, "type": "skipped", "system": system, "reason": "no identity provider configured"})
            elif word == "refused":
                records.append({**base, "type": "refused", "reason": "protected by 'uid=breakglass-*'"})
            elif word == "failed":
                records.append({**base, "type": "failure", "item": account, "kind": "TransientError",
                                "error": f"{system} unreachable"})
    records.append({"type": "run", "run": run, "status": "completed", "error": None})
    return records


def _expected(mix: dict[str, tuple[str | None, ...]]) -> tuple[list[str], list[str], dict[tuple[str, str], list[str]]]:
    """From the journal's content alone: accounts contained, accounts touched, and per (step, word) the accounts."""
    reached: list[str] = []
    touched: list[str] = []
    groups: dict[tuple[str, str], list[str]] = {}
    for account, met in sorted(mix.items()):
        present = {w for w in met if w}
        if present & {"applied", "already so"}:
            touched.append(account)
            if not present & {"refused", "failed"}:
                reached.append(account)
        for (step, _, _), word in zip(STEPS, met):
            if word:
                groups.setdefault((step, word), []).append(account)
    return reached, touched, groups


def _ticket(outcome: dict[str, Any]) -> tuple[str, str]:
    """The shipped playbook's ticket step, rendered as the engine renders it."""
    step = next(s for s in yaml.safe_load(PLAYBOOK.read_text(encoding="utf-8"))["steps"] if s["id"] == "ticket")
    scope = {"outcome": outcome, "inputs": {"reason": "alert", "accounts": []},
             "steps": {"revocation": None, "lock": {"results": [], "failed": [], "skipped": [], "count": 0}},
             "incident": {"id": "inc-prop", "run_url": "", "story_url": ""}}
    rendered = expressions.evaluate({"title": step["with"]["title"], "body": step["with"]["body"]}, scope)
    return rendered["title"], rendered["body"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mix=mixes)
def test_every_renderer_names_what_the_journal_holds(mix: dict[str, tuple[str | None, ...]],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from tourniquet.cli.playbook import _print_outcome
    from tourniquet.flows import artifacts
    from tourniquet.flows.states import run_state

    records = _journal(mix)
    reached, touched, groups = _expected(mix)
    total = len(mix)
    summary = RunSummary("inc-prop", "credential-misuse", dry_run=False, status="completed",
                         journal=Path("/nonexistent/journal.jsonl"), outcomes=fold(records, run="run-prop"))
    outcomes = summary.outcome()

    # the headline: numbers and names from the journal
    headline = outcomes.headline()
    if reached and len(reached) == total:
        assert headline == f"{total} of {total} accounts contained"
        code = ExitCode.CONTAINED
    elif not touched:
        assert headline.startswith("nothing contained: ")
        code = ExitCode.NONE
    else:
        assert headline.startswith(f"{len(reached)} of {total} contained; ")
        code = ExitCode.PARTIAL
    assert outcomes.exit_code() is code
    missing = sorted(set(mix) - set(reached))
    for account in missing[:5]:
        assert re.search(rf"(^|[:;,] ){re.escape(account)}( is protected| \()", headline), (account, headline)
    for account in reached:
        assert f" {account} " not in f" {headline} ", "a contained account is never named as not contained"

    # the ticket (the shipped template), the command's lines: each step's count and names
    title, body = _ticket(outcomes.as_dict())
    assert title == f"Credential misuse: {headline}"  # tickets.open cuts it to what a ticket system takes
    printed = io.StringIO()
    with redirect_stdout(printed):
        printed_code = _print_outcome(summary.as_result())
    assert printed_code == int(code)
    cli = printed.getvalue()
    assert cli.splitlines()[0].endswith(f": {headline}")
    contained_line = f"contained: {', '.join(reached[:10])}" if reached else "contained: none"
    for text in (body, cli):
        assert contained_line in text
        assert "handled" not in text
        for (step, word), accounts in groups.items():
            shown = ", ".join(accounts[:10])
            assert re.search(rf"^\s*{step} \([a-z._]+\): .*\b{word} {len(accounts)} \({re.escape(shown)}", text,
                             re.MULTILINE), (step, word, accounts, text)
        for step, _, _ in STEPS:
            assert sum(len(a) for (s, _), a in groups.items() if s == step) == sum(
                int(n) for n in re.findall(rf"^\s*{step} \(.*$", text, re.MULTILINE)
                for n in re.findall(r"(?:applied|already so|skipped|refused|failed) (\d+) \(", n)), step

    # the report and the accounts table artifact: each account's row, each step's word
    report = render_markdown(summary)
    assert f"**{headline}**" in report
    rows = {row["account"]: row for row in account_rows(summary)}
    assert sorted(rows) == sorted(mix)
    for account, met in mix.items():
        assert rows[account]["outcome"] == ("contained" if account in reached else "not contained")
        for (step, _, _), said in zip(STEPS, met):
            assert rows[account].get(step, "").split(" — ")[0] == (said or "")
            if said:
                assert f"| {account} | {rows[account]['outcome']} |" in report

    # the Prefect state and the artifacts published
    if code is not ExitCode.NONE:
        state = run_state(outcomes, summary.as_result())
        assert state.message == headline and state.is_completed()
        assert state.name == {ExitCode.CONTAINED: "Contained", ExitCode.PARTIAL: "Partially contained"}[code]
    sent: list[tuple[str, Any]] = []
    monkeypatch.setattr(artifacts, "create_markdown_artifact",
                        lambda markdown, key, description: sent.append((description, markdown)))
    monkeypatch.setattr(artifacts, "create_table_artifact",
                        lambda table, key, description: sent.append((description, table)))
    artifacts.publish(summary, report, {})
    assert all(headline in description for description, _ in sent)
    assert [row for description, table in sent if isinstance(table, list) for row in table] == account_rows(summary)


def test_the_strength_order_is_the_folds() -> None:
    """The expectation above ranks words as the fold does (a failure is never hidden by a success)."""
    from tourniquet.outcomes import STRENGTH as FOLD

    assert sorted(STRENGTH, key=STRENGTH.__getitem__) == [w.value for w in sorted(FOLD, key=FOLD.__getitem__)
                                                          if w.value in STRENGTH]
