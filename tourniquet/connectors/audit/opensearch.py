"""An OpenSearch / Elasticsearch index pattern, paged with a point in time and ``search_after``.

The point in time freezes the index for the whole read, so events written while we page neither
appear twice nor shift pages; it is deleted at the end. httpx errors and HTTP statuses are translated
by :mod:`tourniquet.connectors._http` (5xx, 429, unreachable → transient: every call here only reads,
or opens and closes a point in time, which is harmless to repeat; other 4xx → permanent).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx

from tourniquet.connectors._http import HttpClient
from tourniquet.connectors.audit.config import AuditConfig
from tourniquet.connectors.audit.events import SYSTEM, RawEvent, parse_time, text_or_none
from tourniquet.connectors.audit.stream import StreamSource
from tourniquet.errors import ConfigError, NotFound, PermanentError, TransientError

__all__ = ["OpenSearchSource"]


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


class OpenSearchSource(StreamSource):
    """``kind: opensearch`` (``engine: opensearch`` or ``elasticsearch``)."""

    def __init__(self, config: AuditConfig, transport: httpx.BaseTransport | None = None) -> None:
        if not config.url:
            raise ConfigError("audit: kind opensearch needs a url")
        super().__init__(config)
        auth = None
        if config.username and config.password is not None:
            auth = httpx.BasicAuth(config.username, config.password.get())
        name = "Elasticsearch" if config.engine == "elasticsearch" else "OpenSearch"
        self.http = HttpClient(config.http_settings(), config.url.rstrip("/"), system=SYSTEM, name=name,
                               auth=auth, transport=transport)

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body = self.http.json(method, path, idempotent=True, **kwargs)  # reads, or a point in time: repeatable
        return body if isinstance(body, dict) else {}

    def _open_pit(self) -> str:
        keep = {"keep_alive": "2m"}
        if self.config.engine == "elasticsearch":
            return str(self._call("POST", f"/{self.config.table}/_pit", params=keep)["id"])
        return str(self._call("POST", f"/{self.config.table}/_search/point_in_time", params=keep)["pit_id"])

    def _close_pit(self, pit: str) -> None:
        with contextlib.suppress(TransientError, PermanentError, NotFound):  # it expires on its own anyway
            if self.config.engine == "elasticsearch":
                self._call("DELETE", "/_pit", json={"id": pit})
            else:
                self._call("DELETE", "/_search/point_in_time", json={"pit_id": [pit]})

    def query(self, accounts: list[str], since: datetime, until: datetime) -> dict[str, Any]:
        c = self.config.columns
        return {"bool": {"filter": [
            {"terms": {c.account: list(accounts)}},
            {"range": {c.timestamp: {"gte": since.isoformat(), "lt": until.isoformat()}}},
        ]}}

    def records(self, accounts: list[str], start: datetime, end: datetime) -> Iterator[RawEvent]:
        if not accounts:
            return
        c = self.config.columns
        tiebreak = "_shard_doc" if self.config.engine == "elasticsearch" else "_id"
        pit = self._open_pit()
        try:
            after: list[Any] | None = None
            while True:
                body: dict[str, Any] = {
                    "size": self.config.page_size, "query": self.query(accounts, start, end),
                    "pit": {"id": pit, "keep_alive": "2m"},
                    "sort": [{c.timestamp: "asc"}, {tiebreak: "asc"}], "track_total_hits": False,
                }
                if after is not None:
                    body["search_after"] = after
                page = self._call("POST", "/_search", json=body)
                pit = str(page.get("pit_id") or pit)  # the id may change between pages: use the newest
                hits = page.get("hits", {}).get("hits", [])
                for hit in hits:
                    yield self._event(hit.get("_source", {}))
                if len(hits) < self.config.page_size:
                    return
                after = hits[-1]["sort"]
        finally:
            self._close_pit(pit)

    def _event(self, source: dict[str, Any]) -> RawEvent:
        c = self.config.columns
        raw_time = _lookup(source, c.timestamp)
        try:
            moment = parse_time(raw_time)
        except (TypeError, ValueError, OverflowError) as exc:
            raise PermanentError(f"bad timestamp {str(raw_time)[:40]!r} in {self.config.table}", system=SYSTEM) from exc
        return RawEvent(moment, str(_lookup(source, c.account)), text_or_none(_lookup(source, c.subject)),
                        _lookup(source, c.action), _lookup(source, c.fields) if c.fields else None,
                        text_or_none(_lookup(source, c.source_ip)),
                        tuple(_lookup(source, n) for n in c.may_hold_nir), None)

    def close(self) -> None:
        self.http.close()
