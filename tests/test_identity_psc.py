"""Pro Santé Connect through the platform's Keycloak broker: contract tests.

No real Keycloak can run here, so the Keycloak is :class:`tests.identity_fakes.FakeKeycloak`,
answering as Keycloak's Admin REST API documents (https://www.keycloak.org/docs-api/latest/rest-api/):
``GET /admin/realms/{realm}`` (RealmRepresentation: ``accessTokenLifespan`` in seconds, ``notBefore``),
``GET …/clients`` (ClientRepresentation: ``adminUrl``, ``attributes["access.token.lifespan"]``),
``POST …/push-revocation`` (GlobalRequestResult: ``successRequests``, ``failedRequests``),
``GET …/users/{id}/federated-identity`` (FederatedIdentityRepresentation: ``identityProvider``,
``userId``, ``userName``), ``GET …/users/{id}/credentials`` and ``DELETE …/credentials/{credentialId}``
(CredentialRepresentation: ``id``, ``type``, ``userLabel``), ``POST …/users/{id}/logout``,
``…/consents``, ``PUT …/users/{id}`` (``enabled``, ``requiredActions``).

The practitioner signs in with Pro Santé Connect (CPS card / e-CPS), brokered by the realm's
identity provider ``psc``: the platform ends its own sessions and offline tokens, disables the
brokered user (never deletes it: first-broker-login would create it again), pushes a not-before to
the clients that accept one, and says in the report and the ticket what remains: the PSC session,
and the access tokens already issued (the realm's lifespan, read from the admin API).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import write_site
from tests.helpers import LdapAdmin
from tests.identity_fakes import CLIENT_SECRET, FakeKeycloak
from tourniquet.config import load_site
from tourniquet.connectors import identity
from tourniquet.connectors.identity import IdentityConfig
from tourniquet.connectors.identity.keycloak import KeycloakClient
from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import Slapd
from tourniquet.engine.execute import execute_playbook
from tourniquet.engine.recover import conclude_investigation, recover_accounts
from tourniquet.handover import handover
from tourniquet.journal import read_journal
from tourniquet.secrets import SecretRef
from tourniquet.site import Site

PLAYBOOK = "credential-misuse"


@pytest.fixture
def keycloak(monkeypatch: pytest.MonkeyPatch) -> FakeKeycloak:
    fake = FakeKeycloak(access_token_lifespan=300, admin_urls={"portal": "https://portal.example/sso"},
                        client_lifespans={"mobile": 900})
    monkeypatch.setattr(identity, "TRANSPORT", lambda config: fake.transport())
    return fake


@pytest.fixture
def psc_site(tmp_path: Path, slapd: Slapd, practitioners: Directory, ldap_admin: LdapAdmin,
             keycloak: FakeKeycloak) -> Iterator[Path]:
    secret = tmp_path / "secrets" / "keycloak"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text(CLIENT_SECRET + "\n")
    os.chmod(secret, 0o600)
    path = write_site(tmp_path, slapd, practitioners, identity={
        "kind": "keycloak", "url": "http://keycloak.test", "allow_plaintext": True, "realm": "sante",
        "client_id": "tourniquet", "client_secret": {"file": str(secret)}, "timeout": 5,
        "username_from": "idnat", "broker_alias": "psc",
    })
    yield path
    ldap_admin.reset_all(practitioners)


def _brokered(keycloak: FakeKeycloak, person: object, *, sessions: int = 2, offline: int = 1) -> str:
    """The user first-broker-login created from PSC: username = idNat (8 + RPPS), linked to psc."""
    idnat = "8" + person.rpps  # type: ignore[attr-defined]
    keycloak.add_user(idnat, rpps=person.rpps, sessions=sessions, offline=offline)  # type: ignore[attr-defined]
    keycloak.link(idnat, "psc", idnat)
    return idnat


def _client(keycloak: FakeKeycloak) -> KeycloakClient:
    config = IdentityConfig(kind="keycloak", url="http://keycloak.test", allow_plaintext=True, realm="sante",
                            client_id="tourniquet", client_secret=SecretRef(env="TOURNIQUET_TEST_KC_SECRET"),
                            broker_alias="psc", username_from="idnat")
    return KeycloakClient(config, transport=keycloak.transport())


def test_token_policy_reads_the_realm_and_client_lifespans(monkeypatch: pytest.MonkeyPatch,
                                                          keycloak: FakeKeycloak) -> None:
    monkeypatch.setenv("TOURNIQUET_TEST_KC_SECRET", CLIENT_SECRET)
    client = _client(keycloak)
    policy = client.token_policy()
    assert (policy.access_token_lifespan, policy.longest_client_lifespan) == (300, 900)
    assert policy.clients_overriding == {"mobile": 900} and policy.clients_accepting_push == ["portal"]
    pushed = client.push_revocation()
    assert pushed.succeeded == ["https://portal.example/sso/k_push_not_before"] and pushed.failed == []
    assert ("POST", "/admin/realms/sante/push-revocation") in keycloak.requests


def test_second_factors_and_federated_links_are_read_and_removed(monkeypatch: pytest.MonkeyPatch,
                                                                  keycloak: FakeKeycloak) -> None:
    monkeypatch.setenv("TOURNIQUET_TEST_KC_SECRET", CLIENT_SECRET)
    keycloak.add_user("810101010104", rpps="10101010104")
    keycloak.link("810101010104", "psc", "810101010104")
    credential = keycloak.add_second_factor("810101010104", "otp")
    client = _client(keycloak)
    user = client.get_user(client.find_user(_account("10101010104")))
    assert [(c.type, c.label) for c in client.credentials(user)] == [("password", None), ("otp", "attacker phone")]
    assert [(f.provider, f.user_id) for f in client.federated_links(user)] == [("psc", "810101010104")]
    client.remove_credential(user, credential)
    client.remove_credential(user, credential)  # a retry: 404 "Credential not found" is already done
    assert keycloak.second_factors("810101010104") == []


def _account(rpps: str) -> object:
    from tourniquet.model import Account

    return Account(dn="uid=x,ou=people,dc=sante,dc=example", uid="x", rpps=rpps)


def test_containment_of_a_psc_user_disables_never_deletes_and_names_what_remains(
    psc_site: Path, keycloak: FakeKeycloak, practitioners: Directory, tmp_path: Path,
) -> None:
    suspect = practitioners.practitioners[56]
    idnat = _brokered(keycloak, suspect)

    summary = execute_playbook(PLAYBOOK, {"accounts": [suspect.uid], "reason": "ARS alert 12"}, dry_run=False,
                               site=str(psc_site))

    assert summary.status == "completed", summary.error
    user = keycloak.user(idnat)
    assert user["enabled"] is False, "disabled"
    assert keycloak.session_count(idnat) == 0 and keycloak.offline_count(idnat) == 0
    assert keycloak.federated[user["id"]] == [{"identityProvider": "psc", "userId": idnat, "userName": idnat}]
    deletes = [path for method, path in keycloak.writes() if method == "DELETE"]
    assert all("/consents/" in path for path in deletes), f"only consents are deleted, never a user: {deletes}"
    assert keycloak.pushes == 1
    report = Path(str(summary.report)).read_text()
    remains = report.split("## What remains", 1)[1]
    assert "up to 15 min (the realm's access token lifespan is 5 min; clients with their own: mobile 15 min)" in remains
    assert "Pro Santé Connect session (psc) cannot be ended by the platform" in remains
    assert "renew their e-CPS" in remains
    ticket = json.loads(next((tmp_path / "tickets").glob("*.json")).read_text())
    assert "up to 15 min" in json.dumps(ticket, ensure_ascii=False)
    assert "renew their e-CPS" in json.dumps(ticket, ensure_ascii=False)
    journal = list(read_journal(summary.journal))  # type: ignore[arg-type]
    residual = [r for r in journal if r["type"] == "residual"]
    assert residual and residual[0]["residual_seconds"] == 900 and residual[0]["broker"] == "psc"
    assert [r["links"] for r in journal if r["type"] == "federated"] == [
        [{"provider": "psc", "user_id": idnat, "user_name": idnat}]]


def test_no_client_accepts_a_push_then_nothing_is_pushed_and_the_window_is_still_named(
    psc_site: Path, keycloak: FakeKeycloak, practitioners: Directory,
) -> None:
    keycloak.admin_urls.clear()
    keycloak.client_lifespans.clear()
    suspect = practitioners.practitioners[57]
    _brokered(keycloak, suspect, sessions=1, offline=0)

    summary = execute_playbook(PLAYBOOK, {"accounts": [suspect.uid]}, dry_run=False, site=str(psc_site))

    assert summary.status == "completed", summary.error
    assert keycloak.pushes == 0
    report = Path(str(summary.report)).read_text()
    assert "up to 5 min" in report and "nothing to push" in report


def test_a_client_refusing_the_push_makes_the_run_end_with_errors(
    psc_site: Path, keycloak: FakeKeycloak, practitioners: Directory,
) -> None:
    keycloak.push_refused.add("portal")
    suspect = practitioners.practitioners[58]
    _brokered(keycloak, suspect)

    summary = execute_playbook(PLAYBOOK, {"accounts": [suspect.uid]}, dry_run=False, site=str(psc_site))

    assert summary.status == "completed with errors"
    assert [f["step"] for f in summary.failures] == ["revocation"]
    assert "tokens stay valid until they expire" in summary.failures[0]["error"]
    assert keycloak.user("8" + suspect.rpps)["enabled"] is False, "the rest of the containment happened"


def test_plan_reads_but_changes_nothing_at_the_idp(psc_site: Path, keycloak: FakeKeycloak,
                                                    practitioners: Directory) -> None:
    suspect = practitioners.practitioners[59]
    idnat = _brokered(keycloak, suspect)
    summary = execute_playbook(PLAYBOOK, {"accounts": [suspect.uid]}, dry_run=True, site=str(psc_site))
    assert summary.status == "planned"
    assert keycloak.writes() == [] and keycloak.pushes == 0
    assert keycloak.user(idnat)["enabled"] is True
    planned = {(c.step, c.operation) for c in summary.changes if c.system == "identity"}
    assert planned == {("end_sessions", "end_sessions"), ("idp_disable", "disable"),
                       ("revocation", "push_revocation")}


def test_recover_at_the_broker_ends_sessions_removes_second_factors_requires_new_ones_and_enables(
    psc_site: Path, keycloak: FakeKeycloak, practitioners: Directory, tmp_path: Path,
) -> None:
    owner = practitioners.practitioners[56]
    idnat = _brokered(keycloak, owner)
    keycloak.add_second_factor(idnat, "otp", "enrolled by the attacker")
    keycloak.add_second_factor(idnat, "webauthn", "security key")
    incident = execute_playbook(PLAYBOOK, {"accounts": [owner.uid]}, dry_run=False, site=str(psc_site)).incident
    keycloak.sessions[keycloak.user(idnat)["id"]].append(keycloak._session(keycloak.user(idnat)["id"], "portal"))
    site = Site(load_site(psc_site))
    try:
        conclude_investigation(site, incident, by="dr-rssi", finding="phishing confirmed")
        with handover(incident, tmp_path / "otp.txt"):
            recovery = recover_accounts(incident, [owner.uid], site, operator="helpdesk-1")
    finally:
        site.close()

    assert recovery.summary.status == "completed", recovery.summary.error
    user = keycloak.user(idnat)
    assert user["enabled"] is True
    assert keycloak.session_count(idnat) == 0, "a session opened since the containment was ended"
    assert keycloak.second_factors(idnat) == [], "the attacker's OTP and the key are gone"
    assert set(user["requiredActions"]) == {"UPDATE_PASSWORD", "CONFIGURE_TOTP"}
    steps = [(c.step, c.operation, c.outcome) for c in recovery.summary.changes if c.system == "identity"]
    assert [s[:2] for s in steps] == [("idp_sessions", "end_sessions"), ("idp_second_factor", "remove_second_factors"),
                                      ("idp_required", "require_actions"), ("idp_enable", "enable")]
    otp = (tmp_path / "otp.txt").read_text().split("\t")[1].strip()
    assert all(otp not in json.dumps(body) for body in keycloak.puts), "the IdP never gets the directory's OTP"
