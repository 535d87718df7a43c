"""The hygiene checks' view of an SQL access log: the aggregate queries they write themselves, read-only.

The checks write their own ``GROUP BY`` queries over the configured table (quoted names from
:attr:`AuditDb.ts`, :attr:`AuditDb.account` …, expressions from :attr:`AuditDb.dialect`); window
parameters are given as ``YYYY-MM-DD`` and bound as the timestamp column compares. Opening checks
the configured columns against the real ones (:meth:`~tourniquet.connectors.audit.database.Database.check_columns`).

May import: ``audit.config``, ``audit.database``, ``audit.dialects``. Imported by: the hygiene checks
(``hygiene.checks``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from tourniquet.connectors.audit.config import AuditConfig
from tourniquet.connectors.audit.database import Database, quote
from tourniquet.connectors.audit.dialects import EpochDialect

__all__ = ["AuditDb", "WINDOW_KEYS"]

#: Parameters that bound a time window (compared with the timestamp column) in hygiene queries.
WINDOW_KEYS = frozenset({"start", "recent", "end", "window_start", "since"})


class AuditDb:
    """Read-only aggregate queries over the configured access-log table (what hygiene checks write)."""

    def __init__(self, config: AuditConfig) -> None:
        self.config = config
        self.db = Database(config)
        self.dialect = self.db.dialect
        self.queries = self.db.queries
        self.table = quote(config.table)
        columns = config.columns
        self.ts, self.account = quote(columns.timestamp), quote(columns.account)
        self.subject, self.source_ip = quote(columns.subject), quote(columns.source_ip)
        try:
            self.db.check_columns(config.table, {"columns.timestamp": columns.timestamp,
                                                 "columns.account": columns.account,
                                                 "columns.subject": columns.subject,
                                                 "columns.source_ip": columns.source_ip}, "table")
        except Exception:
            self.db.close()
            raise

    def query(self, name: str, sql: str, params: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
        """Run one aggregate query and stream its rows; window parameters given as ``YYYY-MM-DD``."""
        bound = {k: self.dialect.window(v) if k in WINDOW_KEYS else v for k, v in params.items()}
        return self.db.query(name, sql, bound)

    def coverage(self) -> dict[str, Any]:
        """First and last event in the log (how far back the log can tell anything)."""
        sql = f"SELECT MIN({self.ts}), MAX({self.ts}) FROM {self.table}"
        first, last = next(self.query("log coverage", sql, {}), (None, None))
        return {"first_event": self.timestamp_text(first), "last_event": self.timestamp_text(last)}

    def timestamp_text(self, value: Any) -> str | None:
        """A timestamp as ISO text (epoch seconds converted), for evidence and comparisons."""
        if value is None:
            return None
        if isinstance(self.dialect, EpochDialect):
            return datetime.fromtimestamp(float(value), timezone.utc).isoformat()
        return value.isoformat() if isinstance(value, datetime) else str(value)

    def close(self) -> None:
        self.db.close()
