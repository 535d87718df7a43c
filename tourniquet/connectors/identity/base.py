"""Identity provider connector: end SSO sessions, revoke tokens, force re-authentication.

Locking the directory entry stops new logins but not the sessions already open at the
identity provider (IdP), nor the tokens those sessions issued. This module is the
one interface the ``identity.*`` actions talk to, whatever the IdP (the kinds are listed in
:mod:`tourniquet.connectors.identity`).

Each client implements :class:`IdentityClient` for what its IdP can do and raises
:class:`Unsupported` (a :class:`~tourniquet.errors.PermanentError`) for the rest.
Tests pass an ``httpx.MockTransport`` (or a fake command runner) as the ``transport=`` of
:func:`~tourniquet.connectors.identity.connect` or of the client classes.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tourniquet.connectors._http import HttpSettings, plaintext_problem
from tourniquet.connectors.directory import Account
from tourniquet.errors import AccountNotFound, PermanentError
from tourniquet.secrets import SecretRef

__all__ = [
    "IdentityConfig",
    "IdentityUser",
    "IdentitySession",
    "IdentityClient",
    "Credential",
    "FederatedLink",
    "TokenPolicy",
    "PushResult",
    "Unsupported",
    "lookup_value",
    "SYSTEM",
]

SYSTEM = "identity"
DEFAULT_SESSIONS_COMMAND = ["/usr/share/lemonldap-ng/bin/lemonldap-ng-sessions"]

class Unsupported(PermanentError):
    """This kind of identity provider has no way to do what was asked."""


class IdentityConfig(BaseModel):
    """Which identity provider a site uses, how to reach it, and how to find a practitioner in it."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["keycloak", "lemonldap", "oidc"] = Field(description="Which identity provider.")
    url: str = Field(
        "",
        description="Base URL. keycloak: https://sso.example (add /auth for Keycloak before 17); "
        "oidc: the issuer URL; lemonldap: the portal URL (for the record only).",
    )
    realm: str | None = Field(None, description="keycloak: the realm holding the practitioners.")
    client_id: str | None = Field(None, description="keycloak: the service-account client; oidc: the platform's client.")
    client_secret: SecretRef | None = Field(None, description="Where the client secret lives.")
    lookup: Literal["username", "attribute"] = Field(
        "username", description="Find the IdP user by username, or by an attribute holding the RPPS number."
    )
    username_from: Literal["uid", "rpps", "idnat", "mail"] = Field(
        "uid",
        description="Which directory value is the IdP username (idnat = '8' + RPPS, as Pro Santé Connect names users).",
    )
    rpps_attribute: str = Field("rpps", description="lookup: attribute — the IdP user attribute holding the RPPS number.")
    timeout: float = Field(10.0, gt=0, description="Seconds for each read/write of a call.")
    connect_timeout: float = Field(5.0, gt=0, description="Seconds to connect.")
    verify_certificates: bool = Field(True, description="Check the IdP's TLS certificate (keep it on).")
    ca_file: str | None = Field(None, description="CA bundle that signed the IdP certificate.")
    allow_plaintext: bool = Field(
        False, description="Allow http:// to a host that is not loopback (the client secret travels in clear). "
        "Test systems only.")
    token_refresh_margin: float = Field(
        30.0, ge=0, description="keycloak: fetch a new admin token this many seconds before the current one expires."
    )
    revocation_endpoint: str | None = Field(
        None, description="oidc: RFC 7009 endpoint; empty = read from the issuer's discovery document."
    )
    sessions_command: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SESSIONS_COMMAND),
        description="lemonldap: the lemonldap-ng-sessions command, e.g. [ssh, llng-host, sudo, /usr/share/…].",
    )
    run_as: str | None = Field(
        None, description="lemonldap: 'user' or 'user:group' for the CLI's --user/--group (the session store's owner)."
    )
    ini_file: str | None = Field(None, description="lemonldap: lemonldap-ng.ini to use (LLNG_DEFAULTCONFFILE).")
    session_key: str = Field("uid", pattern=r"^\w+$", description="lemonldap: session field holding the login.")
    broker_alias: str | None = Field(
        None, pattern=r"^[A-Za-z0-9._-]+$",
        description="keycloak: alias of the identity provider the realm brokers practitioners through, e.g. psc "
        "(Pro Santé Connect). Containment then says what the platform cannot end: the PSC session itself.",
    )
    broker_name: str = Field("Pro Santé Connect", description="keycloak: how reports name the brokered provider.")

    @model_validator(mode="after")
    def _complete(self) -> "IdentityConfig":
        if self.kind == "keycloak":
            missing = [n for n in ("url", "realm", "client_id", "client_secret") if not getattr(self, n)]
            if missing:
                raise ValueError(f"keycloak needs {', '.join(missing)}")
        if self.kind == "oidc" and not (self.url or self.revocation_endpoint):
            raise ValueError("oidc needs url (the issuer) or revocation_endpoint")
        if self.kind == "oidc" and not self.client_id:
            raise ValueError("oidc needs client_id")
        if self.kind in ("keycloak", "oidc"):  # lemonldap's url is for the record: nothing is sent to it
            for field, url in (("url", self.url), ("revocation_endpoint", self.revocation_endpoint or "")):
                problem = url and plaintext_problem(url, allow_plaintext=self.allow_plaintext, section="identity",
                                                    field=field)
                if problem:
                    raise ValueError(problem)
        return self

    def http_settings(self) -> HttpSettings:
        return HttpSettings("identity", timeout=self.timeout, connect_timeout=self.connect_timeout,
                            verify_certificates=self.verify_certificates, ca_file=self.ca_file,
                            allow_plaintext=self.allow_plaintext)


