"""The identity.* actions on one account: before/after as the report shows them, verification, undo.

The IdP is the fake Keycloak (tests/identity_fakes.py) behind httpx.MockTransport; the
site is a stand-in exposing only ``identity`` (what the actions use).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.identity_fakes import CLIENT_SECRET, FakeKeycloak, FakeLemonLdapCli
from tourniquet import registry
from tourniquet.actions import identity as actions
from tourniquet.actions.context import ActionContext
from tourniquet.connectors.directory import Account
from tourniquet.connectors.identity import IdentityConfig, Unsupported
from tourniquet.connectors.identity.keycloak import KeycloakClient
from tourniquet.connectors.identity.lemonldap import LemonLdapClient
from tourniquet.engine.undo import pending_undo, undo_records
from tourniquet.errors import VerificationFailed
from tourniquet.journal import Journal, read_journal

JDUPONT = Account(dn="uid=jdupont,ou=people,dc=sante,dc=example", uid="jdupont", rpps="10101010104")


@dataclass
class StubSite:
    identity: Any
    name: str = "test"


@pytest.fixture
def keycloak() -> FakeKeycloak:
    return FakeKeycloak()


@pytest.fixture
def site(keycloak: FakeKeycloak, tmp_path: Path) -> Iterator[StubSite]:
    secret = tmp_path / "secret"
    secret.write_text(CLIENT_SECRET)
    config = IdentityConfig(kind="keycloak", url="http://keycloak.test", allow_plaintext=True, realm="sante",
                            client_id="tourniquet", client_secret={"file": str(secret)})  # type: ignore[arg-type]
    client = KeycloakClient(config, transport=keycloak.transport(), clock=lambda: keycloak.now)
    yield StubSite(client)
    client.close()


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal.jsonl", incident="inc-test")


def context(site: Any, journal: Journal, name: str, *, dry_run: bool = False) -> ActionContext:
    spec = registry.get(name)
    assert spec is not None
    return ActionContext(incident="inc-test", playbook="test", step=name.split(".")[1], action=name,
                         dry_run=dry_run, site=site, journal=journal, undo_action=spec.undo)  # type: ignore[arg-type]


def changes(journal: Journal) -> list[dict[str, Any]]:
    return [r for r in journal.records() if r["type"] == "change"]


def test_end_sessions_reports_counts_and_leaves_none(keycloak: FakeKeycloak, site: StubSite, journal: Journal) -> None:
    """The attacker holds 3 browser sessions and an offline token on the mobile app: all end, counts journaled."""
    keycloak.add_user("jdupont", sessions=3, offline=1)

    result = actions.end_sessions(context(site, journal, "identity.end_sessions"), JDUPONT)

    assert result.outcome == "applied"
    assert (result.before, result.after) == ({"sessions": 3, "offline_sessions": 1}, {"sessions": 0, "offline_sessions": 0})
    assert keycloak.session_count("jdupont") == 0 and keycloak.offline_count("jdupont") == 0
    [change] = changes(journal)
    assert change["outcome"] == "applied" and change["undo"] is None
    evidence = next(r for r in journal.records() if r["type"] == "sessions")
    assert {s["ip"] for s in evidence["sessions"]} == {"203.0.113.7"} and len(evidence["sessions"]) == 4


def test_sessions_still_alive_fail_the_step(keycloak: FakeKeycloak, site: StubSite, journal: Journal) -> None:
    """Logout answers 204 but the sessions are still listed afterwards: the step fails, loudly."""
    keycloak.add_user("jdupont", sessions=2)
    keycloak.sticky_sessions = True

    with pytest.raises(VerificationFailed, match="still alive"):
        actions.end_sessions(context(site, journal, "identity.end_sessions"), JDUPONT)

    assert changes(journal)[-1]["outcome"] == "failed"


def test_dry_run_and_second_run_send_nothing(keycloak: FakeKeycloak, site: StubSite, journal: Journal) -> None:
    """A plan reads the sessions but ends none; once ended, a second run is a no-op."""
    keycloak.add_user("jdupont", sessions=2)

    planned = actions.end_sessions(context(site, journal, "identity.end_sessions", dry_run=True), JDUPONT)
    assert planned.outcome == "planned" and keycloak.writes() == []
    assert keycloak.session_count("jdupont") == 2

    actions.end_sessions(context(site, journal, "identity.end_sessions"), JDUPONT)
    writes = len(keycloak.writes())
    again = actions.end_sessions(context(site, journal, "identity.end_sessions"), JDUPONT)
    assert again.outcome == "noop" and len(keycloak.writes()) == writes


def test_no_identity_provider_changes_nothing_and_says_so(journal: Journal) -> None:
    """The demo site has no IdP: each identity action reports it and succeeds without changing anything."""
    site = StubSite(None)
    for name in ("identity.end_sessions", "identity.disable", "identity.require_actions",
                 "identity.revoke_offline_tokens"):
        result = registry.get(name).function(context(site, journal, name), JDUPONT)  # type: ignore[union-attr]
        assert (result.outcome, result.message) == ("skipped", "no identity provider configured")
    assert actions.sessions(context(site, journal, "identity.sessions"), JDUPONT).message == actions.NO_IDP
    assert changes(journal) == []


def test_require_actions_undo_removes_only_what_it_added(
    keycloak: FakeKeycloak, site: StubSite, journal: Journal
) -> None:
    """The user already had VERIFY_EMAIL and UPDATE_PASSWORD; the incident adds CONFIGURE_TOTP;
    a false alarm's undo takes CONFIGURE_TOTP away and leaves the other two."""
    keycloak.add_user("jdupont", required_actions=["VERIFY_EMAIL", "UPDATE_PASSWORD"])

    result = actions.require_actions(context(site, journal, "identity.require_actions"), JDUPONT)
    assert result.after == {"required_actions": ["CONFIGURE_TOTP", "UPDATE_PASSWORD", "VERIFY_EMAIL"]}
    assert keycloak.puts == [{"requiredActions": ["VERIFY_EMAIL", "UPDATE_PASSWORD", "CONFIGURE_TOTP"]}]

    undone = undo_records(pending_undo(journal.records()), site, journal, "test")  # type: ignore[arg-type]

    assert [u["status"] for u in undone] == ["done"]
    assert keycloak.user("jdupont")["requiredActions"] == ["VERIFY_EMAIL", "UPDATE_PASSWORD"]


