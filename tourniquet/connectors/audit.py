"""Audit connector: the platform's access log, read-only.

The access log is seen through one canonical event model, whatever the platform:

    timestamp   when the record was accessed (UTC)
    account     who accessed it (the practitioner's uid, or whatever the platform logs; see account_key)
    subject     the data subject (patient) id
    action      the platform's action code (view, search, export …), mapped by ``actions``
    fields      the data fields shown, mapped to categories by ``categories``
    source_ip   where the request came from

:class:`AuditConfig` says where the log lives and how its columns map onto that model.
Sources: SQLite (stdlib ``sqlite3``, the embedded default), PostgreSQL (psycopg 3), JSON-lines /
CSV exports, and OpenSearch / Elasticsearch (httpx, point-in-time + ``search_after`` paging).

Each source answers two questions, both streamed:

- ``events(accounts, since, until)``: every matching event, oldest first (the frozen evidence);
- ``groups(accounts, since, until)``: the same events folded into :class:`~tourniquet.scope.Group`
  rows — SQL sources do the folding with ``GROUP BY … ORDER BY subject`` so that the scope costs
  one row per (subject, account, IP, fields) instead of one per event.

Library errors (sqlite3, psycopg, httpx, OSError) are translated here into
:mod:`tourniquet.errors` types; nothing above sees them.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field

from tourniquet.errors import ConfigError, PermanentError, TransientError
from tourniquet.nir import is_nir
from tourniquet.scope import SSN, AffectedSubject, Group, Scope, ScopeBuilder
from tourniquet.secrets import SecretRef, mask

__all__ = [
    "AuditConfig",
    "ColumnMapping",
    "AuditEvent",
    "AuditSource",
    "AuditClient",
    "connect",
    "account_key_of",
]

SYSTEM = "audit"


class ColumnMapping(BaseModel):
    """The platform's own column (or JSON field) name for each canonical field."""

    model_config = ConfigDict(extra="forbid")

    timestamp: str = "ts"
    account: str = "account"
    subject: str = "patient_id"
    action: str = "action"
    fields: str = Field("fields", description="Column listing the data fields shown (comma-separated or JSON list).")
    source_ip: str = "source_ip"
    may_hold_nir: list[str] = Field(
        default_factory=list,
        description="Columns whose value may be a social security number (a search query, an identifier "
                    "field): an event where one holds a valid NIR counts as showing social_security_number.",
    )


class AuditConfig(BaseModel):
    """Where the platform's access log lives, and how to read it."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["sqlite", "postgresql", "jsonl", "csv", "opensearch"] = Field(
        "sqlite", description="Where the access log lives."
    )
    path: str | None = Field(None, description="sqlite: database file; jsonl/csv: export file or folder.")
    dsn: str | None = Field(None, description="postgresql: connection string without the password.")
    password: SecretRef | None = Field(None, description="postgresql/opensearch: where the password lives.")
    username: str | None = Field(None, description="opensearch: user for basic authentication.")
    url: str | None = Field(None, description="opensearch: base URL.")
    engine: Literal["opensearch", "elasticsearch"] = Field(
        "opensearch", description="opensearch: which point-in-time API the cluster speaks."
    )
    page_size: int = Field(5000, ge=1, le=10000, description="opensearch: hits per page; SQL: rows per fetch.")
    ca_file: str | None = Field(None, description="opensearch: CA bundle for https.")
    table: str = Field("access_log", description="sqlite/postgresql: table (or view); opensearch: index pattern.")
    columns: ColumnMapping = Field(default_factory=ColumnMapping)  # type: ignore[arg-type]
    account_key: Literal["uid", "rpps", "mail", "dn"] = Field(
        "uid", description="Which account attribute the log's account column holds."
    )
    actions: dict[str, str] = Field(
        default_factory=dict, description="Platform action code → canonical action (view, search, export …)."
    )
    categories: dict[str, str] = Field(
        default_factory=lambda: {
            "last_name": "identity", "first_name": "identity", "birth_date": "identity", "age": "identity",
            "phone": "contact", "email": "contact", "address": "contact",
            "nir": "social_security_number",
        },
        description="Data field → category (identity, contact, social_security_number, …); others → 'other'.",
    )
    time_format: str = Field(
        "%Y-%m-%d %H:%M:%S",
        description="sqlite: how the timestamp column is written (strftime, UTC), or 'epoch' for seconds.",
    )
    timeout: float = Field(30.0, gt=0, description="Seconds for each query.")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One access, in the canonical model."""

    timestamp: datetime
    account: str
    subject: str | None
    action: str
    fields: tuple[str, ...]
    source_ip: str | None
    nir_shown: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"timestamp": self.timestamp.isoformat(), "account": self.account, "subject": self.subject,
                "action": self.action, "fields": list(self.fields), "source_ip": self.source_ip,
                "nir_shown": self.nir_shown}