class IdentityUser(BaseModel):
    """A user as the identity provider knows it."""

    id: str
    username: str
    enabled: bool = True
    required_actions: list[str] = Field(default_factory=list)


class Credential(BaseModel):
    """One credential of a user at the IdP (never its secret: the IdP does not give it out)."""

    id: str
    type: str = Field(description="password, otp, webauthn, webauthn-passwordless …")
    label: str | None = None
    created: int | None = Field(None, description="Unix time (seconds).")


class FederatedLink(BaseModel):
    """A link from the IdP user to an account at a brokered provider (Pro Santé Connect)."""

    provider: str = Field(description="The identity provider alias in the realm.")
    user_id: str = Field(description="The user's id at that provider (for PSC: its idNat / sub).")
    user_name: str = ""


class TokenPolicy(BaseModel):
    """How long what the IdP already issued stays valid: the residual window after containment."""

    access_token_lifespan: int = Field(description="Seconds: realm accessTokenLifespan.")
    longest_client_lifespan: int = Field(description="Seconds: the longest access token any client issues "
                                         "(a client's access.token.lifespan overrides the realm's).")
    clients_overriding: dict[str, int] = Field(default_factory=dict)
    clients_accepting_push: list[str] = Field(default_factory=list, description="Clients with an admin URL.")
    not_before: int = 0


class PushResult(BaseModel):
    """Keycloak's GlobalRequestResult for a not-before push."""

    succeeded: list[str] = Field(default_factory=list)
    failed: list[str] = Field(default_factory=list)


class IdentitySession(BaseModel):
    """One open session at the IdP: kept as evidence of where and since when the account was used."""

    id: str
    ip: str | None = None
    started: int | None = Field(None, description="Unix time (seconds).")
    last_access: int | None = Field(None, description="Unix time (seconds).")
    clients: list[str] = Field(default_factory=list)
    offline: bool = False


