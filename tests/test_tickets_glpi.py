"""GLPI contract tests: the connector against a transport answering as GLPI's REST API documents
(apirest.md of glpi-project/glpi, 10.x): initSession / Session-Token / killSession, POST /Ticket,
POST /ITILFollowup, GET /search/Ticket with numbered criteria, JSON error arrays."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tourniquet.connectors.tickets import TicketClient, TicketDraft, TicketsConfig
from tourniquet.connectors.tickets.glpi import Glpi
from tourniquet.errors import PermanentError


class FakeGlpi:
    """GLPI's API as documented: array errors ["ERROR_…", "message"], 201 on creation."""

    def __init__(self) -> None:
        self.tickets: dict[int, dict[str, Any]] = {}
        self.followups: list[dict[str, Any]] = []
        self.sessions: set[str] = set()
        self.logins = 0
        self.killed: list[str] = []
        self.down = False

    @staticmethod
    def error(status: int, code: str, message: str) -> httpx.Response:
        return httpx.Response(status, json=[code, message])

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            return httpx.Response(503, text="<html>Service Unavailable</html>")
        path = request.url.path.removeprefix("/glpi/apirest.php/")
        if request.headers.get("App-Token") != "app-token":
            return self.error(400, "ERROR_WRONG_APP_TOKEN_PARAMETER", "parameter app_token seems wrong")
        if request.method == "GET" and request.content:
            return self.error(400, "ERROR_JSON_PAYLOAD_FORBIDDEN", "GET Request should not have json payload")
        if path == "initSession":
            if request.headers.get("Authorization") != "user_token good-user-token":
                return self.error(401, "ERROR_GLPI_LOGIN_USER_TOKEN", "parameter user_token seems invalid")
            self.logins += 1
            token = f"session-{self.logins}"
            self.sessions.add(token)
            return httpx.Response(200, json={"session_token": token})
        session = request.headers.get("Session-Token", "")
        if session not in self.sessions:
            return self.error(401, "ERROR_SESSION_TOKEN_INVALID", "session_token seems invalid")
        body = json.loads(request.content) if request.content else {}
        if path == "killSession":
            self.sessions.discard(session)
            self.killed.append(session)
            return httpx.Response(200, json=[])
        if path == "search/Ticket":
            params = request.url.params
            wanted = params["criteria[0][value]"]
            assert params["criteria[1][value]"] == "notold" and params["criteria[1][field]"] == "12"
            rows = [{"2": i, "1": t["name"]} for i, t in sorted(self.tickets.items())
                    if wanted in t["name"] and t["status"] < 5]
            answer: dict[str, Any] = {"totalcount": len(rows), "count": len(rows), "sort": [2], "order": ["ASC"]}
            if rows:
                answer["data"] = rows  # GLPI leaves "data" out when nothing matches
            return httpx.Response(200, json=answer)
        if path == "Ticket" and request.method == "POST":
            number = len(self.tickets) + 1
            self.tickets[number] = {**body["input"], "status": 1}
            return httpx.Response(201, json={"id": number, "message": f"Item successfully added: {number}"})
        if path.startswith("Ticket/"):
            number = int(path.split("/")[1])
            if number not in self.tickets:
                return self.error(404, "ERROR_ITEM_NOT_FOUND", "Item not found")
            if request.method == "PUT":
                self.tickets[number].update(body["input"])
                return httpx.Response(200, json=[{str(number): True, "message": ""}])
            return httpx.Response(200, json={"id": number, **self.tickets[number]})
        if path == "ITILFollowup":
            self.followups.append(body["input"])
            return httpx.Response(201, json={"id": len(self.followups), "message": ""})
        return self.error(400, "ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM", "resource not found")


@pytest.fixture
def glpi(monkeypatch: pytest.MonkeyPatch) -> FakeGlpi:
    monkeypatch.setenv("GLPI_USER_TOKEN", "good-user-token")
    monkeypatch.setenv("GLPI_APP_TOKEN", "app-token")
    return FakeGlpi()


def _client(fake: FakeGlpi, tmp_path: Path, user_token_env: str = "GLPI_USER_TOKEN") -> TicketClient:
    config = TicketsConfig.model_validate({"kind": "glpi", "url": "https://glpi.example/glpi/apirest.php",
                                           "token": {"env": user_token_env}, "app_token": {"env": "GLPI_APP_TOKEN"}})
    return TicketClient(Glpi(config, transport=httpx.MockTransport(fake)), tmp_path / "state", retry_after=0)


def test_open_rerun_comment_close(glpi: FakeGlpi, tmp_path: Path) -> None:
    """initSession with App-Token + user_token; Ticket created (201, {"id"}); a re-run from another host finds
    it with /search/Ticket (title contains the key, status notold); followups via /ITILFollowup; killSession."""
    draft = TicketDraft(title="Credential misuse: 1 account contained", body="Locked: jdupont", severity="critical")
    client = _client(glpi, tmp_path)

    opened = client.open("inc-g1", draft)
    other = _client(glpi, tmp_path / "host-b").open("inc-g1", draft)
    client.comment("inc-g1", "Data scope: 3 patients")
    client.resolve("inc-g1", "Closed after review")
    client.close()

    assert opened.ticket_id == other.ticket_id == "1"
    assert opened.url == "https://glpi.example/glpi/front/ticket.form.php?id=1"
    assert list(glpi.tickets) == [1]
    ticket = glpi.tickets[1]
    assert ticket["name"] == "Credential misuse: 1 account contained [inc-g1]"
    assert ticket["urgency"] == 5 and ticket["status"] == 6
    assert [f["content"] for f in glpi.followups][-2:] == ["Data scope: 3 patients", "Closed after review"]
    assert all(f["itemtype"] == "Ticket" and f["items_id"] == 1 for f in glpi.followups)
    assert glpi.killed, "the session is closed at the end"


def test_bad_user_token_is_permanent_and_not_queued(glpi: FakeGlpi, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """initSession answers 401 ["ERROR_GLPI_LOGIN_USER_TOKEN", …] for a wrong user token."""
    monkeypatch.setenv("GLPI_BAD", "wrong")
    client = _client(glpi, tmp_path, user_token_env="GLPI_BAD")

    with pytest.raises(PermanentError, match="ERROR_GLPI_LOGIN_USER_TOKEN"):
        client.open("inc-g2", TicketDraft(title="x"))
    assert client.outbox.pending("inc-g2") == []


def test_expired_session_is_opened_again(glpi: FakeGlpi, tmp_path: Path) -> None:
    """A session token GLPI no longer knows gives 401 ["ERROR_SESSION_TOKEN_INVALID", …]: log in again once."""
    client = _client(glpi, tmp_path)
    client.open("inc-g3", TicketDraft(title="x"))
    glpi.sessions.clear()

    client.comment("inc-g3", "after expiry")

    assert glpi.logins == 2
    assert glpi.followups[-1]["content"] == "after expiry"


def test_503_queues_then_delivers_in_order(glpi: FakeGlpi, tmp_path: Path) -> None:
    """GLPI behind a proxy answering 503 during maintenance: writes wait in the outbox, then go in order."""
    client = _client(glpi, tmp_path)
    glpi.down = True
    first = client.open("inc-g4", TicketDraft(title="Credential misuse", body="Locked: x"))
    client.comment("inc-g4", "one")
    glpi.down = False

    client.comment("inc-g4", "two")

    assert first.status == "queued"
    assert list(glpi.tickets) == [1]
    assert [f["content"] for f in glpi.followups] == ["one", "two"]
