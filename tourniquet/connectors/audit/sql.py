"""The one SQL layer over the access log: SQLite and PostgreSQL, for the scope and the hygiene checks.

Everything that touches the database goes through :class:`Database`:

- names from the site file are checked and quoted (:func:`quote`), never pasted as SQL;
- the configured table and columns are checked against the real ones when the connection opens
  (SQLite reads a double-quoted name it does not know as a string literal, so a wrong mapping would
  silently aggregate a constant): an unknown name fails at once, listing the real ones;
- PostgreSQL sessions are read-only and run in UTC whatever the server's default (a server in
  Europe/Paris would shift every hour and day), with a statement timeout; rows stream through a
  server-side cursor, so memory stays flat whatever the size of the result;
- SQLite is opened read-only; a query's fetches are bounded by ``timeout`` (progress handler);
- errors are classified once: down, busy, timed out → :class:`TransientError`; anything else →
  :class:`PermanentError` (or :class:`ConfigError` for names that do not exist);
- every query is recorded with its parameters, rows and seconds (a hygiene finding cites them).

Queries are written with ``:name`` parameters; :class:`Dialect` turns them into each driver's style
and holds the few expressions that differ (day, hour). Timestamps: in SQLite, UTC text as
``time_format`` says (any format starting ``%Y-%m-%d``) or epoch seconds; in PostgreSQL,
``timestamp`` (UTC) or ``timestamptz``.

:class:`AuditDb` is what the hygiene checks use (aggregates they write themselves);
:class:`SqlSource` is the scope's source (groups folded by ``GROUP BY … ORDER BY subject``, the
subject table and the owner's caseload joined in SQL).
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

from tourniquet.connectors.audit.config import CONTACT, IDENTITY, AuditConfig
from tourniquet.connectors.audit.events import (
    SYSTEM,
    DailyRow,
    HistoryRow,
    RawEvent,
    RawGroup,
    Span,
    SubjectRow,
    Windows,
    parse_time,
    text_or_none,
)
from tourniquet.errors import ConfigError, PermanentError, TransientError

__all__ = ["quote", "WINDOW_KEYS", "Dialect", "EpochDialect", "PostgresDialect", "Database", "AuditDb",
           "SqlSource"]

log = structlog.get_logger("tourniquet")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CURSORS = itertools.count(1)

#: Parameters that bound a time window (compared with the timestamp column) in hygiene queries.
WINDOW_KEYS = frozenset({"start", "recent", "end", "window_start", "since"})


def quote(name: str) -> str:
    """A safely quoted (optionally schema-qualified) identifier; anything odd is a configuration error."""
    parts = name.split(".")
    if not all(_IDENT.match(p) for p in parts):
        raise ConfigError(f"audit: {name!r} is not a plain table or column name")
    return ".".join(f'"{p}"' for p in parts)


# --------------------------------------------------------------------------- dialects


class Dialect:
    """SQLite with ISO text timestamps."""

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

    def hour(self, column: str) -> str:
        """Hour of day, UTC."""
        return f"CAST(substr({column}, 12, 2) AS INTEGER)"

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

    def hour(self, column: str) -> str:
        return f"CAST(strftime('%H', {column}, 'unixepoch') AS INTEGER)"


class PostgresDialect(Dialect):
    name = "postgresql"

    def day(self, column: str) -> str:
        return f"date({column})"

    def local_hour(self, column: str) -> str:
        return f"CAST(EXTRACT(HOUR FROM {column} + make_interval(hours => :tz_hours)) AS INTEGER)"

    def hour(self, column: str) -> str:
        return f"CAST(EXTRACT(HOUR FROM {column}) AS INTEGER)"

    def params(self, params: dict[str, Any]) -> dict[str, Any]:
        return params

    def sql(self, text: str) -> str:
        return re.sub(r"(?<!:):([a-z_][a-z0-9_]*)", r"%(\1)s", text.replace("%", "%%"))


def _dialect(config: AuditConfig) -> Dialect:
    if config.kind == "postgresql":
        return PostgresDialect()
    if config.kind != "sqlite":
        raise ConfigError(f"audit: an SQL access log is sqlite or postgresql, not {config.kind!r}")
    if config.time_format == "epoch":
        return EpochDialect()
    if config.time_format.startswith("%Y-%m-%d"):
        return Dialect()
    raise ConfigError(f"audit: timestamps are compared as text, which needs a time_format starting %Y-%m-%d "
                      f"(or epoch), not {config.time_format!r}")


# --------------------------------------------------------------------------- the connection


class Database:
    """One read-only connection to the access log's database; every query goes through :meth:`query`."""

    def __init__(self, config: AuditConfig) -> None:
        self.config = config
        self.dialect = _dialect(config)
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
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise ConfigError("audit: kind postgresql needs the psycopg package") from exc
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