def test_disable_is_undone_by_enable(keycloak: FakeKeycloak, site: StubSite, journal: Journal) -> None:
    """disable ↔ enable: the journal's undo record puts the user back as it was; sessions are not touched."""
    keycloak.add_user("jdupont", sessions=1)

    result = actions.disable(context(site, journal, "identity.disable"), JDUPONT)
    assert (result.before, result.after) == ({"enabled": True}, {"enabled": False})
    assert "does not end open sessions" in result.message
    assert keycloak.user("jdupont")["enabled"] is False and keycloak.session_count("jdupont") == 1

    undo_records(pending_undo(journal.records()), site, journal, "test")  # type: ignore[arg-type]
    assert keycloak.user("jdupont")["enabled"] is True
    assert pending_undo(list(read_journal(journal.path))) == []


def test_revoke_offline_tokens(keycloak: FakeKeycloak, site: StubSite, journal: Journal) -> None:
    """Offline tokens are listed per client through the user's consents and revoked client by client."""
    keycloak.add_user("jdupont", sessions=1, offline=2)

    result = actions.revoke_offline_tokens(context(site, journal, "identity.revoke_offline_tokens"), JDUPONT)

    assert (result.before, result.after) == ({"offline_tokens": ["mobile"]}, {"offline_tokens": []})
    assert keycloak.offline_count("jdupont") == 0 and keycloak.session_count("jdupont") == 1


def test_sessions_is_read_only_evidence(keycloak: FakeKeycloak, site: StubSite, journal: Journal) -> None:
    """identity.sessions lists online and offline sessions, journals them, and sends no write."""
    keycloak.add_user("jdupont", sessions=2, offline=1)

    result = actions.sessions(context(site, journal, "identity.sessions"), JDUPONT)

    assert (result.sessions, result.offline_sessions, len(result.details)) == (2, 1, 3)
    assert keycloak.writes() == []
    assert any(r["type"] == "sessions" for r in journal.records())


def test_unknown_at_the_idp_can_be_skipped(keycloak: FakeKeycloak, site: StubSite, journal: Journal) -> None:
    """An account that never logged in through the IdP: missing: skip reports it instead of failing."""
    result = actions.end_sessions(context(site, journal, "identity.end_sessions"), JDUPONT, missing="skip")
    assert result.outcome == "skipped" and "not found" in result.message


def test_lemonldap_sessions_end_and_offline_is_not_claimed(journal: Journal) -> None:
    """LemonLDAP::NG via the CLI: SSO sessions counted and deleted; no offline count is invented."""
    cli = FakeLemonLdapCli()
    cli.add("jdupont", 2)
    site = StubSite(LemonLdapClient(IdentityConfig(kind="lemonldap", run_as="root"), runner=cli))

    result = actions.end_sessions(context(site, journal, "identity.end_sessions"), JDUPONT)

    assert (result.before, result.after) == ({"sessions": 2}, {"sessions": 0})
    assert "cannot list" in result.message
    with pytest.raises(Unsupported):
        actions.disable(context(site, journal, "identity.disable"), JDUPONT)
