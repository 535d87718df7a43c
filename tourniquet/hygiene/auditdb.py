"""The access log as the hygiene checks see it: aggregates computed by the database.

The checks never pull events into Python: each one sends a GROUP BY query over the
platform's own table (``AuditConfig.table`` with the ``AuditConfig.columns`` names) and
reads one row per account (or per account and source IP). The SQL is plain enough for
SQLite and PostgreSQL; the two differences (extracting the local hour, the placeholder
style) live in :class:`Dialect`. Every query is recorded with its parameters so that each
finding can cite exactly what raised it.

Timestamps: in SQLite, text in UTC as ``AuditConfig.time_format`` says (the default
``2026-11-28 09:14:03``; ``2026-11-28T09:14:03Z`` works too; any format starting ``%Y-%m-%d``)
or epoch seconds (``time_format: epoch``); ``timestamp`` (UTC) or ``timestamptz`` in PostgreSQL, read in a
session whose time zone is UTC whatever the server's default. Windows
are whole UTC days, compared as ``ts >= 'YYYY-MM-DD'`` (or the epoch second) so that an index on
the timestamp column is used.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import structlog

from tourniquet.connectors.audit import AuditConfig
from tourniquet.errors import ConfigError, PermanentError, TransientError

__all__ = ["AuditDb", "Dialect"]

SYSTEM = "audit"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
log = structlog.get_logger("tourniquet")


def quote(name: str) -> str:
    """A safely quoted (optionally schema-qualified) identifier; anything odd is a configuration error."""
    parts = name.split(".")
    if not all(_IDENT.match(p) for p in parts):
        raise ConfigError(f"audit: {name!r} is not a plain table or column name")
    return ".".join(f'"{p}"' for p in parts)


#: Parameters that bound a time window (compared with the timestamp column).
WINDOW_KEYS = frozenset({"start", "recent", "end", "window_start", "since"})


class Dialect:
    name = "sqlite"

    def day(self, column: str) -> str:
        return f"date({column})"

    def window(self, day: str) -> Any:
        """A window bound as the timestamp column is compared: ISO text sorts as text."""
        return day

    def local_hour(self, column: str) -> str:
        """Hour of day after shifting by the :tz_hours parameter (whole hours). Reads the hour digits of
        the ISO text directly (UTC, ``YYYY-MM-DDTHH…``): several times cheaper than strftime per row."""
        return f"((CAST(substr({column}, 12, 2) AS INTEGER) + :tz_hours + 24) % 24)"

    def params(self, params: dict[str, Any]) -> dict[str, Any]:
        return params

    def sql(self, text: str) -> str:
        return text


class EpochDialect(Dialect):
    """SQLite with ``time_format: epoch`` (seconds since 1970, UTC)."""

    def day(self, column: str) -> str:
        return f"date({column}, 'unixepoch')"

    def window(self, day: str) -> Any:
        return int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp())

    def local_hour(self, column: str) -> str:
        return f"((CAST(strftime('%H', {column}, 'unixepoch') AS INTEGER) + :tz_hours + 24) % 24)"


class PostgresDialect(Dialect):
    name = "postgresql"

    def day(self, column: str) -> str:
        return f"date({column})"

    def local_hour(self, column: str) -> str:
        return f"CAST(EXTRACT(HOUR FROM {column} + make_interval(hours => :tz_hours)) AS INTEGER)"

    def params(self, params: dict[str, Any]) -> dict[str, Any]:
        return params

    def sql(self, text: str) -> str:
        return re.sub(r"(?<!:):([a-z_]+)", r"%(\1)s", text.replace("%", "%%"))


class AuditDb:
    """Read-only aggregate queries over the configured access-log table."""

    def __init__(self, config: AuditConfig) -> None:
        self.config = config
        self.table = quote(config.table)
        columns = config.columns
        self.ts, self.account = quote(columns.timestamp), quote(columns.account)
        self.subject, self.source_ip = quote(columns.subject), quote(columns.source_ip)
        self.queries: list[dict[str, Any]] = []
        if config.kind == "sqlite":
            if config.time_format == "epoch":
                self.dialect: Dialect = EpochDialect()
            elif config.time_format.startswith("%Y-%m-%d"):
                self.dialect = Dialect()
            else:
                raise ConfigError(f"audit: hygiene checks compare timestamps as text, which needs a time_format "
                                  f"starting %Y-%m-%d (or epoch), not {config.time_format!r}")
            if not config.path or not Path(config.path).is_file():
                raise ConfigError(f"audit: sqlite database {config.path!r} not found")
            try:
                self._connection: Any = sqlite3.connect(Path(config.path).resolve().as_uri() + "?mode=ro", uri=True,
                                                        timeout=config.timeout, check_same_thread=False)
            except sqlite3.Error as exc:
                raise PermanentError(f"cannot open {config.path}: {exc}", system=SYSTEM) from exc
            self._check_columns()
        elif config.kind == "postgresql":
            self.dialect = PostgresDialect()
            self._connection = self._connect_postgres(config)
        else:
            raise ConfigError(f"audit: hygiene checks need an SQL access log (sqlite or postgresql), not {config.kind!r}")

    def _check_columns(self) -> None:
        """SQLite reads a double-quoted name it does not know as a string literal: check the names first,
        or a wrong column mapping would silently aggregate a constant."""
        table = self.config.table.split(".")[-1]
        try:
            known = {row[1].lower() for row in self._connection.execute(f"PRAGMA table_info({quote(table)})")}
        except sqlite3.Error as exc:
            raise PermanentError(f"cannot read the columns of {self.config.table}: {exc}", system=SYSTEM) from exc
        if not known:
            raise PermanentError(f"{self.config.path} has no table {self.config.table!r} (check audit.table)",
                                 system=SYSTEM)
        columns = self.config.columns
        wanted = {"timestamp": columns.timestamp, "account": columns.account, "subject": columns.subject,
                  "source_ip": columns.source_ip}
        missing = [f"{field}={name!r}" for field, name in wanted.items() if name.lower() not in known]
        if missing:
            raise PermanentError(
                f"{self.config.table} has no column {', '.join(missing)} (it has: {', '.join(sorted(known))}); "
                "check audit.table and audit.columns", system=SYSTEM)

    @staticmethod
    def _connect_postgres(config: AuditConfig) -> Any:
        try:
            import psycopg  # type: ignore[import-not-found]
        except ImportError as exc:
            raise ConfigError("audit: kind postgresql needs the psycopg package") from exc
        password = config.password.get() if config.password else None
        try:
            # The session time zone decides how ``timestamptz`` turns into a day or an hour, and how the
            # window bounds ('YYYY-MM-DD') are read: the checks work in UTC whatever the server's default
            # (a French platform's server often runs in Europe/Paris).
            connection = psycopg.connect(config.dsn or "", password=password,
                                         options=f"-c statement_timeout={int(config.timeout * 1000)} -c TimeZone=UTC")
            connection.read_only = True
            return connection
        except psycopg.Error as exc:
            raise TransientError(f"cannot connect to the access log: {exc}", system=SYSTEM) from exc

    def query(self, name: str, sql: str, params: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
        """Run one aggregate query and stream its rows; recorded for the evidence."""
        text = " ".join(sql.split())
        record: dict[str, Any] = {"name": name, "sql": text, "params": params}
        self.queries.append(record)
        started = time.monotonic()
        rows = 0
        try:
            cursor = self._connection.cursor()
            if self.dialect.name == "sqlite":
                deadline = started + self.config.timeout
                self._connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 100_000)
            bound = {k: self.dialect.window(v) if k in WINDOW_KEYS else v for k, v in params.items()}
            cursor.execute(self.dialect.sql(text), self.dialect.params(bound))
            while True:
                batch = cursor.fetchmany(5000)
                if not batch:
                    break
                rows += len(batch)
                yield from batch
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                raise TransientError(f"{name}: query ran past {self.config.timeout:g}s", system=SYSTEM) from exc
            raise PermanentError(f"{name}: {exc} (check audit.table and audit.columns)", system=SYSTEM) from exc
        except sqlite3.Error as exc:
            raise PermanentError(f"{name}: {exc}", system=SYSTEM) from exc
        except Exception as exc:  # psycopg errors, translated at the boundary
            if type(exc).__module__.startswith("psycopg"):
                raise PermanentError(f"{name}: {exc}", system=SYSTEM) from exc
            raise
        finally:
            if self.dialect.name == "sqlite":
                self._connection.set_progress_handler(None, 0)
            record["rows"] = rows
            record["seconds"] = round(time.monotonic() - started, 3)
            log.info("hygiene.query", query=name, rows=rows, seconds=record["seconds"])

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
        try:
            self._connection.close()
        except Exception:  # closing is best effort
            pass