class AuditSource(Protocol):
    """What every access-log backend provides (see the module docstring)."""

    sorted_groups: bool

    def events(self, accounts: Sequence[str], since: datetime, until: datetime) -> Iterator[AuditEvent]: ...

    def groups(self, accounts: Sequence[str], since: datetime, until: datetime) -> Iterator[Group]: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------- value parsing


def parse_fields(value: Any) -> tuple[str, ...]:
    """A fields cell: JSON list, comma-separated text, a database array, or nothing."""
    if value is None or value == "":
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(str(v).strip() for v in value if str(v).strip())
    text = str(value).strip()
    if text.startswith("["):
        with contextlib.suppress(ValueError):
            return tuple(str(v).strip() for v in json.loads(text) if str(v).strip())
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_time(value: Any) -> datetime:
    """ISO text (naive = UTC), epoch seconds, or a datetime; always returned timezone-aware."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, (int, float)) or (isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value)):
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
    else:
        moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


class _Mapper:
    """Turns the platform's values into the canonical ones (actions, categories, NIR detection)."""

    def __init__(self, config: AuditConfig) -> None:
        self.config = config
        self._categories: dict[tuple[str, ...], frozenset[str]] = {}
        self._fields: dict[str, tuple[str, ...]] = {}

    def fields(self, value: Any) -> tuple[str, ...]:
        """parse_fields, remembered: a log has few distinct field lists and millions of rows."""
        if not isinstance(value, str):
            return parse_fields(value)
        known = self._fields.get(value)
        if known is None:
            known = parse_fields(value)
            if len(self._fields) < 10_000:
                self._fields[value] = known
        return known

    def action(self, code: Any) -> str:
        text = "" if code is None else str(code)
        return self.config.actions.get(text, text)

    def categories(self, fields: tuple[str, ...], nir_shown: bool) -> frozenset[str]:
        known = self._categories.get(fields)
        if known is None:
            known = frozenset(self.config.categories.get(name, "other") for name in fields)
            if len(self._categories) < 10_000:  # field combinations are few; cap it anyway
                self._categories[fields] = known
        return known | {SSN} if nir_shown else known

    @staticmethod
    def nir_shown(values: Iterable[Any]) -> bool:
        return any(is_nir(v) for v in values if v is not None)

    def event(self, ts: Any, account: Any, subject: Any, action: Any, fields: Any, ip: Any,
              nir_values: Iterable[Any]) -> AuditEvent:
        return AuditEvent(
            timestamp=parse_time(ts), account=str(account), subject=None if subject in (None, "") else str(subject),
            action=self.action(action), fields=self.fields(fields), source_ip=None if ip in (None, "") else str(ip),
            nir_shown=self.nir_shown(nir_values),
        )

    def group_of(self, event: AuditEvent) -> Group:
        return Group(account=event.account, subject=event.subject, source_ip=event.source_ip,
                     categories=self.categories(event.fields, event.nir_shown), count=1,
                     first=event.timestamp, last=event.timestamp)


# --------------------------------------------------------------------------- SQL sources

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _quote(name: str) -> str:
    """A column or (schema-qualified) table name, checked and quoted: never SQL from configuration."""
    parts = name.split(".")
    if not all(_IDENTIFIER.match(p) for p in parts):
        raise ConfigError(f"audit: {name!r} is not a plain column or table name")
    return ".".join(f'"{p}"' for p in parts)


