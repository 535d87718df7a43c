"""A site at run time: its configuration and the connector clients built from it, lazily."""

from __future__ import annotations

import threading
from pathlib import Path

from tourniquet.config import SiteConfig
from tourniquet.connectors.directory import DirectoryClient
from tourniquet.errors import ConfigError

__all__ = ["Site"]


class Site:
    """Build each connector the first time a step needs it; close them all at the end of a run."""

    def __init__(self, config: SiteConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._directory: DirectoryClient | None = None

    @property
    def name(self) -> str:
        return self.config.site

    @property
    def directory(self) -> DirectoryClient:
        with self._lock:
            if self._directory is None:
                self._directory = DirectoryClient(self.config.directory)
            return self._directory

    def incident_dir(self, incident: str) -> Path:
        return self.config.evidence_dir / incident

    def plan_dir(self, incident: str) -> Path:
        return self.config.state_dir / "plans" / incident

    def require(self, section: str) -> None:
        if getattr(self.config, section, None) is None:
            raise ConfigError(f"the site {self.name!r} has no {section} configured")

    def close(self) -> None:
        with self._lock:
            if self._directory is not None:
                self._directory.close()
                self._directory = None
