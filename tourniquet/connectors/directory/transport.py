"""Which LDAP library carries the connector's requests, and the small interface both of them offer.

Two transports speak LDAP for the connector: **ldap3** (pure Python, always installed, so that
``pip install tourniquet`` needs no compiler) and **libldap** (OpenLDAP's C library through
python-ldap, the ``libldap`` extra: faster at encoding and decoding, which shows at a million entries).
The site chooses with ``directory.transport``; ``auto`` takes libldap when it is importable, else ldap3,
and the run says which it got. Both give :class:`DirectoryConnection`: ``search`` and ``modify``, each
leaving its answer in ``response`` (entries, values as bytes) and ``result`` (controls, decoded by
:mod:`.controls`), so that a contract test's stand-in for a vendor's server is a plain object.

May import: ``directory.controls``, ``tourniquet.extras``. Imported by: both transports (:mod:`.libldap`,
:mod:`.ldap3_connection`), ``directory.connections`` (which opens the chosen one), ``directory.client``.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from tourniquet.connectors.directory.controls import Control
from tourniquet.extras import available, require

__all__ = ["DirectoryConnection", "TlsSettings", "Transport", "TRANSPORTS", "choose", "reachable",
           "BASE", "SUBTREE", "REPLACE", "ADD", "DELETE", "MODIFY", "ENTRY"]

#: Scopes and modify operations, spelled as ldap3 spells them (contract tests may use either library's names).
BASE, SUBTREE = "BASE", "SUBTREE"
REPLACE, ADD, DELETE = "MODIFY_REPLACE", "MODIFY_ADD", "MODIFY_DELETE"
#: A flavor's operation name → the connection's.
MODIFY = {"replace": REPLACE, "add": ADD, "delete": DELETE}
#: The ``type`` of an entry in ``response`` (references are not followed, so never returned).
ENTRY = "searchResEntry"

Transport = Literal["ldap3", "libldap"]
TRANSPORTS: tuple[Transport, ...] = ("ldap3", "libldap")


class DirectoryConnection(Protocol):
    """What the client asks of a connection; after each call, ``response`` (entries) and ``result`` (controls)."""

    bound: bool
    closed: bool
    response: list[dict[str, Any]]
    result: dict[str, Any]

    def search(self, search_base: str, search_filter: str, search_scope: str = ..., attributes: Sequence[str] | None = ...,
               size_limit: int = ..., paged_size: int | None = ..., paged_cookie: bytes | None = ...,
               controls: Sequence[Control] | None = ...) -> bool: ...

    def modify(self, dn: str, changes: dict[str, list[tuple[str, list[Any]]]],
               controls: Sequence[Control] | None = ...) -> bool: ...

    def unbind(self) -> None: ...


@dataclass(frozen=True)
class TlsSettings:
    """How the server's certificate is checked: against ``ca_file`` (or the system's CAs), and its host name."""

    verify: bool = True
    ca_file: str | None = None


def choose(setting: str) -> Transport:
    """The transport a site's setting names: ``auto`` is libldap when python-ldap is importable, else ldap3.

    An explicit ``libldap`` without python-ldap is a configuration error naming the extra to install.
    """
    if setting == "auto":
        return "libldap" if available("ldap") else "ldap3"
    if setting == "libldap":
        require("ldap", "libldap", "directory.transport: libldap")
        return "libldap"
    return "ldap3"


def reachable(url: str, timeout: float) -> bool:
    """The URL's TCP port answers: then a failed TLS connection failed in its handshake, not on the network."""
    parts = urlsplit(url)
    port = parts.port or (636 if parts.scheme.lower() == "ldaps" else 389)
    try:
        with socket.create_connection((parts.hostname or "localhost", port), timeout=min(timeout, 5.0)):
            return True
    except OSError:
        return False
