"""Audit connector: the platform's access log, read-only — what the scope and the hygiene checks read.

``config`` is the site's ``audit:`` section (where the log lives, the platform's vocabulary: action
codes, the subject table, categories); ``events`` the canonical event and the vocabulary mapping;
the one SQL layer is ``database`` (SQLite, PostgreSQL: quoting, column checks, UTC sessions, error
classification, query recording) with ``dialects`` (the few expressions that differ), used by
``sql`` (the scope's :class:`SqlSource`) and ``aggregates`` (the hygiene checks' :class:`AuditDb`); ``stream``, ``files`` and ``opensearch`` the sources that cannot fold in SQL;
``client`` the :class:`AuditClient` actions use. :func:`connect` picks the source from a table of kinds.

Library errors (sqlite3, psycopg, httpx, OSError) are translated into :mod:`tourniquet.errors` types
inside this package (httpx by :mod:`tourniquet.connectors._http`); nothing above sees them.

May import: ``tourniquet.errors``, ``extras``, ``secrets``, ``nir``, ``scope``, ``attribution``, ``connectors._http``. Imported by:
``config``, ``site``, ``actions.audit``, ``hygiene`` (``aggregates.AuditDb``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tourniquet.connectors.audit.client import AuditClient, ScopePlan, account_key_of
from tourniquet.connectors.audit.config import SQL_KINDS, AuditConfig, ColumnMapping, SubjectTable
from tourniquet.connectors.audit.events import AuditEvent, AuditSource, Span, Windows, parse_fields, parse_time

__all__ = [
    "AuditConfig", "ColumnMapping", "SubjectTable", "SQL_KINDS", "AuditEvent", "AuditSource", "Span", "Windows",
    "AuditClient", "ScopePlan", "account_key_of", "parse_fields", "parse_time", "connect", "build_source", "KINDS",
]


def _sql(config: AuditConfig, transport: Any) -> AuditSource:
    from tourniquet.connectors.audit.sql import SqlSource

    return SqlSource(config)


def _files(config: AuditConfig, transport: Any) -> AuditSource:
    from tourniquet.connectors.audit.files import FileSource

    return FileSource(config)


def _opensearch(config: AuditConfig, transport: Any) -> AuditSource:
    from tourniquet.connectors.audit.opensearch import OpenSearchSource

    return OpenSearchSource(config, transport=transport)


#: ``audit.kind`` → how to build its source (imported only when a site uses it).
KINDS: dict[str, Callable[[AuditConfig, Any], AuditSource]] = {
    "sqlite": _sql, "postgresql": _sql, "jsonl": _files, "csv": _files, "opensearch": _opensearch,
}


def build_source(config: AuditConfig, transport: Any = None) -> AuditSource:
    """The source for ``config.kind``; ``transport`` (an httpx transport) is for contract tests."""
    return KINDS[config.kind](config, transport)


def connect(config: AuditConfig, *, state_dir: Path | None, transport: Any = None) -> AuditClient:
    """The site's access-log client (``Site.audit`` calls this lazily). SQL sources check the configured
    table and columns against the real ones now, so a wrong name fails before anything is read.

    ``state_dir`` is unused (every connector is called the same way); ``transport`` (an httpx
    transport) is for contract tests of ``opensearch``."""
    return AuditClient(config, build_source(config, transport))
