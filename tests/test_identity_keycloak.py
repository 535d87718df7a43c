"""Contract tests: the Keycloak connector against a transport answering as Keycloak's admin API does.

Each test names the Keycloak behaviour it reproduces (see tests/identity_fakes.py and
Keycloak's ``services/…/admin/UserResource.java``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.identity_fakes import CLIENT_SECRET, FakeKeycloak
from tourniquet.connectors.directory import Account
from tourniquet.connectors.identity import IdentityConfig
from tourniquet.connectors.identity.keycloak import KeycloakClient
from tourniquet.errors import AccountNotFound, AmbiguousAccount, PermanentError, TransientError


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "kc-secret"
    path.write_text(CLIENT_SECRET + "\n")
    return path


def make_config(secret_file: Path, **overrides: object) -> IdentityConfig:
    values: dict[str, object] = {
        "kind": "keycloak", "url": "http://keycloak.test", "allow_plaintext": True, "realm": "sante",
        "client_id": "tourniquet", "client_secret": {"file": str(secret_file)}, "timeout": 2,
    }
    values.update(overrides)
    return IdentityConfig.model_validate(values)


@pytest.fixture
def keycloak() -> FakeKeycloak:
    return FakeKeycloak()


@pytest.fixture
def client(keycloak: FakeKeycloak, secret_file: Path) -> Iterator[KeycloakClient]:
    kc = KeycloakClient(make_config(secret_file), transport=keycloak.transport(), clock=lambda: keycloak.now)
    yield kc
    kc.close()


def account(uid: str, rpps: str | None = None) -> Account:
    return Account(dn=f"uid={uid},ou=people,dc=sante,dc=example", uid=uid, rpps=rpps)


def test_admin_token_is_fetched_once_and_reused(keycloak: FakeKeycloak, client: KeycloakClient) -> None:
    """Token endpoint, client_credentials grant: one token (expires_in 300 s) serves every admin call."""
    keycloak.add_user("jdupont", sessions=2)
    user = client.find_user(account("jdupont"))
    client.sessions(user)
    client.sessions(user)
    assert client.tokens_fetched == 1
    assert sum(1 for _, p in keycloak.requests if p.endswith("/token")) == 1


def test_admin_token_is_refreshed_before_it_expires(keycloak: FakeKeycloak, client: KeycloakClient) -> None:
    """Token expiry: Keycloak answers 401 once expires_in has passed; the client asks for a new token
    token_refresh_margin (30 s) before that, so no call is ever sent with an expired token."""
    keycloak.add_user("jdupont", sessions=1)
    user = client.find_user(account("jdupont"))
    keycloak.now += 300 - 29  # within the margin: the cached token would still work for 29 s
    client.sessions(user)
    assert client.tokens_fetched == 2
    unauthorized = [r for r in keycloak.requests if r[1].startswith("/admin")]
    assert len(unauthorized) == 2  # no 401 round trip was needed


def test_a_token_revoked_server_side_is_replaced_once(keycloak: FakeKeycloak, client: KeycloakClient) -> None:
    """401 on an admin route (token revoked, or the realm keys rotated): fetch a fresh token and retry once."""
    keycloak.add_user("jdupont", sessions=1)
    user = client.find_user(account("jdupont"))
    keycloak.tokens.clear()
    assert len(client.sessions(user)) == 1
    assert client.tokens_fetched == 2


def test_wrong_client_secret_says_so(keycloak: FakeKeycloak, client: KeycloakClient) -> None:
    """Token endpoint with a wrong secret: 401 {"error": "invalid_client"} → a permanent error naming the fix."""
    keycloak.secret = "rotated-secret"
    with pytest.raises(PermanentError, match="client secret") as caught:
        client.find_user(account("jdupont"))
    assert not isinstance(caught.value, TransientError)
    assert CLIENT_SECRET not in str(caught.value)


def test_missing_manage_users_role_says_which_role(keycloak: FakeKeycloak, client: KeycloakClient) -> None:
    """Admin API without the realm-management role manage-users: reads work, writes answer 403."""
    keycloak.add_user("jdupont", sessions=1)
    keycloak.roles = {"view-users"}
    user = client.find_user(account("jdupont"))
    with pytest.raises(PermanentError, match="manage-users"):
        client.end_sessions(user)
    assert keycloak.session_count("jdupont") == 1


def test_unknown_realm_is_a_configuration_error(keycloak: FakeKeycloak, secret_file: Path) -> None:
    """Token endpoint of a realm that does not exist: 404 "Realm does not exist" (or a missing /auth prefix)."""
    kc = KeycloakClient(make_config(secret_file, realm="santé"), transport=keycloak.transport())
    with pytest.raises(PermanentError, match="/auth"):
        kc.find_user(account("jdupont"))


def test_find_by_username_is_exact(keycloak: FakeKeycloak, client: KeycloakClient) -> None:
    """GET users?username= is a substring search unless exact=true: 'jdupont' must not match 'jdupont2'."""
    keycloak.add_user("jdupont2")
    target = keycloak.add_user("jdupont")
    assert client.find_user(account("jdupont")).id == target


def test_find_by_rpps_attribute(keycloak: FakeKeycloak, secret_file: Path) -> None:
    """GET users?q=rpps:<number>: attribute search, briefRepresentation=false to get the attributes back."""
    keycloak.add_user("8" + "10101010104", rpps="10101010104")
    keycloak.add_user("someone-else", rpps="10101010112")
    kc = KeycloakClient(make_config(secret_file, lookup="attribute"), transport=keycloak.transport())
    assert kc.find_user(account("jdupont", rpps="10101010104")).username == "810101010104"


def test_pro_sante_connect_style_username(keycloak: FakeKeycloak, secret_file: Path) -> None:
    """Pro Santé Connect names users '8' + RPPS (preferred_username): username_from: idnat."""
    keycloak.add_user("810101010104")
    kc = KeycloakClient(make_config(secret_file, username_from="idnat"), transport=keycloak.transport())
    assert kc.find_user(account("jdupont", rpps="10101010104")).username == "810101010104"


def test_unknown_and_ambiguous_users(keycloak: FakeKeycloak, client: KeycloakClient, secret_file: Path) -> None:
    """GET users answers [] for nobody; two users carrying the same RPPS attribute are ambiguous."""
    with pytest.raises(AccountNotFound, match="no such user"):
        client.find_user(account("ghost"))
    keycloak.add_user("a", rpps="10101010104")
    keycloak.add_user("b", rpps="10101010104")
    kc = KeycloakClient(make_config(secret_file, lookup="attribute"), transport=keycloak.transport())
    with pytest.raises(AmbiguousAccount):
        kc.find_user(account("x", rpps="10101010104"))


def test_deleted_user_is_unknown_user(keycloak: FakeKeycloak, client: KeycloakClient) -> None:
    """GET users/{id}/sessions of a user deleted meanwhile: 404 {"error": "User not found"}."""
    keycloak.add_user("jdupont")
    user = client.find_user(account("jdupont"))
    keycloak.users.clear()
    with pytest.raises(AccountNotFound, match="unknown user"):
        client.sessions(user)


def test_logout_ends_online_sessions_but_not_offline_ones(keycloak: FakeKeycloak, client: KeycloakClient) -> None:
    """POST users/{id}/logout → 204: online sessions gone, notBefore set; offline sessions stay until
    DELETE users/{id}/consents/{clientId} (204), which answers 404 once nothing is left."""
    keycloak.add_user("jdupont", sessions=3, offline=1)
    user = client.find_user(account("jdupont"))
    assert [s.ip for s in client.sessions(user)] == ["203.0.113.7"] * 3
    client.end_sessions(user)
    assert client.sessions(user) == []
    assert keycloak.user("jdupont")["notBefore"] > 0
    assert len(client.offline_sessions(user)) == 1
    assert client.offline_clients(user) == ["mobile"]
    client.revoke_offline(user, "mobile")
    client.revoke_offline(user, "mobile")  # 404 "Consent nor offline token not found": already done
    assert client.offline_sessions(user) == []


def test_required_actions_are_merged_because_put_replaces_the_list(
    keycloak: FakeKeycloak, client: KeycloakClient
) -> None:
    """PUT users/{id} with requiredActions replaces the whole list: read, merge, write — never send only ours."""
    keycloak.add_user("jdupont", required_actions=["VERIFY_EMAIL"])
    user = client.find_user(account("jdupont"))
    merged = client.add_required_actions(user, ["UPDATE_PASSWORD", "CONFIGURE_TOTP"])
    assert merged == ["VERIFY_EMAIL", "UPDATE_PASSWORD", "CONFIGURE_TOTP"]
    assert keycloak.puts[-1] == {"requiredActions": merged}
    assert keycloak.user("jdupont")["requiredActions"] == merged
    assert client.remove_required_actions(user, ["UPDATE_PASSWORD", "CONFIGURE_TOTP"]) == ["VERIFY_EMAIL"]


def test_disabling_does_not_end_sessions(keycloak: FakeKeycloak, client: KeycloakClient) -> None:
    """PUT users/{id} {"enabled": false} → 204: no new login, but open sessions are untouched."""
    keycloak.add_user("jdupont", sessions=2)
    user = client.find_user(account("jdupont"))
    client.set_enabled(user, False)
    assert client.get_user(user).enabled is False
    assert len(client.sessions(user)) == 2


def test_server_errors_are_transient(keycloak: FakeKeycloak, client: KeycloakClient) -> None:
    """Keycloak behind a proxy that answers 503 while it restarts: retry later (TransientError)."""
    keycloak.down = True
    with pytest.raises(TransientError, match="down"):
        client.find_user(account("jdupont"))


@pytest.mark.parametrize("failure", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
def test_unreachable_or_slow_keycloak_is_transient(failure: httpx.HTTPError, secret_file: Path) -> None:
    """Connection refused or a read timeout on an idempotent call: TransientError, never an httpx error."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise failure

    kc = KeycloakClient(make_config(secret_file), transport=httpx.MockTransport(handler))
    with pytest.raises(TransientError):
        kc.find_user(account("jdupont"))


def test_untrusted_certificate_is_permanent(secret_file: Path) -> None:
    """TLS verification failure (httpx raises ConnectError): a configuration problem, not worth retrying."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")

    kc = KeycloakClient(make_config(secret_file), transport=httpx.MockTransport(handler))
    with pytest.raises(PermanentError, match="ca_file"):
        kc.find_user(account("jdupont"))


def test_configuration_refuses_what_cannot_work(secret_file: Path) -> None:
    """A keycloak section without its service account, or plain http without allow_plaintext, is refused."""
    with pytest.raises(ValueError, match="client_secret"):
        IdentityConfig.model_validate({"kind": "keycloak", "url": "https://sso", "realm": "r", "client_id": "c"})
    with pytest.raises(ValueError, match="clear"):
        make_config(secret_file, allow_plaintext=False)
    with pytest.raises(ValueError, match="inline"):
        make_config(secret_file, client_secret="written-here")
