"""Identity provider connector: end SSO sessions, revoke tokens, force re-authentication.

    kind        module       how
    keycloak    keycloak     admin REST API, service account (client credentials)
    lemonldap   lemonldap    the lemonldap-ng-sessions CLI on the LemonLDAP::NG host
    oidc        oidc         RFC 7009 revocation of tokens the platform itself holds

``base`` holds the site settings, the user and session models and the :class:`IdentityClient`
interface; the HTTP kinds go through :mod:`tourniquet.connectors._http` (timeouts, the plaintext
guard, retries, error translation). May import: ``tourniquet.errors``, ``secrets``,
``connectors._http``, ``connectors.directory`` (the :class:`Account` model). Imported by: ``config``,
``site``, ``actions.identity``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tourniquet.connectors.identity.base import (
    SYSTEM,
    Credential,
    FederatedLink,
    IdentityClient,
    IdentityConfig,
    IdentitySession,
    IdentityUser,
    PushResult,
    TokenPolicy,
    Unsupported,
    lookup_value,
)

__all__ = [
    "IdentityConfig", "IdentityUser", "IdentitySession", "IdentityClient", "Unsupported", "lookup_value",
    "Credential", "FederatedLink", "TokenPolicy", "PushResult",
    "SYSTEM", "KINDS", "TRANSPORT", "connect",
]

#: Test seam: ``None`` (real network), or a callable ``(config) -> transport`` returning an
#: ``httpx.BaseTransport`` for HTTP kinds or a command runner for ``lemonldap``. Tests
#: monkeypatch it so that a whole playbook run talks to a fake IdP.
TRANSPORT: Callable[[IdentityConfig], Any] | None = None


def _keycloak(config: IdentityConfig, transport: Any) -> IdentityClient:
    from tourniquet.connectors.identity.keycloak import KeycloakClient

    return KeycloakClient(config, transport=transport)


def _lemonldap(config: IdentityConfig, transport: Any) -> IdentityClient:
    from tourniquet.connectors.identity.lemonldap import LemonLdapClient

    return LemonLdapClient(config, runner=transport)


def _oidc(config: IdentityConfig, transport: Any) -> IdentityClient:
    from tourniquet.connectors.identity.oidc import OidcClient

    return OidcClient(config, transport=transport)


#: ``identity.kind`` → how to build its client (imported only when a site uses it).
KINDS: dict[str, Callable[[IdentityConfig, Any], IdentityClient]] = {
    "keycloak": _keycloak, "lemonldap": _lemonldap, "oidc": _oidc,
}


def connect(config: IdentityConfig, *, state_dir: Path | None, transport: Any = None) -> IdentityClient:
    """The client for the site's identity provider (called lazily by :class:`~tourniquet.site.Site`).

    ``state_dir`` is unused (every connector is called the same way); ``transport`` is the test seam
    (an ``httpx`` transport, or a command runner for ``lemonldap``), else :data:`TRANSPORT`'s.
    """
    if transport is None and TRANSPORT is not None:
        transport = TRANSPORT(config)
    return KINDS[config.kind](config, transport)
