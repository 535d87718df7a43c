"""The one connection to the access log's database (SQLite, PostgreSQL) every SQL query goes through.

- names from the site file are checked and quoted (:func:`quote`), never pasted as SQL;
- the configured table and columns are checked against the real ones when a reader opens
  (:meth:`Database.check_columns`: SQLite reads a double-quoted name it does not know as a string
  literal, so a wrong mapping would silently aggregate a constant): an unknown name fails at once,
  listing the real ones;
- PostgreSQL sessions are read-only and run in UTC whatever the server's default (a server in
  Europe/Paris would shift every hour and day), with a statement timeout; rows stream through a
  server-side cursor, so memory stays flat whatever the size of the result;
- SQLite is opened read-only; a query's fetches are bounded by ``timeout`` (progress handler);
- errors are classified once: down, busy, timed out → :class:`TransientError`; anything else →
  :class:`PermanentError` (or :class:`ConfigError` for names that do not exist);
- every query is recorded with its parameters, rows and seconds (a hygiene finding cites them).

May import: sqlite3, psycopg, ``audit.config``, ``audit.events`` (``SYSTEM``), ``audit.dialects``,
``tourniquet.errors``, ``extras``. Imported by: ``audit.sql`` (the scope's source), ``audit.aggregates`` (the hygiene
checks' view).
"""

from __future__ import annotations

import itertools
import re
import sqlite3
import time
from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import structlog

from tourniquet.connectors.audit.config import AuditConfig
from tourniquet.connectors.audit.dialects import EpochDialect, dialect_for
from tourniquet.connectors.audit.events import SYSTEM
from tourniquet.errors import ConfigError, PermanentError, TransientError
from tourniquet.extras import require

__all__ = ["quote", "Database"]

log = structlog.get_logger("tourniquet")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CURSORS = itertools.count(1)
#: Sort and hash memory of one scope query on PostgreSQL (its default, 4 MB, spills the daily walk of
#: 1,500 accounts to disk several times over); set for the query's own read-only transaction only.
QUERY_WORK_MEM = "128MB"


def quote(name: str) -> str:
    """A safely quoted (optionally schema-qualified) identifier; anything odd is a configuration error."""
    parts = name.split(".")
    if not all(_IDENT.match(p) for p in parts):
        raise ConfigError(f"audit: {name!r} is not a plain table or column name")
    return ".".join(f'"{p}"' for p in parts)


