"""The incident with an identity provider: three accounts are used by someone who is still logged in.

playbooks/credential-misuse.yaml runs against the real test slapd and a site whose
``identity`` section points at Keycloak; the Keycloak is the contract fake
(tests/identity_fakes.py), injected through ``tourniquet.connectors.identity.TRANSPORT``.
Afterwards the accounts are locked in the directory, no session is left at the IdP, and
the report says per account how many sessions were ended.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import write_site
from tests.helpers import LdapAdmin, bind_result
from tests.identity_fakes import CLIENT_SECRET, FakeKeycloak
from tourniquet import journal as journal_module
from tourniquet import logs as logs_module
from tourniquet.connectors import identity
from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import Slapd
from tourniquet.engine.execute import execute_playbook
from tourniquet.engine.report import describe_change
from tourniquet.flows.respond import run_playbook
from tourniquet.journal import read_journal

PLAYBOOK = str(Path(__file__).resolve().parents[1] / "playbooks" / "credential-misuse.yaml")


@pytest.fixture
def keycloak(monkeypatch: pytest.MonkeyPatch) -> FakeKeycloak:
    fake = FakeKeycloak()
    monkeypatch.setattr(identity, "TRANSPORT", lambda config: fake.transport())
    return fake


@pytest.fixture
def keycloak_site(
    tmp_path: Path, slapd: Slapd, practitioners: Directory, ldap_admin: LdapAdmin, keycloak: FakeKeycloak
) -> Iterator[Path]:
    secret = tmp_path / "secrets" / "keycloak"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text(CLIENT_SECRET + "\n")
    secret.chmod(0o600)
    path = write_site(tmp_path, slapd, practitioners, identity={
        "kind": "keycloak", "url": "http://keycloak.test", "allow_plaintext": True, "realm": "sante",
        "client_id": "tourniquet", "client_secret": {"file": str(secret)}, "timeout": 5,
    })
    yield path
    ldap_admin.reset_all(practitioners)


def _suspects(practitioners: Directory) -> list:
    return [practitioners.practitioners[i] for i in (3, 11, 27)]


def test_containment_ends_every_session_and_reports_the_counts(
    keycloak_site: Path, keycloak: FakeKeycloak, slapd: Slapd, practitioners: Directory
) -> None:
    suspects = _suspects(practitioners)
    held = {suspects[0].uid: (3, 1), suspects[1].uid: (1, 0), suspects[2].uid: (0, 0)}
    for uid, (online, offline) in held.items():
        keycloak.add_user(uid, sessions=online, offline=offline)
    bystander = practitioners.practitioners[4]
    keycloak.add_user(bystander.uid, sessions=2)

    summary = execute_playbook(PLAYBOOK, {"accounts": [suspects[0].uid, suspects[1].rpps, suspects[2].mail]},
                               dry_run=False, site=str(keycloak_site))

    assert summary.status == "completed", summary.error
    for person in suspects:
        assert bind_result(slapd, person.dn, person.password) == "invalidCredentials"
        assert (keycloak.session_count(person.uid), keycloak.offline_count(person.uid)) == (0, 0)
    assert keycloak.session_count(bystander.uid) == 2
    report = Path(str(summary.report)).read_text()
    for uid, (online, offline) in held.items():
        outcome = "applied" if online or offline else "already so"
        change = describe_change({"sessions": online, "offline_sessions": offline}, {"sessions": 0, "offline_sessions": 0})
        assert f"| {uid} | {outcome} | end_sessions | {change} |" in report
    ended = [r for r in read_journal(Path(str(summary.journal)))
             if r["type"] == "change" and r["operation"] == "end_sessions" and r["outcome"] == "applied"]
    assert sorted(r["account"] for r in ended) == sorted([suspects[0].uid, suspects[1].uid])


def test_plan_lists_the_sessions_it_would_end_and_ends_none(
    keycloak_site: Path, keycloak: FakeKeycloak, practitioners: Directory
) -> None:
    suspect = _suspects(practitioners)[0]
    keycloak.add_user(suspect.uid, sessions=2)

    summary = execute_playbook(PLAYBOOK, {"accounts": [suspect.uid]}, dry_run=True, site=str(keycloak_site))

    assert summary.status == "planned"
    [planned] = [c for c in summary.changes if c.operation == "end_sessions"]
    assert (planned.before, planned.after, planned.outcome) == ({"sessions": 2, "offline_sessions": 0},
                                                                {"sessions": 0, "offline_sessions": 0}, "planned")
    assert keycloak.writes() == [] and keycloak.session_count(suspect.uid) == 2


def test_sessions_that_survive_the_logout_fail_the_run(
    keycloak_site: Path, keycloak: FakeKeycloak, practitioners: Directory
) -> None:
    suspect = _suspects(practitioners)[0]
    keycloak.add_user(suspect.uid, sessions=2)
    keycloak.sticky_sessions = True

    summary = execute_playbook(PLAYBOOK, {"accounts": [suspect.uid]}, dry_run=False, site=str(keycloak_site))

    assert summary.status == "completed with errors"
    assert "still alive" in (summary.error or "")
    assert summary.steps["end_sessions"] == "completed with errors"
    assert summary.steps["reset"] == "completed", "the directory containment is done before the IdP is asked"


def test_identity_provider_down_still_contains_in_the_directory_and_fails_loudly(
    keycloak_site: Path, keycloak: FakeKeycloak, slapd: Slapd, practitioners: Directory, ldap_admin: LdapAdmin
) -> None:
    """Keycloak answers 503 to every call (down for the whole run): the lock, the password reset, the
    ticket and the data scope still happen; the run ends 'completed with errors' naming the account whose
    sessions could not be ended (and the IdP steps after it), so the flow run ends Failed and nobody mistakes it for a clean run."""
    suspect = _suspects(practitioners)[0]
    keycloak.add_user(suspect.uid, sessions=2)
    keycloak.down = True

    summary = execute_playbook(PLAYBOOK, {"accounts": [suspect.uid]}, dry_run=False, site=str(keycloak_site))

    assert summary.status == "completed with errors"
    assert f"end_sessions {suspect.uid}" in (summary.error or "")
    assert bind_result(slapd, suspect.dn, suspect.password) == "invalidCredentials"
    assert [v.upper() for v in ldap_admin.attributes(suspect.dn, ["pwdReset"])["pwdReset"]] == ["TRUE"]
    assert summary.results["ticket"]["outcome"] == "applied"
    assert [(f["step"], f["account"]) for f in summary.failures] == [
        ("end_sessions", suspect.uid), ("idp_disable", suspect.uid), ("revocation", "")]
    assert keycloak.session_count(suspect.uid) == 2, "nothing pretended: the sessions are still there"


def test_prefect_run_retries_a_keycloak_restart(
    prefect_harness: None, keycloak_site: Path, keycloak: FakeKeycloak, practitioners: Directory
) -> None:
    """Keycloak answers 503 while it restarts: the step's retries (Prefect task retries) get through."""
    suspect = _suspects(practitioners)[0]
    keycloak.add_user(suspect.uid, sessions=2)
    keycloak.unavailable_for = 1

    result = run_playbook(PLAYBOOK, {"accounts": [suspect.uid]}, site=str(keycloak_site))

    assert result["status"] == "completed"
    assert keycloak.session_count(suspect.uid) == 0 and keycloak.unavailable_for == 0
    assert "| applied | end_sessions | sessions: 2 → 0 |" in Path(result["report"]).read_text()