class _SqlSource:
    """Shared query building for SQLite and PostgreSQL; subclasses bring the connection."""

    sorted_groups = True
    placeholder = "?"

    def __init__(self, config: AuditConfig) -> None:
        self.config = config
        self.mapper = _Mapper(config)
        c = config.columns
        self.ts, self.account, self.subject = _quote(c.timestamp), _quote(c.account), _quote(c.subject)
        self.action, self.fields, self.ip = _quote(c.action), _quote(c.fields), _quote(c.source_ip)
        self.nir = [_quote(n) for n in c.may_hold_nir]
        self.table = _quote(config.table)

    def _bound(self, moment: datetime) -> Any:
        return moment

    def _where(self, accounts: Sequence[str], since: datetime, until: datetime) -> tuple[str, list[Any]]:
        marks = ", ".join(self.placeholder for _ in accounts)
        sql = f"{self.account} IN ({marks}) AND {self.ts} >= {self.placeholder} AND {self.ts} < {self.placeholder}"
        return sql, [*accounts, self._bound(since), self._bound(until)]

    def _nir_candidate(self, column: str) -> str:
        # Only a value of NIR length can be one: anything else is folded away by the GROUP BY.
        return f"CASE WHEN length({column}) BETWEEN 15 AND 24 THEN {column} END"

    def groups_sql(self, accounts: Sequence[str], since: datetime, until: datetime) -> tuple[str, list[Any]]:
        where, params = self._where(accounts, since, until)
        nir = [self._nir_candidate(n) for n in self.nir]
        keys = [self.subject, self.account, self.ip, self.fields, *nir]
        sql = (f"SELECT {', '.join(keys)}, COUNT(*), MIN({self.ts}), MAX({self.ts}) FROM {self.table} "
               f"WHERE {where} GROUP BY {', '.join(keys)} ORDER BY {self.subject}")
        return sql, params

    def events_sql(self, accounts: Sequence[str], since: datetime, until: datetime) -> tuple[str, list[Any]]:
        where, params = self._where(accounts, since, until)
        columns = [self.ts, self.account, self.subject, self.action, self.fields, self.ip, *self.nir]
        return f"SELECT {', '.join(columns)} FROM {self.table} WHERE {where} ORDER BY {self.ts}", params

    def _rows(self, sql: str, params: list[Any]) -> Iterator[tuple[Any, ...]]:
        raise NotImplementedError

    def groups(self, accounts: Sequence[str], since: datetime, until: datetime) -> Iterator[Group]:
        if not accounts:
            return
        n = len(self.nir)
        for row in self._rows(*self.groups_sql(accounts, since, until)):
            subject, account, ip, fields = row[0], row[1], row[2], row[3]
            nir_shown = self.mapper.nir_shown(row[4:4 + n])
            count, first, last = row[4 + n], row[5 + n], row[6 + n]
            first_time = parse_time(first)
            yield Group(account=str(account), subject=None if subject in (None, "") else str(subject),
                        source_ip=None if ip in (None, "") else str(ip),
                        categories=self.mapper.categories(self.mapper.fields(fields), nir_shown),
                        count=int(count), first=first_time, last=first_time if last == first else parse_time(last))

    def events(self, accounts: Sequence[str], since: datetime, until: datetime) -> Iterator[AuditEvent]:
        if not accounts:
            return
        for row in self._rows(*self.events_sql(accounts, since, until)):
            yield self.mapper.event(row[0], row[1], row[2], row[3], row[4], row[5], row[6:])


