"""The access log is unreachable while 50 accounts are contained; the responder runs the playbook again.

Containment must not wait for the evidence: the accounts are locked and reset, the run
fails at the scope step with a clear error, the journal shows every change, and the re-run
(the log reachable again) freezes the scope without changing any account a second time.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

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
from tourniquet.demo.access_log import Access, patient_id, write_sqlite

ACCOUNTS = 50


def _site_with_audit(testbed: Testbed, audit: dict) -> None:
    write_site(testbed.tmp_path, testbed.slapd, testbed.directory, audit=audit,
               limits={"max_accounts_ceiling": 50, "protected": SITE_PROTECTED})


@pytest.mark.slow
@pytest.mark.parametrize("outage", ["postgresql refuses connections", "sqlite file missing"])
def test_audit_source_down_then_rerun(testbed: Testbed, outage: str) -> None:
    people = testbed.people[:ACCOUNTS]
    log_file = testbed.tmp_path / "access-log.sqlite"
    now = datetime.now(timezone.utc)
    write_sqlite([Access(now - timedelta(days=2, minutes=i), p.uid, patient_id(i)) for i, p in enumerate(people[:5])],
                 log_file)
    if outage.startswith("postgresql"):
        from tourniquet.demo.slapd import find_free_port

        _site_with_audit(testbed, {"kind": "postgresql", "dsn": f"host=127.0.0.1 port={find_free_port()} dbname=x",
                                   "timeout": 2})
    else:
        _site_with_audit(testbed, {"kind": "sqlite", "path": str(testbed.tmp_path / "moved-away.sqlite")})
    playbook = testbed.playbook(steps={"scope": {"retries": 1, "retry_delay": 0.1}})
    incident = "inc-audit-down"

    first = testbed.run([p.uid for p in people], playbook=playbook, incident=incident, approver=approve)

    assert first.status == "failed"
    assert first.error and first.error.startswith("step scope failed")
    assert "access log" in first.error
    assert locked_uids(testbed) == {p.uid for p in people}, "containment does not wait for the evidence"
    records = testbed.journal(incident)
    assert applied_counts(records, "lock") == {p.uid: 1 for p in people}
    assert applied_counts(records, "scramble_password") == {p.uid: 1 for p in people}  # (it sets pwdReset)

    _site_with_audit(testbed, {"kind": "sqlite", "path": str(log_file)})
    second = testbed.run([p.uid for p in people], playbook=playbook, incident=incident, approver=approve)

    assert second.status == "completed", second.error
    records = testbed.journal(incident)
    for operation in ("scramble_password", "lock"):
        assert applied_counts(records, operation) == {p.uid: 1 for p in people}, f"{operation} repeated"
    scope = [r for r in records if r["type"] == "scope"]
    assert len(scope) == 1 and scope[0]["people"] == 5
    assert Path(scope[0]["folder"]).is_dir()