def test_no_client_secret_or_token_is_written_anywhere(
    keycloak_site: Path, keycloak: FakeKeycloak, practitioners: Directory,
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Masking is switched off, so this proves the secret and tokens are never written, not merely masked."""
    monkeypatch.setattr(journal_module, "mask", lambda text: text)
    monkeypatch.setattr(logs_module, "mask", lambda text: text)
    caplog.set_level(logging.DEBUG)
    for name in ("tourniquet", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    suspects = _suspects(practitioners)
    for person in suspects:
        keycloak.add_user(person.uid, sessions=1, offline=1)
    keycloak.token_lifetime = 1  # expires at once: every call needs a fresh token, so many are issued

    plan = execute_playbook(PLAYBOOK, {"accounts": [p.uid for p in suspects]}, dry_run=True, site=str(keycloak_site))
    run = execute_playbook(PLAYBOOK, {"accounts": [p.uid for p in suspects]}, dry_run=False, site=str(keycloak_site))

    assert run.status == "completed" and len(keycloak.issued) > 3
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "change.applied" in logged and "HTTP Request" in logged  # the capture did see the run
    written = [logged]
    for path in (plan.journal, plan.report, run.journal, run.report):
        written.append(Path(str(path)).read_text())
    written.extend(str(failure) for failure in run.failures)
    everything = "\n".join(written)
    for secret in [CLIENT_SECRET, *keycloak.issued]:
        assert secret not in everything
