"""Keycloak through its admin REST API, as a service account.

Facts this client relies on (Keycloak's ``UserResource`` / admin REST API):

- Admin token: ``POST /realms/{realm}/protocol/openid-connect/token`` with
  ``grant_type=client_credentials``; the client's service account needs the
  realm-management roles ``view-users`` and ``manage-users``. The token is cached and
  fetched again ``token_refresh_margin`` seconds before ``expires_in`` runs out, and once
  more if the API answers 401 (revoked, or the clock was wrong).
- ``POST /admin/realms/{realm}/users/{id}/logout`` (204) ends every online session and
  sets the user's not-before, so tokens issued earlier are refused at refresh.
- ``GET …/users/{id}/sessions``; offline sessions per client:
  ``GET …/offline-sessions/{clientUuid}``, the clients being those ``GET …/consents``
  lists with an ``Offline Token`` grant; ``DELETE …/consents/{clientId}`` revokes
  consent and offline tokens (404 when there is nothing left to revoke).
- ``PUT …/users/{id}``: ``requiredActions`` *replaces* the list (read, merge, write);
  ``enabled: false`` disables the user but does NOT end its sessions.
- ``GET …/users/{id}/credentials`` lists ``CredentialRepresentation`` (``id``, ``type``,
  ``userLabel``, ``createdDate``; never the secret); ``DELETE …/credentials/{credentialId}`` (204).
- ``GET …/users/{id}/federated-identity`` lists ``FederatedIdentityRepresentation``
  (``identityProvider``, ``userId``, ``userName``): the user's links to brokered providers.
- ``GET /admin/realms/{realm}`` (``RealmRepresentation``: ``accessTokenLifespan``, ``notBefore``) and
  ``GET …/clients`` (``ClientRepresentation``: ``adminUrl``, ``attributes["access.token.lifespan"]``)
  say how long issued access tokens stay valid; ``POST …/push-revocation`` sends the realm's
  not-before to every client with an admin URL and answers ``GlobalRequestResult``
  (``successRequests``, ``failedRequests``). Tokens are JWTs checked offline by most clients:
  nothing but their expiry stops one already issued.

Pro Santé Connect (or any brokered provider): the platform's Keycloak holds its own session and
tokens for the practitioner, which this client ends; the session at the brokered provider itself
belongs to that provider and cannot be ended from here. A brokered user is disabled, never
deleted: deleting it lets the next first-broker-login create it again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import structlog

from tourniquet.connectors._http import HttpClient, answer_text
from tourniquet.connectors.directory import Account
from tourniquet.connectors.identity.base import (
    SYSTEM,
    Credential,
    FederatedLink,
    IdentityConfig,
    IdentitySession,
    IdentityUser,
    PushResult,
    TokenPolicy,
    lookup_value,
)
from tourniquet.errors import AccountNotFound, AmbiguousAccount, PermanentError, TransientError
from tourniquet.secrets import register_secret

__all__ = ["KeycloakClient"]

log = structlog.get_logger("tourniquet")
OFFLINE_GRANT = "Offline Token"


def _seconds(milliseconds: Any) -> int | None:
    return int(milliseconds) // 1000 if isinstance(milliseconds, (int, float)) and milliseconds else None


def _session(data: dict[str, Any], offline: bool = False) -> IdentitySession:
    clients = data.get("clients") or {}
    return IdentitySession(
        id=str(data.get("id", "")), ip=data.get("ipAddress"), started=_seconds(data.get("start")),
        last_access=_seconds(data.get("lastAccess")),
        clients=sorted(str(c) for c in (clients.values() if isinstance(clients, dict) else clients)),
        offline=offline,
    )


def _user(data: dict[str, Any]) -> IdentityUser:
    return IdentityUser(id=str(data["id"]), username=str(data.get("username", "")),
                        enabled=bool(data.get("enabled", True)),
                        required_actions=list(data.get("requiredActions") or []))


class KeycloakClient:
    """One realm of one Keycloak, seen by one service account; safe to share between threads."""

    kind = "keycloak"
    capabilities = frozenset({"sessions", "end_sessions", "offline", "required_actions", "enable", "credentials",
                              "federation", "tokens"})

    def __init__(
        self,
        config: IdentityConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        assert config.realm and config.client_id and config.client_secret  # the config validator checked
        self.config = config
        self.realm = config.realm
        self._http = HttpClient(config.http_settings(), config.url.rstrip("/"), system=SYSTEM, name="Keycloak",
                                transport=transport)
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self.tokens_fetched = 0

    def close(self) -> None:
        self._http.close()

    # -- admin token

    def _access_token(self, *, fresh: bool = False) -> str:
        with self._lock:
            if fresh or self._token is None or self._clock() >= self._expires - self.config.token_refresh_margin:
                self._fetch_token()
            assert self._token is not None
            return self._token

    def _fetch_token(self) -> None:
        assert self.config.client_secret and self.config.client_id
        secret = self.config.client_secret.get()
        what = f"admin token for client {self.config.client_id!r}"
        response = self._http.send(  # a client-credentials grant only issues a token: safe to repeat
            "POST", f"/realms/{quote(self.realm, safe='')}/protocol/openid-connect/token", what=what, idempotent=True,
            data={"grant_type": "client_credentials", "client_id": self.config.client_id, "client_secret": secret},
        )
        if response.status_code in (400, 401):
            raise PermanentError(
                f"{what}: Keycloak refused the client credentials ({answer_text(response)}): check the client "
                f"secret, that the client is confidential and has 'Service accounts roles' enabled", system=SYSTEM)
        if response.status_code == 404:
            raise PermanentError(
                f"{what}: no realm {self.realm!r} at {self.config.url} (404): check realm, and whether this "
                f"Keycloak (before 17) needs '/auth' at the end of url", system=SYSTEM)
        self._raise_for_status(response, what, idempotent=True)
        try:
            body = response.json()
            token = str(body["access_token"])
            lifetime = float(body.get("expires_in") or 60)
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(f"{what}: Keycloak's token answer has no access_token", system=SYSTEM) from exc
        register_secret(token)  # masked wherever it could be written
        self._token = token
        self._expires = self._clock() + lifetime
        self.tokens_fetched += 1
        log.debug("identity.token", realm=self.realm, expires_in=lifetime)

    # -- admin API

    def _admin(self, method: str, path: str, what: str, *, idempotent: bool = True,
               json: Any = None, params: dict[str, str] | None = None) -> httpx.Response:
        url = f"/admin/realms/{quote(self.realm, safe='')}{path}"
        response: httpx.Response | None = None
        for attempt in (1, 2):
            token = self._access_token(fresh=attempt == 2)
            response = self._http.send(method, url, what=what, idempotent=idempotent, json=json, params=params,
                                       headers={"Authorization": f"Bearer {token}"})
            if response.status_code != 401:
                break
        assert response is not None
        return response

    def _raise_for_status(self, response: httpx.Response, what: str, *, idempotent: bool,
                          user: str | None = None) -> None:
        status = response.status_code
        if status < 400:
            return
        detail = answer_text(response)
        if status == 401:
            raise PermanentError(
                f"{what}: Keycloak refused a fresh admin token (401 {detail}): check that client "
                f"{self.config.client_id!r} belongs to realm {self.realm!r}", system=SYSTEM)
        if status == 403:
            raise PermanentError(
                f"{what}: forbidden (403): give the service account of client {self.config.client_id!r} the "
                f"realm-management roles manage-users and view-users (and view-realm, view-clients, manage-realm "
                f"to read token lifespans and push the not-before)", system=SYSTEM)
        if status == 404:
            if "realm" in detail.lower():
                raise PermanentError(f"{what}: realm {self.realm!r} not found (404 {detail})", system=SYSTEM)
            raise AccountNotFound(f"{what}: unknown user {user or ''} in Keycloak realm {self.realm!r} (404 {detail})",
                                  system=SYSTEM)
        if status == 429 or status >= 500:
            message = f"{what}: Keycloak is down or overloaded ({status} {detail})"
            if idempotent:
                raise TransientError(message, system=SYSTEM)
            raise PermanentError(message + "; the call may have been applied, check before retrying", system=SYSTEM)
        raise PermanentError(f"{what}: Keycloak refused the request ({status} {detail})", system=SYSTEM)

    def _json(self, method: str, path: str, what: str, *, user: str | None = None,
              params: dict[str, str] | None = None) -> Any:
        response = self._admin(method, path, what, params=params)
        self._raise_for_status(response, what, idempotent=True, user=user)
        try:
            return response.json()
        except ValueError as exc:
            raise PermanentError(f"{what}: Keycloak answered something that is not JSON", system=SYSTEM) from exc

    def _send(self, method: str, path: str, what: str, *, user: str, json: Any = None,
              idempotent: bool = True) -> httpx.Response:
        response = self._admin(method, path, what, json=json, idempotent=idempotent)
        self._raise_for_status(response, what, idempotent=idempotent, user=user)
        return response

    @staticmethod
    def _path(user: IdentityUser, tail: str = "") -> str:
        return f"/users/{quote(user.id, safe='')}{tail}"

    # -- users

    def find_user(self, account: Account) -> IdentityUser:
        how, value = lookup_value(self.config, account)
        if how == "username":
            what = f"find Keycloak user {value!r}"
            found = self._json("GET", "/users", what, params={"username": value, "exact": "true",
                                                               "briefRepresentation": "false"})
            matches = [u for u in found if str(u.get("username", "")).lower() == value.lower()]
        else:
            attribute = self.config.rpps_attribute
            what = f"find Keycloak user with {attribute}={value}"
            if any(c.isspace() or c == ":" for c in value):
                raise AccountNotFound(f"{what}: value cannot be searched with q=", system=SYSTEM)
            found = self._json("GET", "/users", what, params={"q": f"{attribute}:{value}",
                                                               "briefRepresentation": "false"})
            # q= matched loosely in some Keycloak versions: keep exact matches only
            matches = [u for u in found if value in ((u.get("attributes") or {}).get(attribute) or [])]
        if not matches:
            raise AccountNotFound(f"{what}: no such user in realm {self.realm!r}", system=SYSTEM)
        if len(matches) > 1:
            raise AmbiguousAccount(value, [str(u.get("username")) for u in matches], system=SYSTEM)
        return _user(matches[0])

    def get_user(self, user: IdentityUser) -> IdentityUser:
        return _user(self._json("GET", self._path(user), f"read Keycloak user {user.username}", user=user.username))

    # -- sessions

    def sessions(self, user: IdentityUser) -> list[IdentitySession]:
        data = self._json("GET", self._path(user, "/sessions"), f"list sessions of {user.username}",
                          user=user.username)
        return [_session(s) for s in data]

    def end_sessions(self, user: IdentityUser) -> None:
        self._send("POST", self._path(user, "/logout"), f"end sessions of {user.username}", user=user.username)

    def _consents(self, user: IdentityUser) -> list[dict[str, Any]]:
        data = self._json("GET", self._path(user, "/consents"), f"list consents of {user.username}",
                          user=user.username)
        return [c for c in data if isinstance(c, dict)]

    @staticmethod
    def _offline_grants(consent: dict[str, Any]) -> list[str]:
        return [str(g.get("client")) for g in consent.get("additionalGrants") or []
                if isinstance(g, dict) and g.get("key") == OFFLINE_GRANT]

    def offline_clients(self, user: IdentityUser) -> list[str]:
        return sorted({str(c["clientId"]) for c in self._consents(user) if self._offline_grants(c)})

    def offline_sessions(self, user: IdentityUser) -> list[IdentitySession]:
        result: list[IdentitySession] = []
        for consent in self._consents(user):
            for client_uuid in self._offline_grants(consent):
                data = self._json("GET", self._path(user, f"/offline-sessions/{quote(client_uuid, safe='')}"),
                                  f"list offline sessions of {user.username}", user=user.username)
                result.extend(_session(s, offline=True) for s in data)
        return result

    def revoke_offline(self, user: IdentityUser, client_id: str) -> None:
        what = f"revoke offline tokens of {user.username} for {client_id}"
        response = self._admin("DELETE", self._path(user, f"/consents/{quote(client_id, safe='')}"), what)
        if response.status_code == 404 and "consent" in answer_text(response).lower():
            return  # "Consent nor offline token not found": already revoked (a retry, or the user did it)
        self._raise_for_status(response, what, idempotent=True, user=user.username)

    # -- account state

    def _update(self, user: IdentityUser, body: dict[str, Any], what: str) -> None:
        self._send("PUT", self._path(user), what, user=user.username, json=body)

    def add_required_actions(self, user: IdentityUser, actions: list[str]) -> list[str]:
        current = self.get_user(user).required_actions
        merged = current + [a for a in actions if a not in current]
        if merged != current:  # the PUT replaces the whole list: always send the merge
            self._update(user, {"requiredActions": merged}, f"require {', '.join(actions)} of {user.username}")
        return merged

    def remove_required_actions(self, user: IdentityUser, actions: list[str]) -> list[str]:
        current = self.get_user(user).required_actions
        kept = [a for a in current if a not in actions]
        if kept != current:
            self._update(user, {"requiredActions": kept}, f"remove {', '.join(actions)} from {user.username}")
        return kept

    def set_enabled(self, user: IdentityUser, enabled: bool) -> None:
        self._update(user, {"enabled": enabled}, f"{'enable' if enabled else 'disable'} {user.username}")

    # -- second factors, federation

    def credentials(self, user: IdentityUser) -> list[Credential]:
        data = self._json("GET", self._path(user, "/credentials"), f"list credentials of {user.username}",
                          user=user.username)
        return [Credential(id=str(c.get("id", "")), type=str(c.get("type", "")), label=c.get("userLabel"),
                           created=_seconds(c.get("createdDate")))
                for c in data if isinstance(c, dict) and c.get("id")]

    def remove_credential(self, user: IdentityUser, credential_id: str) -> None:
        what = f"remove credential {credential_id} of {user.username}"
        response = self._admin("DELETE", self._path(user, f"/credentials/{quote(credential_id, safe='')}"), what)
        if response.status_code == 404 and "credential" in answer_text(response).lower():
            return  # already gone (a retry)
        self._raise_for_status(response, what, idempotent=True, user=user.username)

    def federated_links(self, user: IdentityUser) -> list[FederatedLink]:
        data = self._json("GET", self._path(user, "/federated-identity"),
                          f"list federated identities of {user.username}", user=user.username)
        return [FederatedLink(provider=str(f.get("identityProvider", "")), user_id=str(f.get("userId", "")),
                              user_name=str(f.get("userName") or ""))
                for f in data if isinstance(f, dict)]

    # -- realm: token lifespans, not-before push

    def token_policy(self) -> TokenPolicy:
        realm = self._json("GET", "", f"read realm {self.realm}")
        clients = self._json("GET", "/clients", f"list clients of realm {self.realm}")
        if not isinstance(realm, dict) or not isinstance(clients, list):
            raise PermanentError(f"read realm {self.realm}: unexpected answer from Keycloak", system=SYSTEM)
        lifespan = _int(realm.get("accessTokenLifespan"), 300)  # Keycloak's default: 5 minutes
        overriding: dict[str, int] = {}
        pushing: list[str] = []
        for client in clients:
            if not isinstance(client, dict) or client.get("enabled") is False:
                continue
            name = str(client.get("clientId", client.get("id", "?")))
            own = _int((client.get("attributes") or {}).get("access.token.lifespan"), 0)
            if own > 0:
                overriding[name] = own
            if client.get("adminUrl"):
                pushing.append(name)
        return TokenPolicy(access_token_lifespan=lifespan,
                           longest_client_lifespan=max([lifespan, *overriding.values()]),
                           clients_overriding=overriding, clients_accepting_push=sorted(pushing),
                           not_before=_int(realm.get("notBefore"), 0))

    def push_revocation(self) -> PushResult:
        data = self._json("POST", "/push-revocation", f"push the not-before revocation of realm {self.realm}")
        if not isinstance(data, dict):
            return PushResult()
        return PushResult(succeeded=[str(u) for u in data.get("successRequests") or []],
                          failed=[str(u) for u in data.get("failedRequests") or []])


def _int(value: Any, default: int) -> int:
    """Keycloak sends numbers, client attributes as strings; anything else is the default."""
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default