# --------------------------------------------------------------------------- the hygiene checks' view


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


# --------------------------------------------------------------------------- the scope's source


_TEXT_TYPES = ("text", "character", "char", "varchar", "name", "citext")


class SqlSource:
    """The scope over an SQL log: the database folds, joins and sorts; Python reads one row per group."""

    sorted_groups = True

    def __init__(self, config: AuditConfig) -> None:
        self.config = config
        self.db = Database(config)
        try:
            self._check(config)
        except Exception:
            self.db.close()
            raise
        c = config.columns
        self.table = quote(config.table)
        self.ts, self.account, self.subject = quote(c.timestamp), quote(c.account), quote(c.subject)
        self.action, self.ip = quote(c.action), quote(c.source_ip)
        self.fields = quote(c.fields) if config.reads_fields_column and c.fields else None
        self.nir = [quote(n) for n in c.may_hold_nir]

    @property
    def queries(self) -> list[dict[str, Any]]:
        return self.db.queries

    def _check(self, config: AuditConfig) -> None:
        c = config.columns
        wanted = {"columns.timestamp": c.timestamp, "columns.account": c.account, "columns.subject": c.subject,
                  "columns.action": c.action, "columns.source_ip": c.source_ip}
        if config.reads_fields_column and c.fields:
            wanted["columns.fields"] = c.fields
        wanted.update({f"columns.may_hold_nir[{i}]": name for i, name in enumerate(c.may_hold_nir)})
        for name in [config.table, *wanted.values()]:
            quote(name)  # a name that is not plain is refused before it is even looked up
        types = self.db.check_columns(config.table, wanted, "table")
        postgres = self.db.dialect.name == "postgresql"
        if postgres and not types[c.timestamp].startswith(("timestamp", "date")):
            raise ConfigError(f"audit: columns.timestamp: {config.table}.{c.timestamp} is {types[c.timestamp]}; "
                              "a PostgreSQL log needs timestamp or timestamptz")
        self.subject_value_fields: list[str] = []
        self.subject_flag_fields: list[str] = []
        self.compare_as_text = False
        subjects = config.subjects
        if subjects is None:
            return
        subject_wanted = {"subjects.key": subjects.key,
                          **{f"subjects.fields.{field}": column for field, column in subjects.fields.items()}}
        for name in [subjects.table, *subject_wanted.values()]:
            quote(name)
        subject_types = self.db.check_columns(subjects.table, subject_wanted, "subjects.table")
        if postgres:
            log_type, key_type = types[c.subject], subject_types[subjects.key]
            self.compare_as_text = log_type != key_type and not (log_type.startswith(_TEXT_TYPES)
                                                                  and key_type.startswith(_TEXT_TYPES))
        for field in subjects.fields:
            # Identity and contact values go to the people-to-warn export; other fields (the NIR …) are only
            # ever read as "present or not", so their values never leave the database.
            wanted_value = config.categories.get(field) in (IDENTITY, CONTACT) or field == subjects.national_id
            (self.subject_value_fields if wanted_value else self.subject_flag_fields).append(field)

    # ---------------------------------------------------------------- WHERE clauses

    def _where(self, alias: str, spans: dict[str, Span], params: dict[str, Any], prefix: str) -> str:
        """Each account within its own span; accounts sharing a span share one ``IN`` (index-friendly)."""
        by_span: dict[tuple[datetime, datetime], list[str]] = {}
        for account, span in spans.items():
            by_span.setdefault((span.start, span.end), []).append(account)
        terms = []
        for n, ((start, end), accounts) in enumerate(by_span.items()):
            marks = []
            for i, account in enumerate(accounts):
                params[f"{prefix}{n}a{i}"] = account
                marks.append(f":{prefix}{n}a{i}")
            params[f"{prefix}{n}s"], params[f"{prefix}{n}e"] = self.db.bind_time(start), self.db.bind_time(end)
            terms.append(f"({alias}.{self.account} IN ({', '.join(marks)}) AND {alias}.{self.ts} >= :{prefix}{n}s "
                         f"AND {alias}.{self.ts} < :{prefix}{n}e)")
        return "(" + " OR ".join(terms) + ")" if terms else "(1 = 0)"

    def _rows(self, select: list[str], windows: Windows, params: dict[str, Any], *, subject: int, account: int,
              grouped: bool) -> str:
        """The window's rows as columns ``c0 …`` and ``w`` = 1, followed by each owner's history pairs (account,
        subject; everything else NULL, ``w`` = 0); ``grouped``: folded by every column but the last (the time).

        Why not a join on the caseload: SQLite builds no index for a join on a CTE, and a nested loop over the
        caseload is quadratic. One sort and a window function (:meth:`_known`) tell each row whether its pair has
        a history row, on SQLite and PostgreSQL alike."""
        names = [f"c{i}" for i in range(len(select))]
        where = self._where("l", windows.exposure, params, "w")
        rows = (f"SELECT {', '.join(f'{e} AS {n}' for e, n in zip(select, names))}, 1 AS w FROM {self.table} l "
                f"WHERE {where}")
        if windows.history:
            filler = ["NULL"] * len(select)  # untyped: PostgreSQL gives them the window rows' types
            filler[subject], filler[account] = "p.s", "p.a"
            history = self._where("h", windows.history, params, "h")
            rows += (f" UNION ALL SELECT {', '.join(filler)}, 0 FROM (SELECT DISTINCT h.{self.subject} AS s, "
                     f"h.{self.account} AS a FROM {self.table} h WHERE {history} AND h.{self.subject} IS NOT NULL) p")
        if not grouped:
            return rows
        keys = names[:-1]
        return (f"SELECT {', '.join(keys)}, w, COUNT({names[-1]}) AS n, MIN({names[-1]}) AS t_first, "
                f"MAX({names[-1]}) AS t_last FROM ({rows}) r GROUP BY {', '.join(str(i) for i in range(1, len(keys) + 2))}")

    @staticmethod
    def _known(rows: str, subject: str, account: str, history: bool) -> str:
        if not history:
            return f"SELECT r.*, 0 AS known FROM ({rows}) r"
        return (f"SELECT r.*, MAX(CASE WHEN r.w = 0 THEN 1 ELSE 0 END) OVER (PARTITION BY r.{subject}, r.{account}) "
                f"AS known FROM ({rows}) r")

    def _nir_candidate(self, column: str) -> str:
        # Only a value of NIR length can be one: anything else is folded away by the GROUP BY.
        text = f"CAST({column} AS TEXT)"
        return f"CASE WHEN length({text}) BETWEEN 15 AND 24 THEN {text} END"

    # ---------------------------------------------------------------- groups

    def groups_sql(self, windows: Windows) -> tuple[str, dict[str, Any], int]:
        params: dict[str, Any] = {}
        keys = [f"l.{self.subject}", f"l.{self.account}", f"l.{self.ip}", f"l.{self.action}"]
        if self.fields:
            keys.append(f"l.{self.fields}")
        keys += [self._nir_candidate(f"l.{n}") for n in self.nir]
        keys += [self.db.dialect.hour(f"l.{self.ts}"), self.db.dialect.day(f"l.{self.ts}")]
        grouped = self._rows([*keys, f"l.{self.ts}"], windows, params, subject=0, account=1, grouped=True)
        known = self._known(grouped, "c0", "c1", bool(windows.history))
        select = [*(f"x.c{i}" for i in range(len(keys))), "x.n", "x.t_first", "x.t_last", "x.known"]
        joins = ""
        subjects = self.config.subjects
        if subjects is not None:
            key = quote(subjects.key)
            on = f"CAST(s.{key} AS TEXT) = CAST(x.c0 AS TEXT)" if self.compare_as_text else f"s.{key} = x.c0"
            joins = f" LEFT JOIN {quote(subjects.table)} s ON {on}"
            select.append(f"CASE WHEN s.{key} IS NULL THEN 0 ELSE 1 END")
            select += [f"s.{quote(subjects.fields[f])}" for f in self.subject_value_fields]
            select += [self._present(f"s.{quote(subjects.fields[f])}") for f in self.subject_flag_fields]
        sql = f"SELECT {', '.join(select)} FROM ({known}) x{joins} WHERE x.w = 1 ORDER BY x.c0"
        return sql, params, len(keys)

    @staticmethod
    def _present(column: str) -> str:
        return f"CASE WHEN {column} IS NULL OR TRIM(CAST({column} AS TEXT)) = '' THEN 0 ELSE 1 END"

    def groups(self, windows: Windows) -> Iterator[RawGroup]:
        if not windows.exposure:
            return
        sql, params, width = self.groups_sql(windows)
        n_nir = len(self.nir)
        values, flags = self.subject_value_fields, self.subject_flag_fields
        for row in self.db.query("scope groups", sql, params):
            i = 4
            fields_cell = None
            if self.fields:
                fields_cell, i = row[4], 5
            nir_values = tuple(row[i:i + n_nir])
            hour = int(row[i + n_nir] or 0)
            count, first, last, known = row[width], row[width + 1], row[width + 2], bool(row[width + 3])
            j = width + 4
            subject_row = None
            if self.config.subjects is not None:
                found = bool(row[j])
                raw = row[j + 1:j + 1 + len(values)]
                present = {f for f, v in zip(values, raw) if v is not None and str(v).strip() != ""}
                present.update(f for f, flag in zip(flags, row[j + 1 + len(values):]) if flag)
                subject_row = SubjectRow(found=found, present=frozenset(present),
                                         values=tuple((f, v) for f, v in zip(values, raw)
                                                      if v is not None and str(v).strip() != ""))
            first_time = parse_time(first)
            yield RawGroup(subject=text_or_none(row[0]), account=str(row[1]), source_ip=text_or_none(row[2]),
                           action=row[3], fields=fields_cell, nir_values=nir_values, hour=hour, count=int(count),
                           first=first_time, last=first_time if last == first else parse_time(last),
                           known=known, subject_row=subject_row)

    # ---------------------------------------------------------------- events (the frozen evidence)

    def events(self, windows: Windows) -> Iterator[RawEvent]:
        if not windows.exposure:
            return
        params: dict[str, Any] = {}
        columns = [f"l.{self.ts}", f"l.{self.account}", f"l.{self.subject}", f"l.{self.action}",
                   f"l.{self.fields}" if self.fields else "NULL", f"l.{self.ip}", *(f"l.{n}" for n in self.nir)]
        rows = self._rows(columns, windows, params, subject=2, account=1, grouped=False)
        known = self._known(rows, "c2", "c1", bool(windows.history))
        names = ", ".join(f"x.c{i}" for i in range(len(columns)))
        sql = f"SELECT {names}, x.known FROM ({known}) x WHERE x.w = 1 ORDER BY x.c0"
        n_nir = len(self.nir)
        for row in self.db.query("scope events", sql, params):
            yield RawEvent(timestamp=parse_time(row[0]), account=str(row[1]), subject=text_or_none(row[2]),
                           action=row[3], fields=row[4], source_ip=text_or_none(row[5]),
                           nir_values=tuple(row[6:6 + n_nir]), known=bool(row[6 + n_nir]))

    # ---------------------------------------------------------------- the owners' history

    def history(self, spans: dict[str, Span]) -> Iterator[HistoryRow]:
        """Per account, address and hour of day: accesses in the account's history span."""
        if not spans:
            return
        params: dict[str, Any] = {}
        where = self._where("h", spans, params, "h")
        hour = self.db.dialect.hour(f"h.{self.ts}")
        sql = (f"SELECT h.{self.account}, h.{self.ip}, {hour}, COUNT(*) FROM {self.table} h WHERE {where} "
               "GROUP BY 1, 2, 3")
        for account, ip, hour_of_day, count in self.db.query("owner history", sql, params):
            yield HistoryRow(str(account), text_or_none(ip), int(hour_of_day or 0), int(count))

    def daily(self, spans: dict[str, Span]) -> Iterator[DailyRow]:
        """Per account, day, address, hour and "patient first seen that day": accesses, oldest day first."""
        if not spans:
            return
        params: dict[str, Any] = {}
        dialect = self.db.dialect
        where = self._where("l", spans, params, "d")
        day = dialect.day(f"l.{self.ts}")
        # "first seen that day": the day against the pair's first day, by a window function (one sort, no join)
        rows = (f"SELECT l.{self.account} AS a, {day} AS d, l.{self.ip} AS i, {dialect.hour(f'l.{self.ts}')} AS h, "
                f"l.{self.ts} AS t, CASE WHEN l.{self.subject} IS NULL THEN NULL "
                f"WHEN {day} = MIN({day}) OVER (PARTITION BY l.{self.account}, l.{self.subject}) THEN 1 ELSE 0 END AS n "
                f"FROM {self.table} l WHERE {where}")
        sql = f"SELECT a, d, i, h, n, COUNT(*), MIN(t) FROM ({rows}) r GROUP BY 1, 2, 3, 4, 5 ORDER BY 2"
        for account, day_value, ip, hour, new, count, first in self.db.query("daily accesses", sql, params):
            yield DailyRow(account=str(account), day=_day(day_value), source_ip=text_or_none(ip), hour=int(hour or 0),
                           new_subject=None if new is None else bool(new), events=int(count), first=parse_time(first))

    def describe(self) -> dict[str, Any]:
        """What the log holds, for ``tourniquet audit check``: accesses, first and last, action codes, people."""
        sql = f"SELECT COUNT(*), MIN({self.ts}), MAX({self.ts}) FROM {self.table}"
        count, first, last = next(iter(self.db.query("log coverage", sql, {})), (0, None, None))
        codes = [(text_or_none(code), int(n)) for code, n in self.db.query(
            "action codes", f"SELECT {self.action}, COUNT(*) FROM {self.table} GROUP BY 1 ORDER BY 2 DESC LIMIT 500", {})]
        people = None
        if self.config.subjects is not None:
            people = next(iter(self.db.query("subject rows", f"SELECT COUNT(*) FROM {quote(self.config.subjects.table)}",
                                             {})))[0]
        return {"events": int(count or 0), "first": None if first is None else parse_time(first),
                "last": None if last is None else parse_time(last), "action_codes": codes, "subjects": people}

    def close(self) -> None:
        self.db.close()


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