@runtime_checkable
class IdentityClient(Protocol):
    """What the ``identity.*`` actions need from an identity provider.

    ``capabilities`` names what the client can do (``sessions``, ``end_sessions``,
    ``offline``, ``required_actions``, ``enable``, ``revoke_token``, ``credentials``, ``federation``,
    ``tokens``); the others raise
    :class:`Unsupported`.
    """

    kind: str
    capabilities: frozenset[str]

    def find_user(self, account: Account) -> IdentityUser: ...
    def get_user(self, user: IdentityUser) -> IdentityUser: ...
    def sessions(self, user: IdentityUser) -> list[IdentitySession]: ...
    def end_sessions(self, user: IdentityUser) -> None: ...
    def offline_sessions(self, user: IdentityUser) -> list[IdentitySession]: ...
    def offline_clients(self, user: IdentityUser) -> list[str]: ...
    def revoke_offline(self, user: IdentityUser, client_id: str) -> None: ...
    def add_required_actions(self, user: IdentityUser, actions: list[str]) -> list[str]: ...
    def remove_required_actions(self, user: IdentityUser, actions: list[str]) -> list[str]: ...
    def set_enabled(self, user: IdentityUser, enabled: bool) -> None: ...
    def credentials(self, user: IdentityUser) -> list[Credential]: ...
    def remove_credential(self, user: IdentityUser, credential_id: str) -> None: ...
    def federated_links(self, user: IdentityUser) -> list[FederatedLink]: ...
    def token_policy(self) -> TokenPolicy: ...
    def push_revocation(self) -> PushResult: ...
    def close(self) -> None: ...


def lookup_value(config: IdentityConfig, account: Account) -> tuple[Literal["username", "attribute"], str]:
    """How to find ``account`` at the IdP: ``("username", value)`` or ``("attribute", rpps)``."""
    if config.lookup == "attribute":
        if not account.rpps:
            raise AccountNotFound(
                f"{account.uid or account.dn} has no RPPS number in the directory: cannot look it up "
                f"by the IdP attribute {config.rpps_attribute!r}", system=SYSTEM)
        return "attribute", account.rpps
    source = {"uid": account.uid, "rpps": account.rpps, "mail": account.mail,
              "idnat": f"8{account.rpps}" if account.rpps else None}[config.username_from]
    if not source:
        raise AccountNotFound(
            f"{account.uid or account.dn} has no {config.username_from} in the directory: cannot name its IdP user",
            system=SYSTEM)
    return "username", source


class _NotSupported:
    """Mixin: every operation a kind cannot do raises :class:`Unsupported`, saying why."""

    kind = "?"
    why = ""

    def _unsupported(self, what: str) -> Unsupported:
        return Unsupported(f"{self.kind} cannot {what}: {self.why}", system=SYSTEM)

    def get_user(self, user: IdentityUser) -> IdentityUser:
        return user

    def offline_sessions(self, user: IdentityUser) -> list[IdentitySession]:
        raise self._unsupported("list offline sessions")

    def offline_clients(self, user: IdentityUser) -> list[str]:
        raise self._unsupported("list offline tokens")

    def revoke_offline(self, user: IdentityUser, client_id: str) -> None:
        raise self._unsupported("revoke offline tokens")

    def add_required_actions(self, user: IdentityUser, actions: list[str]) -> list[str]:
        raise self._unsupported("require actions at next login")

    def remove_required_actions(self, user: IdentityUser, actions: list[str]) -> list[str]:
        raise self._unsupported("remove required actions")

    def set_enabled(self, user: IdentityUser, enabled: bool) -> None:
        raise self._unsupported("disable or enable users")

    def credentials(self, user: IdentityUser) -> list[Credential]:
        raise self._unsupported("list credentials")

    def remove_credential(self, user: IdentityUser, credential_id: str) -> None:
        raise self._unsupported("remove credentials")

    def federated_links(self, user: IdentityUser) -> list[FederatedLink]:
        raise self._unsupported("list federated identities")

    def token_policy(self) -> TokenPolicy:
        raise self._unsupported("read token lifespans")

    def push_revocation(self) -> PushResult:
        raise self._unsupported("push a not-before revocation")
