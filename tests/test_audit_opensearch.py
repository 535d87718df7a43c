"""Contract tests: the access log in OpenSearch / Elasticsearch, over httpx.MockTransport.

The mock answers as the vendors document point-in-time paging:
- OpenSearch 2.x "Point in Time" API: ``POST /<index>/_search/point_in_time?keep_alive=`` returns
  ``pit_id``; ``POST /_search`` with ``pit: {id, keep_alive}``, ``sort`` and ``search_after`` (no index in
  the path when a PIT is given); ``DELETE /_search/point_in_time`` with ``{"pit_id": [..]}``.
- Elasticsearch 8 "Open point in time" API: ``POST /<index>/_pit?keep_alive=`` returns ``id``; each search
  response carries the (possibly new) ``pit_id`` to use next; ``DELETE /_pit`` with ``{"id": ..}``.
Date sort values come back as epoch milliseconds, and ``search_after`` repeats the last hit's ``sort``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.test_audit_scope import SINCE, UNTIL, VALID_NIRS, incident_log
from tourniquet.connectors.audit import AuditConfig, ColumnMapping, connect
from tourniquet.errors import PermanentError, TransientError


def _documents() -> list[dict[str, Any]]:
    """The incident log as an ECS-like index: nested user, @timestamp, fields as a list."""
    return [{"_id": f"doc-{n}", "_source": {
        "@timestamp": a.ts.isoformat().replace("+00:00", "Z"), "user": {"name": a.account},
        "patient": {"id": a.patient_id}, "event": {"action": a.action}, "shown": list(a.fields),
        "source": {"ip": a.source_ip}, "search": {"terms": a.query}}} for n, a in enumerate(incident_log())]


class FakeCluster:
    def __init__(self, engine: str, documents: list[dict[str, Any]]) -> None:
        self.engine = engine
        self.documents = documents
        self.open_pits: set[str] = set()
        self.searches: list[dict[str, Any]] = []
        self.fail_with: int | None = None
        self.counter = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.fail_with:
            return httpx.Response(self.fail_with, json={"error": "nope"})
        path, body = request.url.path, json.loads(request.content or b"{}")
        if request.method == "POST" and path == "/audit-*/_search/point_in_time" and self.engine == "opensearch":
            assert request.url.params["keep_alive"]
            self.open_pits.add("os-pit-1")
            return httpx.Response(200, json={"pit_id": "os-pit-1", "creation_time": 0})
        if request.method == "POST" and path == "/audit-*/_pit" and self.engine == "elasticsearch":
            self.open_pits.add("es-pit-0")
            return httpx.Response(200, json={"id": "es-pit-0"})
        if request.method == "POST" and path == "/_search":
            return self.search(body)
        if request.method == "DELETE" and path == "/_search/point_in_time" and self.engine == "opensearch":
            for pit in body["pit_id"]:
                self.open_pits.discard(pit)
            return httpx.Response(200, json={"pits": [{"pit_id": p, "successful": True} for p in body["pit_id"]]})
        if request.method == "DELETE" and path == "/_pit" and self.engine == "elasticsearch":
            self.open_pits.discard(body["id"])
            return httpx.Response(200, json={"succeeded": True, "num_freed": 1})
        return httpx.Response(404, json={"error": f"no route {request.method} {path}"})

    def search(self, body: dict[str, Any]) -> httpx.Response:
        self.searches.append(body)
        pit = body["pit"]["id"]
        assert pit in self.open_pits, "a search must use the newest PIT id"
        filters = body["query"]["bool"]["filter"]
        accounts = set(filters[0]["terms"]["user.name.keyword"])
        window = filters[1]["range"]["@timestamp"]
        since, until = datetime.fromisoformat(window["gte"]), datetime.fromisoformat(window["lt"])
        hits = []
        for doc in self.documents:
            source = doc["_source"]
            moment = datetime.fromisoformat(source["@timestamp"].replace("Z", "+00:00"))
            if source["user"]["name"] in accounts and since <= moment < until:
                hits.append({**doc, "sort": [int(moment.timestamp() * 1000), doc["_id"]]})
        hits.sort(key=lambda h: tuple(h["sort"]))
        if "search_after" in body:
            hits = [h for h in hits if tuple(h["sort"]) > tuple(body["search_after"])]
        page = hits[: body["size"]]
        if self.engine == "elasticsearch":  # ES may hand back a new PIT id with each page
            self.counter += 1
            new = f"es-pit-{self.counter}"
            self.open_pits = {new}
            return httpx.Response(200, json={"pit_id": new, "hits": {"hits": page}})
        return httpx.Response(200, json={"pit_id": pit, "hits": {"hits": page}})


def _client(cluster: FakeCluster, page_size: int = 7) -> Any:
    config = AuditConfig.model_validate({
        "kind": "opensearch", "url": "https://search.example:9200", "table": "audit-*", "engine": cluster.engine,
        "page_size": page_size,
        "columns": ColumnMapping(timestamp="@timestamp", account="user.name.keyword", subject="patient.id",
                                 action="event.action", fields="shown", source_ip="source.ip",
                                 may_hold_nir=["search.terms"]),
    })
    return connect(config, state_dir=None, transport=httpx.MockTransport(cluster))


@pytest.mark.parametrize("engine", ["opensearch", "elasticsearch"])
def test_scope_over_point_in_time_pages_matches_the_ground_truth(engine: str) -> None:
    cluster = FakeCluster(engine, _documents())
    client = _client(cluster)

    scope = client.snapshot_scope(["adupont", "bmartin", "cdurand"], SINCE, UNTIL)

    assert scope.total.subjects == 159 and scope.total.events == 221
    assert scope.total.subjects_by_category == {"contact": 100, "identity": 159, "social_security_number": 5}
    window = [s for s in cluster.searches
              if s["query"]["bool"]["filter"][1]["range"]["@timestamp"]["gte"] == SINCE.isoformat()]
    assert len(window) == 221 // 7 + 1, "the window paged with search_after, not one giant page"
    assert all("search_after" in s for s in window[1:])
    assert len(cluster.searches) > len(window), "the owners' history and daily accesses are read too"
    assert cluster.open_pits == set(), "the point in time is closed afterwards"


@pytest.mark.parametrize("engine", ["opensearch", "elasticsearch"])
def test_events_come_in_time_order_across_pages(engine: str) -> None:
    client = _client(FakeCluster(engine, _documents()), page_size=3)

    events = list(client.events(client.plan(["cdurand"], SINCE, UNTIL)))

    assert len(events) == 10 and sum(e.nir_shown for e in events) == len(VALID_NIRS)
    assert [e.timestamp for e in events] == sorted(e.timestamp for e in events)


@pytest.mark.parametrize("status, error", [(503, TransientError), (429, TransientError), (401, PermanentError),
                                           (400, PermanentError)])
def test_http_failures_are_translated(status: int, error: type[Exception]) -> None:
    cluster = FakeCluster("opensearch", _documents())
    cluster.fail_with = status

    with pytest.raises(error):
        _client(cluster).snapshot_scope(["adupont"], SINCE, UNTIL)


def test_unreachable_cluster_is_transient() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    config = AuditConfig(kind="opensearch", url="https://search.example:9200")  # type: ignore[call-arg]
    with pytest.raises(TransientError):
        connect(config, state_dir=None, transport=httpx.MockTransport(refuse)).snapshot_scope(["a"], SINCE, UNTIL)
