"""TheHive 5 contract tests: the connector against a transport answering as TheHive's API v1 does
(thehive4py's endpoints): POST /api/v1/alert, POST /api/v1/query (listAlert + filter),
POST /api/v1/alert/{id}/comment, PATCH /api/v1/alert/{id}; errors {"type", "message"}."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tourniquet.connectors.tickets import TicketClient, TicketDraft, TicketsConfig
from tourniquet.connectors.tickets.thehive import TheHive
from tourniquet.errors import PermanentError


class FakeHive:
    def __init__(self) -> None:
        self.alerts: dict[str, dict[str, Any]] = {}
        self.comments: dict[str, list[str]] = {}
        self.hide_from_queries = 0  # answer this many queries as if the alert did not exist yet (a race)
        self.status: int | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.status:
            return httpx.Response(self.status, json={"type": "InternalError", "message": "database unavailable"})
        if request.headers.get("Authorization") != "Bearer hive-key":
            return httpx.Response(401, json={"type": "AuthenticationError", "message": "Authentication failure"})
        path = request.url.path
        body = json.loads(request.content) if request.content else {}
        if path == "/api/v1/alert" and request.method == "POST":
            for alert in self.alerts.values():
                if (alert["type"], alert["source"], alert["sourceRef"]) == (body["type"], body["source"],
                                                                             body["sourceRef"]):
                    return httpx.Response(400, json={
                        "type": "CreateError",
                        "message": f"Alert ({body['type']}/{body['source']}/{body['sourceRef']}) already exists"})
            alert_id = f"~{4096 * (len(self.alerts) + 1)}"
            self.alerts[alert_id] = {"_id": alert_id, "_type": "Alert", "status": "New", **body}
            return httpx.Response(201, json=self.alerts[alert_id])
        if path == "/api/v1/query":
            query = body["query"]
            assert query[0] == {"_name": "listAlert"}
            conditions = {c["_eq"]["_field"]: c["_eq"]["_value"] for c in query[1]["_and"]}
            if self.hide_from_queries:
                self.hide_from_queries -= 1
                return httpx.Response(200, json=[])
            return httpx.Response(200, json=[a for a in self.alerts.values()
                                             if all(a.get(k) == v for k, v in conditions.items())])
        alert_id = path.split("/")[4] if path.startswith("/api/v1/alert/") else ""
        if alert_id not in self.alerts:
            return httpx.Response(404, json={"type": "NotFoundError", "message": f"Alert {alert_id} not found"})
        if path.endswith("/comment"):
            self.comments.setdefault(alert_id, []).append(body["message"])
            return httpx.Response(201, json={"_id": "~1", "message": body["message"]})
        if request.method == "PATCH":
            self.alerts[alert_id].update(body)
            return httpx.Response(204)
        return httpx.Response(404, json={"type": "NotFoundError", "message": "no route"})


def _client(fake: FakeHive, state: Path, monkeypatch: pytest.MonkeyPatch, key: str = "hive-key") -> TicketClient:
    monkeypatch.setenv("HIVE_KEY", key)
    config = TicketsConfig.model_validate({"kind": "thehive", "url": "https://hive.example",
                                           "token": {"env": "HIVE_KEY"}})
    return TicketClient(TheHive(config, transport=httpx.MockTransport(fake)), state, retry_after=0)


def test_open_rerun_comment_close(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One alert per incident: sourceRef = incident key, found again with POST /api/v1/query (listAlert filtered
    on source and sourceRef); comments on the alert; closing sets its status."""
    hive = FakeHive()
    draft = TicketDraft(title="Credential misuse", body="Locked: x", severity="critical", labels=["misuse"])

    opened = _client(hive, tmp_path / "a", monkeypatch).open("inc-h1", draft)
    other = _client(hive, tmp_path / "b", monkeypatch)
    assert other.open("inc-h1", draft).ticket_id == opened.ticket_id
    other.comment("inc-h1", "Data scope: 4 patients")
    other.resolve("inc-h1", "Closed after review")

    [alert] = hive.alerts.values()
    assert alert["sourceRef"] == "inc-h1" and alert["source"] == "tourniquet"
    assert alert["severity"] == 4 and alert["tags"] == ["misuse"] and alert["status"] == "Ignored"
    assert hive.comments[alert["_id"]] == ["Data scope: 4 patients", "Closed after review"]
    assert opened.url == f"https://hive.example/alerts/{alert['_id']}/details"


def test_race_lost_on_create_uses_the_existing_alert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TheHive refuses a second alert with the same type/source/sourceRef (400 CreateError "already exists"):
    a host that looked before the other created it ends up on the same alert."""
    hive = FakeHive()
    draft = TicketDraft(title="Credential misuse", body="x")
    first = _client(hive, tmp_path / "a", monkeypatch).open("inc-h2", draft)
    hive.hide_from_queries = 1

    second = _client(hive, tmp_path / "b", monkeypatch).open("inc-h2", draft)

    assert len(hive.alerts) == 1 and second.ticket_id == first.ticket_id


def test_bad_api_key_is_permanent_and_not_queued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong API key: 401 {"type": "AuthenticationError", "message": "Authentication failure"}."""
    client = _client(FakeHive(), tmp_path, monkeypatch, key="wrong")

    with pytest.raises(PermanentError, match="Authentication failure"):
        client.open("inc-h3", TicketDraft(title="x"))
    assert client.outbox.pending("inc-h3") == []


def test_500_queues_then_delivers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TheHive answering 500 {"type": "InternalError"} (database down): the alert and comment wait, then go."""
    hive = FakeHive()
    client = _client(hive, tmp_path, monkeypatch)
    hive.status = 500
    queued = client.open("inc-h4", TicketDraft(title="x"))
    client.comment("inc-h4", "first")
    hive.status = None

    assert queued.status == "queued"
    assert client.deliver() == {"delivered": 2, "pending": 0}
    [alert_id] = hive.alerts
    assert hive.comments[alert_id] == ["first"]
