"""A generic OpenID Connect provider: revoke the tokens the platform itself holds (RFC 7009).

RFC 7009 lets a client revoke only its *own* tokens: the server answers 200 even for a
token it does not know (section 2.2), so a 200 proves nothing about someone else's
session. A generic OIDC provider has no standard way to list or end a user's sessions:
for incident response use its admin API (``kind: keycloak``) where there is one.
"""

from __future__ import annotations

import threading
from typing import Literal

import httpx

from tourniquet.connectors._http import HttpClient, answer_text
from tourniquet.connectors.directory import Account
from tourniquet.connectors.identity.base import (
    SYSTEM,
    IdentityConfig,
    IdentitySession,
    IdentityUser,
    _NotSupported,
)
from tourniquet.errors import PermanentError, TransientError

__all__ = ["OidcClient"]

TokenHint = Literal["access_token", "refresh_token"]


class OidcClient(_NotSupported):
    """The platform's own client at an OIDC provider."""

    kind = "oidc"
    why = "a generic OIDC provider has no standard API for a user's sessions; use its admin API (kind: keycloak)"
    capabilities = frozenset({"revoke_token"})

    def __init__(self, config: IdentityConfig, *, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self._http = HttpClient(config.http_settings(), config.url.rstrip("/"), system=SYSTEM,
                                name="identity provider", transport=transport)
        self._endpoint = config.revocation_endpoint
        self._lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def find_user(self, account: Account) -> IdentityUser:
        raise self._unsupported("find users")

    def sessions(self, user: IdentityUser) -> list[IdentitySession]:
        raise self._unsupported("list sessions")

    def end_sessions(self, user: IdentityUser) -> None:
        raise self._unsupported("end sessions")

    def revocation_endpoint(self) -> str:
        """From the configuration, else from ``{issuer}/.well-known/openid-configuration``."""
        with self._lock:
            if self._endpoint:
                return self._endpoint
            what = "read the OIDC discovery document"
            response = self._http.send("GET", "/.well-known/openid-configuration", what=what)
            if response.status_code >= 500:
                raise TransientError(f"{what}: provider down ({response.status_code})", system=SYSTEM)
            if response.status_code != 200:
                raise PermanentError(f"{what}: {response.status_code} {answer_text(response)} — check url (the issuer)",
                                     system=SYSTEM)
            try:
                endpoint = response.json().get("revocation_endpoint")
            except (ValueError, AttributeError) as exc:
                raise PermanentError(f"{what}: not JSON", system=SYSTEM) from exc
            if not endpoint:
                raise PermanentError(f"{what}: the provider advertises no revocation_endpoint (RFC 7009); "
                                     f"set revocation_endpoint if it has one", system=SYSTEM)
            self._endpoint = str(endpoint)
            return self._endpoint

    def revoke(self, token: str, hint: TokenHint | None = None) -> None:
        """Revoke one token the platform holds (RFC 7009 section 2.1); idempotent by design."""
        what = "revoke a token (RFC 7009)"
        data = {"token": token}
        if hint:
            data["token_type_hint"] = hint
        auth: httpx.BasicAuth | None = None
        if self.config.client_secret is not None:
            assert self.config.client_id
            auth = httpx.BasicAuth(self.config.client_id, self.config.client_secret.get())  # client_secret_basic
        else:
            data["client_id"] = self.config.client_id or ""
        response = self._http.send("POST", self.revocation_endpoint(), what=what, idempotent=True,  # RFC 7009 2.1
                                   data=data, auth=auth or httpx.USE_CLIENT_DEFAULT)
        if response.status_code == 200:
            return
        detail = answer_text(response)
        if response.status_code == 503 or response.status_code >= 500:
            raise TransientError(f"{what}: provider unavailable ({response.status_code} {detail})", system=SYSTEM)
        if response.status_code == 401 or "invalid_client" in detail:
            raise PermanentError(f"{what}: the provider refused client {self.config.client_id!r} ({detail}): "
                                 f"check the client secret", system=SYSTEM)
        if "unsupported_token_type" in detail:
            raise PermanentError(f"{what}: the provider cannot revoke this kind of token ({detail})", system=SYSTEM)
        raise PermanentError(f"{what}: {response.status_code} {detail}", system=SYSTEM)
