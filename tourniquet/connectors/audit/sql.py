"""The scope's source over an SQL access log (SQLite, PostgreSQL): the database folds, joins and sorts.

:class:`SqlSource` groups the window's accesses by ``GROUP BY … ORDER BY subject``, joins the subject
table and the owner's caseload in SQL, and streams one row per group, so Python never holds the raw
log. Every query goes through :class:`~tourniquet.connectors.audit.database.Database` (quoting,
column checks, UTC sessions, error classification, query recording); the expressions that differ
between databases are in :mod:`~tourniquet.connectors.audit.dialects`; the hygiene checks' view of
the same log is :class:`~tourniquet.connectors.audit.aggregates.AuditDb` (also importable from here).

May import: ``audit.config``, ``audit.events``, ``audit.database``, ``audit.dialects``, ``audit.aggregates``
(re-exported), ``tourniquet.errors``. Imported by: ``connectors.audit`` (its table of kinds).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from tourniquet.connectors.audit.aggregates import WINDOW_KEYS, AuditDb
from tourniquet.connectors.audit.config import CONTACT, IDENTITY, AuditConfig
from tourniquet.connectors.audit.database import Database, quote
from tourniquet.connectors.audit.dialects import Dialect, EpochDialect, PostgresDialect
from tourniquet.connectors.audit.events import (
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
from tourniquet.errors import ConfigError

__all__ = ["quote", "WINDOW_KEYS", "Dialect", "EpochDialect", "PostgresDialect", "Database", "AuditDb",
           "SqlSource"]


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

    #: From this many distinct windows on, the accounts and their windows are one table joined to the log
    #: (one grouped pass: an index range per account) instead of one ``OR`` term each.
    GROUPED_FROM = 16

    def _from(self, alias: str, spans: dict[str, Span], params: dict[str, Any], prefix: str) -> str:
        """``<table> <alias> … WHERE <each account within its own span>`` (more conditions may follow with AND).

        Accounts sharing a span share one ``IN`` (index-friendly). When the spans are many — ``since: auto``
        gives each of 1,500 accounts its own — they become one ``VALUES`` table joined on the account and
        the span: a single grouped pass over the log for all of them, not a 1,500-term ``OR``.
        """
        by_span: dict[tuple[datetime, datetime], list[str]] = {}
        for account, span in spans.items():
            by_span.setdefault((span.start, span.end), []).append(account)
        if len(by_span) >= self.GROUPED_FROM and self.db.dialect.name in ("sqlite", "postgresql"):
            rows = []
            for i, (account, span) in enumerate(spans.items()):
                params[f"{prefix}v{i}a"], params[f"{prefix}v{i}s"], params[f"{prefix}v{i}e"] = (
                    account, self.db.bind_time(span.start), self.db.bind_time(span.end))
                rows.append(f"(:{prefix}v{i}a, :{prefix}v{i}s, :{prefix}v{i}e)")
            spans_table = (f"(SELECT column1 AS a, column2 AS s, column3 AS e FROM (VALUES {', '.join(rows)}) "
                           f"{prefix}vv)")
            return (f"{spans_table} {prefix}w JOIN {self.table} {alias} ON {alias}.{self.account} = {prefix}w.a "
                    f"AND {alias}.{self.ts} >= {prefix}w.s AND {alias}.{self.ts} < {prefix}w.e WHERE 1 = 1")
        terms = []
        for n, ((start, end), accounts) in enumerate(by_span.items()):
            marks = []
            for i, account in enumerate(accounts):
                params[f"{prefix}{n}a{i}"] = account
                marks.append(f":{prefix}{n}a{i}")
            params[f"{prefix}{n}s"], params[f"{prefix}{n}e"] = self.db.bind_time(start), self.db.bind_time(end)
            terms.append(f"({alias}.{self.account} IN ({', '.join(marks)}) AND {alias}.{self.ts} >= :{prefix}{n}s "
                         f"AND {alias}.{self.ts} < :{prefix}{n}e)")
        return f"{self.table} {alias} WHERE " + ("(" + " OR ".join(terms) + ")" if terms else "(1 = 0)")

    def _rows(self, select: list[str], windows: Windows, params: dict[str, Any], *, subject: int, account: int,
              grouped: bool) -> str:
        """The window's rows as columns ``c0 …`` and ``w`` = 1, followed by each owner's history pairs (account,
        subject; everything else NULL, ``w`` = 0); ``grouped``: folded by every column but the last (the time).

        Why not a join on the caseload: SQLite builds no index for a join on a CTE, and a nested loop over the
        caseload is quadratic. One sort and a window function (:meth:`_known`) tell each row whether its pair has
        a history row, on SQLite and PostgreSQL alike."""
        names = [f"c{i}" for i in range(len(select))]
        rows = (f"SELECT {', '.join(f'{e} AS {n}' for e, n in zip(select, names))}, 1 AS w "
                f"FROM {self._from('l', windows.exposure, params, 'w')}")
        if windows.history:
            filler = ["NULL"] * len(select)  # untyped: PostgreSQL gives them the window rows' types
            filler[subject], filler[account] = "p.s", "p.a"
            history = self._from("h", windows.history, params, "h")
            rows += (f" UNION ALL SELECT {', '.join(filler)}, 0 FROM (SELECT DISTINCT h.{self.subject} AS s, "
                     f"h.{self.account} AS a FROM {history} AND h.{self.subject} IS NOT NULL) p")
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
        # The groups come ordered by subject and each repeats its subject's row of the subject table:
        # read it once per subject, not once per group (a person seen a hundred times is one row).
        previous: tuple[Any, SubjectRow | None] = (object(), None)
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
            if self.config.subjects is not None and row[0] is not None and row[0] == previous[0]:
                subject_row = previous[1]
            elif self.config.subjects is not None:
                found = bool(row[j])
                raw = row[j + 1:j + 1 + len(values)]
                present = {f for f, v in zip(values, raw) if v is not None and str(v).strip() != ""}
                present.update(f for f, flag in zip(flags, row[j + 1 + len(values):]) if flag)
                subject_row = SubjectRow(found=found, present=frozenset(present),
                                         values=tuple((f, v) for f, v in zip(values, raw)
                                                      if v is not None and str(v).strip() != ""))
                previous = (row[0], subject_row)
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
        source = self._from("h", spans, params, "h")
        hour = self.db.dialect.hour(f"h.{self.ts}")
        sql = f"SELECT h.{self.account}, h.{self.ip}, {hour}, COUNT(*) FROM {source} GROUP BY 1, 2, 3"
        for account, ip, hour_of_day, count in self.db.query("owner history", sql, params):
            yield HistoryRow(str(account), text_or_none(ip), int(hour_of_day or 0), int(count))

    def daily(self, spans: dict[str, Span]) -> Iterator[DailyRow]:
        """Per account, day, address, hour and "patient first seen that day": accesses, oldest day first."""
        if not spans:
            return
        params: dict[str, Any] = {}
        dialect = self.db.dialect
        source = self._from("l", spans, params, "d")
        day = dialect.day(f"l.{self.ts}")
        # "first seen that day": the day against the pair's first day, by a window function (one sort, no join)
        rows = (f"SELECT l.{self.account} AS a, {day} AS d, l.{self.ip} AS i, {dialect.hour(f'l.{self.ts}')} AS h, "
                f"l.{self.ts} AS t, CASE WHEN l.{self.subject} IS NULL THEN NULL "
                f"WHEN {day} = MIN({day}) OVER (PARTITION BY l.{self.account}, l.{self.subject}) THEN 1 ELSE 0 END AS n "
                f"FROM {source}")
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
