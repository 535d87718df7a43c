"""A site at run time: its configuration and the connector clients built from it, lazily."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from tourniquet.config import SiteConfig
from tourniquet.connectors.directory import DirectoryClient
from tourniquet.errors import ConfigError
from tourniquet.untrusted import check_incident_id

__all__ = ["Site"]


class Site:
    """Build each connector the first time a step needs it; close them all at the end of a run.

    Each connector package provides ``connect(config, *, state_dir, transport=None) -> client``, called
    here the same way; clients with a ``close()`` are closed by :meth:`close`.
    """

    def __init__(self, config: SiteConfig) -> None:
        self.config = config
        self._lock = threading.RLock()
        self._clients: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return self.config.site

    def _client(self, name: str, build: Callable[[], Any]) -> Any:
        client = self._clients.get(name)  # built already: every call of every item asks
        if client is not None:
            return client
        with self._lock:
            if name not in self._clients:
                self._clients[name] = build()
            return self._clients[name]

    @property
    def directory(self) -> DirectoryClient:
        from tourniquet.connectors import directory

        client: DirectoryClient = self._client(
            "directory", lambda: directory.connect(self.config.directory, state_dir=self.config.state_dir))
        return client

    @property
    def directory_transport(self) -> str:
        """The LDAP library the directory is reached through ("ldap3" or "libldap"), without connecting."""
        client = self._clients.get("directory")
        if client is not None:
            return str(getattr(client, "transport", "ldap3"))
        from tourniquet.connectors import directory

        return directory.transport_for(self.config.directory)

    @property
    def identity(self) -> Any:
        """The identity provider client, or None when the site has none (the demo)."""
        config = self.config.identity
        if config is None:
            return None
        from tourniquet.connectors import identity

        return self._client("identity", lambda: identity.connect(config, state_dir=self.config.state_dir))

    @property
    def tickets(self) -> Any:
        from tourniquet.connectors import tickets

        return self._client("tickets", lambda: tickets.connect(self.config.tickets, state_dir=self.config.state_dir))

    @property
    def audit(self) -> Any:
        config = self.config.audit
        if config is None:
            raise ConfigError(f"the site {self.name!r} has no audit configured")
        from tourniquet.connectors import audit

        return self._client("audit", lambda: audit.connect(config, state_dir=self.config.state_dir))

    @property
    def notify(self) -> Any:
        """The site's notifier (a :class:`~tourniquet.connectors.notify.Notifier`; no channel: nobody is told)."""
        from tourniquet.connectors import notify

        return self._client("notify", lambda: notify.connect(self.config.notify, state_dir=self.config.state_dir))

    def incident_dir(self, incident: str) -> Path:
        """The incident's evidence folder: always a child of evidence_dir (the id is checked here too)."""
        return self.config.evidence_dir / check_incident_id(incident)

    def plan_dir(self, incident: str) -> Path:
        return self.config.state_dir / "plans" / check_incident_id(incident)

    def require(self, section: str) -> None:
        if getattr(self.config, section, None) is None:
            raise ConfigError(f"the site {self.name!r} has no {section} configured")

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                close = getattr(client, "close", None)
                if callable(close):
                    close()
            self._clients.clear()
