"""The run report fits the Prefect UI's artifact page: the outcome of each change is in sight.

Scenario: a containment of one account changed two attributes with long values, and the ticket
step failed with a long message. In the report's Changes table the outcome comes right after the
account, each change is one short ``attribute: before → after`` cell, and no cell runs on.
"""

from __future__ import annotations

from tourniquet.actions.context import PlannedChange
from tourniquet.engine.report import CELL, describe_change, render_markdown
from tourniquet.engine.run import RunSummary


def _summary() -> RunSummary:
    lock = PlannedChange(step="lock", action="directory.lock", system="directory", target="uid=jdupont,ou=people",
                         operation="lock", before={"pwdAccountLockedTime": []},
                         after={"pwdAccountLockedTime": ["000001010000Z"]}, outcome="applied", account="jdupont")
    groups = PlannedChange(step="groups", action="directory.remove_groups", system="directory", target="jdupont",
                           operation="remove_groups", before={"memberOf": [f"cn=group-{n},ou=groups" for n in range(9)]},
                           after={"memberOf": []}, outcome="planned", account="jdupont")
    summary = RunSummary("inc-20261201-624586d0", "credential-misuse", dry_run=False, status="completed with errors",
                         changes=[lock, groups])
    summary.failures.append({"step": "ticket", "item": "", "account": "", "kind": "TransientError",
                             "error": "rt: " + "connection refused " * 20})
    return summary


def test_the_changes_table_puts_the_outcome_next_to_the_account_and_keeps_cells_short() -> None:
    markdown = render_markdown(_summary())

    table = markdown.split("## Changes", 1)[1].split("\n\n", 2)[1].splitlines()
    assert table[0] == "| account | outcome | operation | change |"
    rows = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in table[2:]]
    assert [(r[0], r[1], r[2]) for r in rows] == [("jdupont", "applied", "lock"), ("jdupont", "planned", "remove_groups")]
    assert rows[0][3] == "pwdAccountLockedTime: (none) → 000001010000Z"
    assert all(len(cell) <= CELL for row in rows for cell in row)
    assert rows[1][3].endswith("…")
    assert "connection refused " * 20 in markdown, "the full error is still in the Failures section"


def test_a_change_reads_as_what_differs() -> None:
    assert describe_change({"pwdReset": [], "mail": ["a@x"]}, {"pwdReset": ["TRUE"], "mail": ["a@x"]}) == \
        "pwdReset: (none) → TRUE"
    assert describe_change({"ticket": "none", "content": None}, {"ticket": "open", "content": "e71b"}) == \
        "ticket: none → open; content: (none) → e71b"
