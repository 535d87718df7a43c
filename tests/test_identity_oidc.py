"""Contract tests: generic OIDC token revocation as RFC 7009 specifies it.

RFC 7009 section 2.1: POST form ``token`` (+ ``token_type_hint``) to the revocation
endpoint with client authentication; 2.2: 200 whether or not the token was valid;
2.2.1: ``unsupported_token_type`` (400), 503 for a temporary failure; RFC 6749 5.2:
401 ``invalid_client`` for bad client credentials. The endpoint is advertised as
``revocation_endpoint`` in the discovery document (RFC 8414).
"""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from tests.identity_fakes import CLIENT_SECRET
from tourniquet.connectors.directory import Account
from tourniquet.connectors.identity import IdentityConfig, Unsupported, connect
from tourniquet.connectors.identity.oidc import OidcClient
from tourniquet.errors import PermanentError, TransientError

ISSUER = "http://op.test/realms/psc"


class FakeOp:
    def __init__(self, status: int = 200, body: dict[str, str] | None = None) -> None:
        self.status, self.body = status, body
        self.revoked: list[dict[str, str]] = []
        self.auth: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(200, json={"issuer": ISSUER, "revocation_endpoint": f"{ISSUER}/protocol/openid-connect/revoke"})
        if request.url.path.endswith("/revoke"):
            self.revoked.append({k: v[0] for k, v in parse_qs(request.content.decode()).items()})
            self.auth.append(request.headers.get("Authorization", ""))
            return httpx.Response(self.status, json=self.body) if self.body else httpx.Response(self.status)
        return httpx.Response(404)


def client(op: FakeOp, tmp_path: Path, secret: bool = True) -> OidcClient:
    path = tmp_path / "secret"
    path.write_text(CLIENT_SECRET)
    config = IdentityConfig.model_validate({
        "kind": "oidc", "url": ISSUER, "allow_plaintext": True, "client_id": "platform",
        **({"client_secret": {"file": str(path)}} if secret else {}),
    })
    return OidcClient(config, transport=httpx.MockTransport(op))


def test_revocation_endpoint_from_discovery_and_basic_auth(tmp_path: Path) -> None:
    """Discovery gives revocation_endpoint; a confidential client authenticates with client_secret_basic."""
    op = FakeOp()
    client(op, tmp_path).revoke("refresh-token-held-by-platform", "refresh_token")
    assert op.revoked == [{"token": "refresh-token-held-by-platform", "token_type_hint": "refresh_token"}]
    assert op.auth == ["Basic " + base64.b64encode(f"platform:{CLIENT_SECRET}".encode()).decode()]


def test_public_client_sends_its_id_in_the_form(tmp_path: Path) -> None:
    """RFC 7009 2.1 with a public client: client_id in the body, no Authorization header."""
    op = FakeOp()
    client(op, tmp_path, secret=False).revoke("access-token")
    assert op.revoked == [{"token": "access-token", "client_id": "platform"}] and op.auth == [""]


@pytest.mark.parametrize(("status", "body", "error", "match"), [
    (401, {"error": "invalid_client"}, PermanentError, "client secret"),
    (400, {"error": "unsupported_token_type"}, PermanentError, "cannot revoke"),
    (503, None, TransientError, "unavailable"),
])
def test_revocation_errors(tmp_path: Path, status: int, body: dict[str, str] | None,
                           error: type[Exception], match: str) -> None:
    """RFC 7009 2.2.1 error answers become domain errors (503 is retried, the others are not)."""
    with pytest.raises(error, match=match):
        client(FakeOp(status, body), tmp_path).revoke("t")


def test_generic_oidc_cannot_end_a_users_sessions(tmp_path: Path) -> None:
    """RFC 7009 only revokes the caller's own tokens: user-level operations say to use an admin API."""
    path = tmp_path / "secret"
    path.write_text(CLIENT_SECRET)
    config = IdentityConfig(kind="oidc", url="https://op.example", client_id="platform")
    with pytest.raises(Unsupported, match="admin API"):
        connect(config, state_dir=None).find_user(Account(dn="uid=x,dc=example", uid="x"))
