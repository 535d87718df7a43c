"""Ticket connector: one incident ticket per incident key, never lost (file store, RT, GLPI, Jira, TheHive).

``base`` holds the models every backend shares, ``client`` the :class:`TicketClient` that adds the
ledger, the per-key lock and the outbox, and one module per ticket system. :func:`connect` picks the
backend from a table of kinds.

The HTTP systems go through :mod:`tourniquet.connectors._http` (timeouts, the plaintext guard,
retries for idempotent calls, error translation).

May import: ``tourniquet.errors``, ``secrets``, ``outbox``, ``connectors._http``. Imported by: ``config``,
``site``, ``actions.tickets``, the outbox flow and CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tourniquet.connectors.tickets.base import (
    SEVERITIES,
    Backend,
    Severity,
    TicketDraft,
    TicketRef,
    TicketsConfig,
    check_key,
)
from tourniquet.connectors.tickets.client import Delivery, TicketClient, TicketState, comment_digest
from tourniquet.errors import ConfigError

__all__ = [
    "TicketsConfig", "TicketDraft", "TicketRef", "Backend", "Severity", "SEVERITIES", "check_key",
    "Delivery", "TicketState", "TicketClient", "comment_digest", "connect", "build_backend", "KINDS",
]


def _file(config: TicketsConfig, transport: Any) -> Backend:
    from tourniquet.connectors.tickets.file import FileStore

    return FileStore(config.path)


def _rt(config: TicketsConfig, transport: Any) -> Backend:
    from tourniquet.connectors.tickets.rt import RequestTracker

    return RequestTracker(config, transport=transport)


def _glpi(config: TicketsConfig, transport: Any) -> Backend:
    from tourniquet.connectors.tickets.glpi import Glpi

    return Glpi(config, transport=transport)


def _jira(config: TicketsConfig, transport: Any) -> Backend:
    from tourniquet.connectors.tickets.jira import Jira

    return Jira(config, transport=transport)


def _thehive(config: TicketsConfig, transport: Any) -> Backend:
    from tourniquet.connectors.tickets.thehive import TheHive

    return TheHive(config, transport=transport)


#: ``tickets.kind`` → how to build its backend (imported only when a site uses it).
KINDS: dict[str, Callable[[TicketsConfig, Any], Backend]] = {
    "file": _file, "rt": _rt, "glpi": _glpi, "jira": _jira, "thehive": _thehive,
}


def build_backend(config: TicketsConfig, transport: Any = None) -> Backend:
    """The backend for ``config.kind``; ``transport`` (an httpx transport) is for contract tests."""
    return KINDS[config.kind](config, transport)


def connect(config: TicketsConfig, *, state_dir: Path | None, transport: Any = None) -> TicketClient:
    """The site's ticket client (``Site.tickets`` calls this lazily); the outbox and the ledger live
    under ``state_dir``. ``transport`` (an httpx transport) is for contract tests."""
    if state_dir is None:
        raise ConfigError("tickets: the ticket client keeps its outbox and ledger under state_dir: give one")
    return TicketClient(build_backend(config, transport), Path(state_dir), use_outbox=config.outbox)
