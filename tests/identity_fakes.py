"""Fake identity providers that answer as the real ones document, for contract tests.

:class:`FakeKeycloak` reproduces Keycloak's token endpoint and the admin REST routes of
``UserResource`` that Tourniquet uses (status codes and bodies as Keycloak sends them):

- ``POST /realms/{realm}/protocol/openid-connect/token`` (client credentials): 200
  ``{access_token, expires_in, token_type: Bearer}``; 401 ``invalid_client`` for a wrong
  secret; 404 ``Realm does not exist``. Tokens expire after ``expires_in`` seconds of the
  fake's clock (:attr:`now`) and are then answered with 401.
- ``/admin/realms/{realm}/…``: 401 without a valid token, 403 without the
  realm-management role the call needs (view-users to read, manage-users to write),
  404 ``{"error": "User not found"}`` / ``{"error": "Realm not found."}``.
- ``GET users?username=…`` is a substring search unless ``exact=true``; ``q=key:value``
  searches attributes; ``PUT users/{id}`` replaces ``requiredActions`` wholesale and sets
  ``enabled`` without touching sessions; ``POST users/{id}/logout`` ends online sessions
  only; offline sessions live until ``DELETE users/{id}/consents/{clientId}`` (404
  ``Consent nor offline token not found`` when there is none).
- Brokered users (Pro Santé Connect through the realm's identity provider ``psc``):
  ``GET users/{id}/federated-identity`` lists ``FederatedIdentityRepresentation``
  (``identityProvider``, ``userId``, ``userName``); ``GET users/{id}/credentials`` lists
  ``CredentialRepresentation`` (``id``, ``type``, ``userLabel``, ``createdDate``, never the secret),
  ``DELETE users/{id}/credentials/{credentialId}`` answers 204 (404 once gone).
- The realm: ``GET /admin/realms/{realm}`` answers ``RealmRepresentation`` (``accessTokenLifespan``
  in seconds, ``notBefore``); ``GET clients`` the ``ClientRepresentation`` list (``clientId``,
  ``adminUrl``, ``attributes["access.token.lifespan"]`` as a string); ``POST push-revocation``
  answers ``GlobalRequestResult`` (``successRequests``, ``failedRequests``: the admin URLs pushed to).
  Documented in Keycloak's Admin REST API reference (https://www.keycloak.org/docs-api/latest/rest-api/,
  sections Users, Realms Admin, Clients) and the javadoc of ``GlobalRequestResult``.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

import httpx

from tourniquet.connectors.identity.lemonldap import CommandResult

CLIENT_SECRET = "kc-client-secret-7f3a9e1d"


def _json(status: int, body: Any = None) -> httpx.Response:
    if body is None:
        return httpx.Response(status)
    return httpx.Response(status, json=body)


@dataclass
class FakeKeycloak:
    realm: str = "sante"
    client_id: str = "tourniquet"
    secret: str = CLIENT_SECRET
    token_lifetime: int = 300
    roles: set[str] = field(default_factory=lambda: {"view-users", "manage-users"})
    now: float = 1_000.0
    down: bool = False
    sticky_sessions: bool = False  # logout answers 204 but the sessions stay (to test verification)
    unavailable_for: int = 0  # answer this many admin requests with 503, as during a restart
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    offline: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)  # user → clientId → sessions
    clients: dict[str, str] = field(default_factory=lambda: {"portal": str(uuid.uuid4()), "mobile": str(uuid.uuid4())})
    tokens: dict[str, float] = field(default_factory=dict)
    issued: list[str] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    puts: list[dict[str, Any]] = field(default_factory=list)
    access_token_lifespan: int = 300
    realm_not_before: int = 0
    #: clientId → adminUrl for clients that accept a not-before push; clientId → own token lifespan (s)
    admin_urls: dict[str, str] = field(default_factory=dict)
    client_lifespans: dict[str, int] = field(default_factory=dict)
    push_refused: set[str] = field(default_factory=set)  # clientIds whose admin URL does not answer
    pushes: int = 0
    credentials: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    federated: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    # -- set-up

    def add_user(self, username: str, *, rpps: str | None = None, sessions: int = 0, offline: int = 0,
                 required_actions: Sequence[str] = (), enabled: bool = True) -> str:
        user_id = str(uuid.uuid4())
        attributes = {"rpps": [rpps]} if rpps else {}
        self.users[user_id] = {
            "id": user_id, "username": username.lower(), "enabled": enabled, "emailVerified": True,
            "firstName": username, "lastName": "Test", "attributes": attributes,
            "requiredActions": list(required_actions), "createdTimestamp": 1_700_000_000_000, "totp": False,
            "notBefore": 0, "access": {"manage": True},
        }
        self.sessions[user_id] = [self._session(user_id, "portal") for _ in range(sessions)]
        self.credentials[user_id] = [{"id": str(uuid.uuid4()), "type": "password", "createdDate": 1_700_000_000_000,
                                      "credentialData": "{\"hashIterations\":27500,\"algorithm\":\"pbkdf2-sha256\"}"}]
        self.federated[user_id] = []
        self.offline[user_id] = {"mobile": [self._session(user_id, "mobile") for _ in range(offline)]} if offline else {}
        return user_id

    def add_second_factor(self, username: str, type_: str = "otp", label: str = "attacker phone") -> str:
        credential_id = str(uuid.uuid4())
        self.credentials[self.user(username)["id"]].append(
            {"id": credential_id, "type": type_, "userLabel": label, "createdDate": 1_757_000_000_000,
             "credentialData": "{\"subType\":\"totp\",\"digits\":6,\"period\":30,\"algorithm\":\"HmacSHA1\"}"})
        return credential_id

    def link(self, username: str, provider: str, user_id: str) -> None:
        """The user was created by first-broker-login from ``provider`` (e.g. psc)."""
        self.federated[self.user(username)["id"]].append(
            {"identityProvider": provider, "userId": user_id, "userName": user_id})

    def second_factors(self, username: str) -> list[str]:
        return [c["type"] for c in self.credentials[self.user(username)["id"]] if c["type"] != "password"]

    def _session(self, user_id: str, client_id: str) -> dict[str, Any]:
        return {"id": str(uuid.uuid4()), "username": self.users[user_id]["username"], "userId": user_id,
                "ipAddress": "203.0.113.7", "start": 1_757_000_000_000, "lastAccess": 1_757_000_600_000,
                "rememberMe": False, "clients": {self.clients[client_id]: client_id}, "transientUser": False}

    def user(self, username: str) -> dict[str, Any]:
        return next(u for u in self.users.values() if u["username"] == username.lower())

    def session_count(self, username: str) -> int:
        return len(self.sessions[self.user(username)["id"]])

    def offline_count(self, username: str) -> int:
        return sum(len(s) for s in self.offline[self.user(username)["id"]].values())

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.requests if m in ("POST", "PUT", "DELETE") and "/token" not in p]

    # -- the API

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.requests.append((request.method, path))
        if self.down:
            return httpx.Response(503, text="<html>Service Unavailable</html>")
        if path.endswith("/protocol/openid-connect/token"):
            return self._token(request, path)
        prefix = f"/admin/realms/{self.realm}"
        if not path.startswith("/admin/realms/"):
            return _json(404, {"error": "Unable to find matching target resource method"})
        if self.unavailable_for > 0:
            self.unavailable_for -= 1
            return httpx.Response(503, text="<html>Service Unavailable</html>")
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.tokens.get(token, 0) <= self.now:
            return _json(401, {"error": "HTTP 401 Unauthorized"})
        if not path.startswith(prefix + "/") and path != prefix:
            return _json(404, {"error": "Realm not found."})
        needed = "view-users" if request.method == "GET" else "manage-users"
        if needed not in self.roles:
            return _json(403, {"error": "HTTP 403 Forbidden"})
        return self._admin(request, [unquote(p) for p in path[len(prefix):].strip("/").split("/")])

    def _token(self, request: httpx.Request, path: str) -> httpx.Response:
        if path != f"/realms/{self.realm}/protocol/openid-connect/token":
            return _json(404, {"error": "Realm does not exist"})
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return _json(400, {"error": "unsupported_grant_type"})
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.secret:
            return _json(401, {"error": "invalid_client", "error_description": "Invalid client or Invalid client credentials"})
        token = "eyJhbGciOiJSUzI1NiJ9." + secrets.token_urlsafe(24)
        self.tokens[token] = self.now + self.token_lifetime
        self.issued.append(token)
        return _json(200, {"access_token": token, "expires_in": self.token_lifetime, "refresh_expires_in": 0,
                           "token_type": "Bearer", "not-before-policy": 0, "scope": "profile email"})

    def _realm(self) -> dict[str, Any]:
        return {"id": self.realm, "realm": self.realm, "enabled": True, "notBefore": self.realm_not_before,
                "accessTokenLifespan": self.access_token_lifespan, "accessTokenLifespanForImplicitFlow": 900,
                "ssoSessionIdleTimeout": 1800, "ssoSessionMaxLifespan": 36000, "offlineSessionIdleTimeout": 2592000,
                "revokeRefreshToken": False, "bruteForceProtected": True}

    def _clients(self) -> list[dict[str, Any]]:
        result = []
        for client_id, client_uuid in sorted(self.clients.items()):
            attributes: dict[str, str] = {"post.logout.redirect.uris": "+"}
            if client_id in self.client_lifespans:
                attributes["access.token.lifespan"] = str(self.client_lifespans[client_id])
            client: dict[str, Any] = {"id": client_uuid, "clientId": client_id, "enabled": True,
                                      "protocol": "openid-connect", "publicClient": False, "attributes": attributes,
                                      "notBefore": 0}
            if client_id in self.admin_urls:
                client["adminUrl"] = self.admin_urls[client_id]
            result.append(client)
        return result

    def _admin(self, request: httpx.Request, parts: list[str]) -> httpx.Response:
        method = request.method
        if parts == [""] and method == "GET":
            return _json(200, self._realm())
        if parts == ["clients"] and method == "GET":
            return _json(200, self._clients())
        if parts == ["push-revocation"] and method == "POST":
            self.pushes += 1
            urls = {c: u + "/k_push_not_before" for c, u in self.admin_urls.items()}
            return _json(200, {"successRequests": sorted(u for c, u in urls.items() if c not in self.push_refused),
                               "failedRequests": sorted(u for c, u in urls.items() if c in self.push_refused)})
        if parts == ["users"] and method == "GET":
            return _json(200, self._search(request.url.params))
        if not parts or parts[0] != "users" or len(parts) < 2:
            return _json(404, {"error": "Unable to find matching target resource method"})
        user = self.users.get(parts[1])
        if user is None:
            return _json(404, {"error": "User not found"})
        user_id, rest = parts[1], parts[2:]
        if not rest and method == "GET":
            return _json(200, user)
        if not rest and method == "PUT":
            body = json.loads(request.content)
            self.puts.append(body)
            if "enabled" in body:
                user["enabled"] = bool(body["enabled"])  # sessions untouched, as in Keycloak
            if "requiredActions" in body:
                user["requiredActions"] = list(body["requiredActions"])  # replaces the list
            return _json(204)
        if rest == ["credentials"] and method == "GET":
            return _json(200, self.credentials[user_id])
        if len(rest) == 2 and rest[0] == "credentials" and method == "DELETE":
            kept = [c for c in self.credentials[user_id] if c["id"] != rest[1]]
            if len(kept) == len(self.credentials[user_id]):
                return _json(404, {"error": "Credential not found"})
            self.credentials[user_id] = kept
            return _json(204)
        if rest == ["federated-identity"] and method == "GET":
            return _json(200, self.federated[user_id])
        if rest == ["sessions"] and method == "GET":
            return _json(200, self.sessions[user_id])
        if rest == ["logout"] and method == "POST":
            user["notBefore"] = int(self.now)
            if not self.sticky_sessions:
                self.sessions[user_id] = []
            return _json(204)
        if rest == ["consents"] and method == "GET":
            return _json(200, [
                {"clientId": client_id, "grantedClientScopes": [], "createdDate": None, "lastUpdatedDate": None,
                 "additionalGrants": [{"client": self.clients[client_id], "key": "Offline Token"}]}
                for client_id, held in self.offline[user_id].items() if held
            ])
        if len(rest) == 2 and rest[0] == "offline-sessions" and method == "GET":
            by_uuid = {v: k for k, v in self.clients.items()}
            if rest[1] not in by_uuid:
                return _json(404, {"error": "Client not found"})
            return _json(200, self.offline[user_id].get(by_uuid[rest[1]], []))
        if len(rest) == 2 and rest[0] == "consents" and method == "DELETE":
            if rest[1] not in self.clients:
                return _json(404, {"error": "Client not found"})
            if not self.offline[user_id].get(rest[1]):
                return _json(404, {"error": "Consent nor offline token not found"})
            self.offline[user_id][rest[1]] = []
            return _json(204)
        return _json(405, {"error": "HTTP 405 Method Not Allowed"})

    def _search(self, params: httpx.QueryParams) -> list[dict[str, Any]]:
        found = list(self.users.values())
        if "username" in params:
            wanted = params["username"].lower()
            exact = params.get("exact") == "true"
            found = [u for u in found if (u["username"] == wanted if exact else wanted in u["username"])]
        if "q" in params:
            key, _, value = params["q"].partition(":")
            found = [u for u in found if value in u["attributes"].get(key, [])]
        if params.get("briefRepresentation") == "true":
            found = [{k: v for k, v in u.items() if k != "attributes"} for u in found]
        return found


@dataclass
class FakeLemonLdapCli:
    """``lemonldap-ng-sessions`` as 2.16 behaves: ``search --where k=v`` prints a JSON array of
    sessions, ``delete --where k=v`` removes them and exits 0; run as the wrong user it prints
    "Permission denied" on stderr and still exits 0 (removing nothing)."""

    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    permission_denied: bool = False
    calls: list[list[str]] = field(default_factory=list)
    environments: list[dict[str, str]] = field(default_factory=list)

    def add(self, uid: str, count: int) -> None:
        for _ in range(count):
            sid = secrets.token_hex(32)
            self.sessions[sid] = {"_session_id": sid, "uid": uid, "ipAddr": "198.51.100.4", "_utime": 1_757_000_000,
                                  "_session_kind": "SSO", "_whatToTrace": uid}

    def count(self, uid: str) -> int:
        return sum(1 for s in self.sessions.values() if s["uid"] == uid)

    def __call__(self, argv: Sequence[str], env: dict[str, str], timeout: float) -> CommandResult:
        args = list(argv)
        self.calls.append(args)
        self.environments.append(env)
        if self.permission_denied:
            return CommandResult(0, "", "Unable to open /var/lib/lemonldap-ng/sessions: Permission denied\n")
        where = args[args.index("--where") + 1] if "--where" in args else ""
        key, _, value = where.partition("=")
        matching = [sid for sid, s in self.sessions.items() if str(s.get(key)) == value]
        if "search" in args:
            return CommandResult(0, json.dumps([self.sessions[s] for s in matching], indent=3), "")
        if "delete" in args:
            for sid in matching:
                del self.sessions[sid]
            return CommandResult(0, "", "")
        return CommandResult(1, "", "unknown action")