class SqliteSource(_SqlSource):
    """An SQLite access log, opened read-only (the evidence must never change the source)."""

    def __init__(self, config: AuditConfig) -> None:
        super().__init__(config)
        if not config.path:
            raise ConfigError("audit: kind sqlite needs a path")
        self.path = Path(config.path)
        if not self.path.is_file():
            raise PermanentError(f"access log database {self.path} does not exist", system=SYSTEM)
        try:
            self.connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=config.timeout,
                                              check_same_thread=False)
        except sqlite3.Error as exc:
            raise PermanentError(f"cannot open {self.path}: {exc}", system=SYSTEM) from exc

    def _bound(self, moment: datetime) -> Any:
        moment = moment.astimezone(timezone.utc)
        if self.config.time_format == "epoch":
            return moment.timestamp()
        return moment.strftime(self.config.time_format)

    def _rows(self, sql: str, params: list[Any]) -> Iterator[tuple[Any, ...]]:
        try:
            cursor = self.connection.execute(sql, params)
            while True:
                rows = cursor.fetchmany(self.config.page_size)
                if not rows:
                    return
                yield from rows
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise TransientError(f"{self.path}: {exc}", system=SYSTEM) from exc
            raise PermanentError(f"{self.path}: {exc}", system=SYSTEM) from exc
        except sqlite3.Error as exc:
            raise PermanentError(f"{self.path}: {exc}", system=SYSTEM) from exc

    def close(self) -> None:
        self.connection.close()


class PostgresSource(_SqlSource):
    """A PostgreSQL access log through psycopg 3; events stream through a server-side cursor."""

    placeholder = "%s"

    def __init__(self, config: AuditConfig) -> None:
        super().__init__(config)
        if not config.dsn:
            raise ConfigError("audit: kind postgresql needs a dsn")
        import psycopg

        self._psycopg = psycopg
        extra: dict[str, Any] = {"connect_timeout": max(1, int(config.timeout)),
                                 "options": f"-c statement_timeout={int(config.timeout * 1000)}"}
        if config.password is not None:
            extra["password"] = config.password.get()
        try:
            self.connection = psycopg.connect(config.dsn, autocommit=False, **extra)
            self.connection.read_only = True
        except psycopg.OperationalError as exc:
            raise TransientError(f"cannot connect to the access log database: {exc}", system=SYSTEM) from exc
        except psycopg.Error as exc:
            raise PermanentError(f"cannot connect to the access log database: {exc}", system=SYSTEM) from exc

    def _rows(self, sql: str, params: list[Any]) -> Iterator[tuple[Any, ...]]:
        psycopg = self._psycopg
        try:
            with self.connection.transaction():
                with self.connection.cursor(name="tourniquet_audit") as cursor:
                    cursor.itersize = self.config.page_size
                    cursor.execute(sql, params)
                    yield from cursor
        except psycopg.OperationalError as exc:
            raise TransientError(f"access log query failed: {exc}", system=SYSTEM) from exc
        except psycopg.Error as exc:
            raise PermanentError(f"access log query failed: {exc}", system=SYSTEM) from exc

    def close(self) -> None:
        self.connection.close()


# --------------------------------------------------------------------------- file exports


class _EventsAsGroups:
    """For sources that cannot fold: each event is a group of one (the builder keeps per-subject state)."""

    sorted_groups = False
    mapper: _Mapper

    def events(self, accounts: Sequence[str], since: datetime, until: datetime) -> Iterator[AuditEvent]:
        raise NotImplementedError

    def groups(self, accounts: Sequence[str], since: datetime, until: datetime) -> Iterator[Group]:
        for event in self.events(accounts, since, until):
            yield self.mapper.group_of(event)


