"""The ticket system (Request Tracker) is down while 50 accounts are contained, and stays down for the re-run.

Containment must not wait for a ticket: every account is locked and reset exactly once,
the ticket writes wait in the outbox (the journal says so), and running the playbook again
for the same incident changes no account a second time and queues no second ticket.
"""

from __future__ import annotations

import pytest

from tests.conftest import write_site
from tests.guardrails_testbed import (  # noqa: F401 - fixtures
    SITE_PROTECTED,
    Testbed,
    applied_counts,
    approve,
    locked_uids,
    private_slapd,
    testbed,
)
from tourniquet.demo.slapd import find_free_port

ACCOUNTS = 50


@pytest.mark.slow
def test_ticket_system_down_containment_goes_on_and_a_rerun_repeats_nothing(testbed: Testbed) -> None:
    token = testbed.tmp_path / "secrets" / "rt-token"
    token.parent.mkdir(parents=True, exist_ok=True)
    token.write_text("rt-token-for-tests\n")
    token.chmod(0o600)
    write_site(testbed.tmp_path, testbed.slapd, testbed.directory,
               tickets={"kind": "rt", "url": f"http://127.0.0.1:{find_free_port()}/rt", "token": {"file": str(token)},
                        "timeout": 2},
               limits={"max_accounts_ceiling": 50, "protected": SITE_PROTECTED})
    people = testbed.people[:ACCOUNTS]
    incident = "inc-tickets-down"

    first = testbed.run([p.uid for p in people], incident=incident, approver=approve)
    second = testbed.run([p.uid for p in people], incident=incident, approver=approve)

    assert first.status == second.status == "completed", (first.error, second.error)
    assert locked_uids(testbed) == {p.uid for p in people}
    records = testbed.journal(incident)
    for operation in ("scramble_password", "lock"):  # the scramble sets pwdReset: the reset step is a no-op
        assert applied_counts(records, operation) == {p.uid: 1 for p in people}, operation
    tickets = [r for r in records if r["type"] == "ticket"]
    assert tickets and {r["status"] for r in tickets} == {"queued"}, "the journal says the ticket is waiting"
    opened = [r for r in tickets if r["operation"] == "open_ticket"]
    assert opened[-1]["pending"] == opened[0]["pending"], "the re-run queued no second ticket"
