"""The directory's LDAP connections: one service identity, one connection per thread, TLS as configured.

The only module that opens LDAP connections, through the site's transport (:mod:`.transport`: ldap3
or libldap, chosen once, when the client is built). The channel is checked before anything is sent (a bind password never goes over plain ``ldap://`` unless the site
says the directory is a loopback test one); every library exception met while connecting or
operating is translated here (:func:`~tourniquet.connectors.directory.errors.ldap_errors`), and a
connection that failed in a way worth retrying is dropped so that the next operation opens a fresh one.

May import: ``directory.transport`` and the transport chosen (``directory.libldap`` or
``directory.ldap3_connection``, imported only then), ``directory.config``, ``directory.errors``, ``tourniquet.errors``.
Imported by: ``directory.client`` only.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from tourniquet.connectors.directory.config import DirectoryConfig
from tourniquet.connectors.directory.errors import ldap_errors
from tourniquet.connectors.directory.transport import DirectoryConnection, TlsSettings, Transport, choose
from tourniquet.errors import ConfigError, TransientError

__all__ = ["Connections", "opener"]

log = structlog.get_logger("tourniquet")


def opener(transport: Transport) -> Callable[..., Any]:
    """The connection class of a transport, its library imported now (python-ldap only if chosen)."""
    if transport == "libldap":
        from tourniquet.connectors.directory.libldap import LdapConnection

        return LdapConnection
    from tourniquet.connectors.directory.ldap3_connection import Ldap3Connection

    return Ldap3Connection


class Connections:
    """Per-thread connections to one directory, bound as the site's service identity.

    ``factory`` is the seam contract tests use to stand in for a vendor's server (389-DS, Active
    Directory); without it, :meth:`open` connects to ``config.url`` through :attr:`transport`.
    """

    def __init__(self, config: DirectoryConfig, password: str | None = None,
                 factory: Callable[[], Any] | None = None) -> None:
        self.config = config
        self._password = password
        self._factory = factory or self.open
        self._local = threading.local()
        self._opened: list[Any] = []
        self._guard = threading.Lock()
        self._check_channel()
        #: The LDAP library that carries the requests ("ldap3" or "libldap"), as the site's setting resolves here.
        self.transport: Transport = choose(config.transport)
        self._connection_class = opener(self.transport)

    @property
    def encrypted(self) -> bool:
        return self.config.url.lower().startswith("ldaps://") or self.config.start_tls

    def _check_channel(self) -> None:
        if not self.encrypted and not self.config.allow_plaintext:
            raise ConfigError(
                f"{self.config.url} would send the bind password in clear: use ldaps://, start_tls: true, "
                "or (loopback test directories only) allow_plaintext: true"
            )
        if self.encrypted and self.config.ca_file and not os.path.isfile(self.config.ca_file):
            raise ConfigError(f"directory.ca_file {self.config.ca_file!r} is not a file")
        if self.encrypted and not self.config.verify_certificates:
            log.warning("directory.tls_unverified", url=self.config.url)

    def open(self) -> Any:
        """A new bound connection (StartTLS first when configured); the password is read once, when first needed."""
        if self._password is None:
            self._password = self.config.bind_password.get()
        tls = TlsSettings(self.config.verify_certificates, self.config.ca_file) if self.encrypted else None
        connection = self._connection_class(
            self.config.url, timeout=self.config.timeout, tls=tls,
            start_tls=self.config.start_tls and not self.config.url.lower().startswith("ldaps://"))
        connection.bind(self.config.bind_dn, self._password)
        return connection

    def current(self) -> DirectoryConnection:
        """This thread's connection, opened (and bound) if it has none or lost it."""
        connection = getattr(self._local, "connection", None)
        if connection is not None and connection.bound and not connection.closed:
            return connection
        with ldap_errors(f"connecting to {self.config.url} as {self.config.bind_dn}"):
            connection = self._factory()
        self._local.connection = connection
        with self._guard:
            self._opened.append(connection)
        return connection

    @contextmanager
    def operation(self, what: str) -> Iterator[Any]:
        """This thread's connection for one operation; its errors translated, saying ``what`` failed."""
        try:
            with ldap_errors(what):
                yield self.current()
        except TransientError:
            self._local.connection = None  # next call opens a fresh one
            raise

    def close(self) -> None:
        """Unbind every connection any thread opened (best effort: a socket may be gone already)."""
        with self._guard:
            for connection in self._opened:
                try:
                    connection.unbind()
                except Exception:  # closing is best effort: the socket may be gone already
                    pass
            self._opened.clear()
        self._local = threading.local()