class FileSource(_EventsAsGroups):
    """JSON-lines or CSV exports: one file, or every matching file of a folder (``.gz`` read as such)."""

    def __init__(self, config: AuditConfig) -> None:
        if not config.path:
            raise ConfigError(f"audit: kind {config.kind} needs a path")
        self.config = config
        self.mapper = _Mapper(config)
        self.path = Path(config.path)

    def files(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        if self.path.is_dir():
            suffix = ".jsonl" if self.config.kind == "jsonl" else ".csv"
            return sorted(p for p in self.path.iterdir() if p.name.endswith((suffix, suffix + ".gz")))
        raise PermanentError(f"access log export {self.path} does not exist", system=SYSTEM)

    def _records(self, file: Path) -> Iterator[dict[str, Any]]:
        opener: Callable[..., Any] = gzip.open if file.name.endswith(".gz") else open
        with opener(file, "rt", encoding="utf-8", newline="") as handle:
            if self.config.kind == "csv":
                yield from csv.DictReader(handle)
                return
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise PermanentError(f"{file}:{number}: not a JSON record ({exc})", system=SYSTEM) from exc

    def events(self, accounts: Sequence[str], since: datetime, until: datetime) -> Iterator[AuditEvent]:
        wanted = set(accounts)
        c = self.config.columns
        try:
            for file in self.files():
                for record in self._records(file):
                    account = record.get(c.account)
                    if account is None or str(account) not in wanted:
                        continue
                    raw_time = record.get(c.timestamp)
                    try:
                        moment = parse_time(raw_time)
                    except (TypeError, ValueError) as exc:
                        raise PermanentError(f"{file}: bad timestamp {raw_time!r}", system=SYSTEM) from exc
                    if not since <= moment < until:
                        continue
                    yield self.mapper.event(moment, account, record.get(c.subject), record.get(c.action),
                                            record.get(c.fields), record.get(c.source_ip),
                                            [record.get(n) for n in c.may_hold_nir])
        except OSError as exc:
            raise PermanentError(f"cannot read {self.path}: {exc}", system=SYSTEM) from exc

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- OpenSearch / Elasticsearch


def _lookup(document: dict[str, Any], name: str) -> Any:
    """A field of ``_source``: dotted paths are followed; a ``.keyword`` sub-field reads its parent."""
    if name.endswith(".keyword"):
        name = name[: -len(".keyword")]
    if name in document:
        return document[name]
    value: Any = document
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


class OpenSearchSource(_EventsAsGroups):
    """An OpenSearch / Elasticsearch index pattern, paged with a point in time and ``search_after``.

    The point in time freezes the index for the whole read, so events written while we page
    neither appear twice nor shift pages; it is deleted at the end.
    """

    def __init__(self, config: AuditConfig, transport: httpx.BaseTransport | None = None) -> None:
        if not config.url:
            raise ConfigError("audit: kind opensearch needs a url")
        self.config = config
        self.mapper = _Mapper(config)
        auth = None
        if config.username and config.password is not None:
            auth = httpx.BasicAuth(config.username, config.password.get())
        self.http = httpx.Client(base_url=config.url.rstrip("/"), auth=auth, timeout=config.timeout,
                                 transport=transport, verify=config.ca_file or True)

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise TransientError(mask(f"{method} {path}: timed out ({exc})"), system=SYSTEM) from exc
        except httpx.TransportError as exc:
            raise TransientError(mask(f"{method} {path}: unreachable ({exc})"), system=SYSTEM) from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(f"{method} {path}: HTTP {response.status_code}", system=SYSTEM)
        if response.status_code >= 400:
            reason = mask(response.text)[:300]  # masked before it is cut: no half secret survives
            raise PermanentError(f"{method} {path}: HTTP {response.status_code}: {reason}", system=SYSTEM)
        try:
            body = response.json()
        except ValueError as exc:
            raise PermanentError(f"{method} {path}: answer is not JSON", system=SYSTEM) from exc
        return body if isinstance(body, dict) else {}

    def _open_pit(self) -> str:
        keep = {"keep_alive": "2m"}
        if self.config.engine == "elasticsearch":
            return str(self._call("POST", f"/{self.config.table}/_pit", params=keep)["id"])
        return str(self._call("POST", f"/{self.config.table}/_search/point_in_time", params=keep)["pit_id"])

    def _close_pit(self, pit: str) -> None:
        with contextlib.suppress(TransientError, PermanentError):
            if self.config.engine == "elasticsearch":
                self._call("DELETE", "/_pit", json={"id": pit})
            else:
                self._call("DELETE", "/_search/point_in_time", json={"pit_id": [pit]})

    def query(self, accounts: Sequence[str], since: datetime, until: datetime) -> dict[str, Any]:
        c = self.config.columns
        return {"bool": {"filter": [
            {"terms": {c.account: list(accounts)}},
            {"range": {c.timestamp: {"gte": since.isoformat(), "lt": until.isoformat()}}},
        ]}}

    def events(self, accounts: Sequence[str], since: datetime, until: datetime) -> Iterator[AuditEvent]:
        if not accounts:
            return
        c = self.config.columns
        tiebreak = "_shard_doc" if self.config.engine == "elasticsearch" else "_id"
        pit = self._open_pit()
        try:
            after: list[Any] | None = None
            while True:
                body: dict[str, Any] = {
                    "size": self.config.page_size, "query": self.query(accounts, since, until),
                    "pit": {"id": pit, "keep_alive": "2m"},
                    "sort": [{c.timestamp: "asc"}, {tiebreak: "asc"}], "track_total_hits": False,
                }
                if after is not None:
                    body["search_after"] = after
                page = self._call("POST", "/_search", json=body)
                pit = str(page.get("pit_id") or pit)  # the id may change between pages: use the newest
                hits = page.get("hits", {}).get("hits", [])
                for hit in hits:
                    source = hit.get("_source", {})
                    yield self.mapper.event(_lookup(source, c.timestamp), _lookup(source, c.account),
                                            _lookup(source, c.subject), _lookup(source, c.action),
                                            _lookup(source, c.fields), _lookup(source, c.source_ip),
                                            [_lookup(source, n) for n in c.may_hold_nir])
                if len(hits) < self.config.page_size:
                    return
                after = hits[-1]["sort"]
        finally:
            self._close_pit(pit)

    def close(self) -> None:
        self.http.close()


# --------------------------------------------------------------------------- the client


def account_key_of(account: Any, key: str) -> str | None:
    """The value the log's account column holds for a resolved account (uid, RPPS, mail or DN)."""
    if isinstance(account, str):
        return account
    if isinstance(account, BaseModel):
        account = account.model_dump()
    value = account.get(key) if isinstance(account, dict) else None
    return None if value in (None, "") else str(value)


class AuditClient:
    """What actions use: the scope of some accounts over a window, and the events behind it."""

    def __init__(self, config: AuditConfig, source: AuditSource) -> None:
        self.config = config
        self.source = source

    def snapshot_scope(
        self,
        accounts: Sequence[str],
        since: datetime,
        until: datetime | None = None,
        *,
        on_subject: Callable[[AffectedSubject], None] | None = None,
    ) -> Scope:
        """Per account and in total: events, people, first/last access, IPs, categories; subjects streamed."""
        since, until = _window(since, until)
        names = list(dict.fromkeys(accounts))
        builder = ScopeBuilder(names, since, until, sorted_by_subject=self.source.sorted_groups,
                               on_subject=on_subject)
        for group in self.source.groups(names, since, until):
            builder.add(group)
        return builder.finish()

    def events(self, accounts: Sequence[str], since: datetime, until: datetime | None = None) -> Iterator[AuditEvent]:
        since, until = _window(since, until)
        return self.source.events(list(dict.fromkeys(accounts)), since, until)

    def close(self) -> None:
        self.source.close()


def _window(since: datetime, until: datetime | None) -> tuple[datetime, datetime]:
    until = until or datetime.now(timezone.utc)
    since, until = parse_time(since), parse_time(until)
    if since >= until:
        raise ConfigError(f"audit: empty window {since.isoformat()} .. {until.isoformat()}")
    return since, until


def connect(config: AuditConfig, site: Any = None, *, transport: httpx.BaseTransport | None = None) -> AuditClient:
    """Build the client for a site's ``audit:`` section (called lazily by :class:`~tourniquet.site.Site`)."""
    source: AuditSource
    if config.kind == "sqlite":
        source = SqliteSource(config)
    elif config.kind == "postgresql":
        source = PostgresSource(config)
    elif config.kind in ("jsonl", "csv"):
        source = FileSource(config)
    else:
        source = OpenSearchSource(config, transport=transport)
    return AuditClient(config, source)