class Database:
    """One read-only connection to the access log's database; every query goes through :meth:`query`."""

    def __init__(self, config: AuditConfig) -> None:
        self.config = config
        self.dialect = dialect_for(config)
        self.queries: list[dict[str, Any]] = []
        if config.kind == "sqlite":
            self.connection: Any = self._open_sqlite(config)
        else:
            self.connection = self._open_postgres(config)

    @staticmethod
    def _open_sqlite(config: AuditConfig) -> sqlite3.Connection:
        if not config.path or not Path(config.path).is_file():
            raise ConfigError(f"audit: access log database {config.path!r} not found (check audit.path)")
        try:
            return sqlite3.connect(Path(config.path).resolve().as_uri() + "?mode=ro", uri=True,
                                   timeout=config.timeout, check_same_thread=False)
        except sqlite3.Error as exc:
            raise PermanentError(f"cannot open the access log {config.path}: {exc}", system=SYSTEM) from exc

    @staticmethod
    def _open_postgres(config: AuditConfig) -> Any:
        require("psycopg", "postgresql", "audit.kind: postgresql")
        import psycopg
        password = config.password.get() if config.password else None
        try:
            # The session time zone decides how ``timestamptz`` turns into a day or an hour and how window
            # bounds are read: UTC, whatever the server's default.
            connection = psycopg.connect(config.dsn or "", password=password,
                                         connect_timeout=max(1, int(config.timeout)),
                                         options=f"-c statement_timeout={int(config.timeout * 1000)} "
                                                 "-c TimeZone=UTC")
            connection.read_only = True
            return connection
        except psycopg.OperationalError as exc:
            raise TransientError(f"cannot connect to the access log database: {exc}", system=SYSTEM) from exc
        except psycopg.Error as exc:
            raise PermanentError(f"cannot connect to the access log database: {exc}", system=SYSTEM) from exc

    def bind_time(self, moment: datetime) -> Any:
        """A bound as the timestamp column is compared (text in the configured format, epoch, or a datetime)."""
        moment = moment.astimezone(timezone.utc)
        if self.dialect.name == "postgresql":
            return moment
        if isinstance(self.dialect, EpochDialect):
            return moment.timestamp()
        return moment.strftime(self.config.time_format)

    def query(self, name: str, sql: str, params: dict[str, Any], *, record: bool = True) -> Iterator[tuple[Any, ...]]:
        """Run one query (``:name`` parameters) and stream its rows; recorded for the evidence."""
        text = " ".join(sql.split())
        entry: dict[str, Any] = {"name": name, "sql": text, "params": _printable(params)}
        if record:
            self.queries.append(entry)
        started = time.monotonic()
        rows = 0
        try:
            if self.dialect.name == "postgresql":
                batches = self._postgres_batches(self.dialect.sql(text), params)
            else:
                batches = self._sqlite_batches(text, params)
            for batch in batches:
                rows += len(batch)
                yield from batch
        finally:
            entry["rows"] = rows
            entry["seconds"] = round(time.monotonic() - started, 3)
            log.info("audit.query", query=name, rows=rows, seconds=entry["seconds"])

    def _sqlite_batches(self, text: str, params: dict[str, Any]) -> Iterator[list[tuple[Any, ...]]]:
        timeout = self.config.timeout
        deadline = [time.monotonic() + timeout]
        self.connection.set_progress_handler(lambda: int(time.monotonic() > deadline[0]), 100_000)
        try:
            cursor = self.connection.execute(text, params)
            while True:
                deadline[0] = time.monotonic() + timeout  # each fetch gets the whole timeout
                batch = cursor.fetchmany(self.config.page_size)
                if not batch:
                    return
                yield batch
        except sqlite3.OperationalError as exc:
            message = str(exc)
            if "interrupted" in message:
                raise TransientError(f"access log query ran past {timeout:g}s", system=SYSTEM) from exc
            if "locked" in message or "busy" in message:
                raise TransientError(f"access log busy: {message}", system=SYSTEM) from exc
            raise PermanentError(f"access log query failed: {message} (check audit.table and audit.columns)",
                                 system=SYSTEM) from exc
        except sqlite3.Error as exc:
            raise PermanentError(f"access log query failed: {exc}", system=SYSTEM) from exc
        finally:
            self.connection.set_progress_handler(None, 0)

    def _postgres_batches(self, text: str, params: dict[str, Any]) -> Iterator[list[tuple[Any, ...]]]:
        import psycopg

        try:
            with self.connection.transaction():
                self.connection.execute(f"SET LOCAL work_mem = '{QUERY_WORK_MEM}'")
                with self.connection.cursor(name=f"tourniquet_{next(_CURSORS)}") as cursor:
                    cursor.itersize = self.config.page_size
                    cursor.execute(text, self.dialect.params(params))
                    while True:
                        batch = cursor.fetchmany(self.config.page_size)
                        if not batch:
                            return
                        yield batch
        except psycopg.OperationalError as exc:  # connection lost, server shutting down, statement timeout
            raise TransientError(f"access log query failed: {exc}", system=SYSTEM) from exc
        except psycopg.Error as exc:
            raise PermanentError(f"access log query failed: {exc} (check audit.table and audit.columns)",
                                 system=SYSTEM) from exc

    # ---------------------------------------------------------------- what the database really has

    def columns(self, table: str, setting: str) -> dict[str, str]:
        """The real columns of ``table`` (name → declared type); a missing table lists the real ones."""
        quote(table)
        if self.dialect.name == "postgresql":
            sql = ("SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                   "WHERE a.attrelid = to_regclass(:table) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum")
            found = {str(n): str(t) for n, t in self.query("columns", sql, {"table": quote(table)}, record=False)}
            listing = ("SELECT table_schema || '.' || table_name FROM information_schema.tables "
                       "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1 LIMIT 100")
        else:
            schema, _, name = table.rpartition(".")
            pragma = f"PRAGMA {quote(schema) + '.' if schema else ''}table_info({quote(name)})"
            found = {str(row[1]): str(row[2]) for row in self.query("columns", pragma, {}, record=False)}
            listing = "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name LIMIT 100"
        if not found:
            tables = [str(row[0]) for row in self.query("tables", listing, {}, record=False)]
            raise ConfigError(f"audit: {setting}: the access log database has no table {table!r} "
                              f"(it has: {', '.join(tables) or 'no table'}); check audit.table and audit.columns")
        return found

    def check_columns(self, table: str, wanted: dict[str, str], setting: str) -> dict[str, str]:
        """Each configured column must exist (``wanted``: setting → column); returns column → type."""
        found = self.columns(table, setting)
        if self.dialect.name == "postgresql":
            real = found
        else:  # SQLite names are case-insensitive
            real = {name.lower(): kind for name, kind in found.items()}
        missing = [f"{name!r} ({where})" for where, name in wanted.items()
                   if (name if self.dialect.name == "postgresql" else name.lower()) not in real]
        if missing:
            raise ConfigError(f"audit: {table} has no column {', '.join(missing)}; its columns are: "
                              f"{', '.join(found)}; check audit.table and audit.columns")
        return {name: real[name if self.dialect.name == "postgresql" else name.lower()] for name in wanted.values()}

    def close(self) -> None:
        try:
            self.connection.close()
        except Exception:  # closing is best effort
            pass


def _printable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, (datetime, date)) else v for k, v in params.items()}
