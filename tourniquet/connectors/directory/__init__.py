"""Directory connector (OpenLDAP's libldap, through python-ldap): OpenLDAP ppolicy, 389 Directory Server, Active Directory.

``config`` (the site's section), ``errors`` (python-ldap → Tourniquet errors), ``flavors`` (what a lock
and a forced reset are in each product), ``libldap`` (one connection: search, modify, TLS),
``connections`` (one connection per thread, the plaintext guard), ``accounts`` (which entry an id names), ``controls`` and ``readahead`` (batched reads),
``client`` (reads, writes, read-back). The only package
that speaks LDAP. May import: ``tourniquet.errors``, ``secrets``, ``model``. Imported by: ``site``,
``actions``, ``hygiene`` (the sweep).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tourniquet.connectors.directory.client import DirectoryClient, classify_identifier
from tourniquet.connectors.directory.config import DirectoryConfig
from tourniquet.connectors.directory.flavors import (
    ADMIN_LOCK,
    FLAVORS,
    SECRET_ATTRIBUTES,
    ActiveDirectoryFlavor,
    Attributes,
    Ds389Flavor,
    Flavor,
    Modification,
    OpenLdapFlavor,
    directory_time,
    without_secrets,
)
from tourniquet.connectors.directory.transport import choose
from tourniquet.model import Account

__all__ = [
    "DirectoryConfig", "Account", "Attributes", "DirectoryClient", "Flavor", "OpenLdapFlavor", "Ds389Flavor",
    "ActiveDirectoryFlavor", "FLAVORS", "Modification", "SECRET_ATTRIBUTES", "without_secrets", "ADMIN_LOCK",
    "classify_identifier", "connect", "directory_time", "transport_for",
]


def connect(config: DirectoryConfig, *, state_dir: Path | None,
            transport: Callable[[], Any] | None = None) -> DirectoryClient:
    """The site's directory client (``Site.directory`` calls this lazily).

    ``state_dir`` is unused (every connector is called the same way); ``transport`` is the contract
    tests' seam: a callable returning a :class:`~.transport.DirectoryConnection`, standing in for a vendor's server.
    """
    return DirectoryClient(config, connection_factory=transport)


def transport_for(config: DirectoryConfig) -> str:
    """The LDAP library a site's directory is reached through ("ldap3" or "libldap"): what the journal records."""
    return choose(config.transport)
