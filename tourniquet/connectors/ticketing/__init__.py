"""Ticket system backends behind :class:`tourniquet.connectors.tickets.Backend`.

One module per system: ``file`` (the embedded default), ``rt`` (Request Tracker 5
REST2), ``glpi`` (GLPI REST API), ``jira`` (Cloud and Data Center), ``thehive``
(TheHive 5 alerts). HTTP backends share :class:`~tourniquet.connectors.ticketing.http.HttpApi`,
which turns httpx failures into Tourniquet errors at the boundary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tourniquet.connectors.tickets import Backend, TicketsConfig

__all__ = ["build"]


def build(config: "TicketsConfig", transport: Any = None) -> "Backend":
    """The backend for ``config.kind``; ``transport`` (an httpx transport) is for contract tests."""
    if config.kind == "file":
        from tourniquet.connectors.ticketing.file import FileStore

        return FileStore(config.path)
    if config.kind == "rt":
        from tourniquet.connectors.ticketing.rt import RequestTracker

        return RequestTracker(config, transport=transport)
    if config.kind == "glpi":
        from tourniquet.connectors.ticketing.glpi import Glpi

        return Glpi(config, transport=transport)
    if config.kind == "jira":
        from tourniquet.connectors.ticketing.jira import Jira

        return Jira(config, transport=transport)
    from tourniquet.connectors.ticketing.thehive import TheHive

    return TheHive(config, transport=transport)
