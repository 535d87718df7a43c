"""Jira contract tests: the connector against a transport answering as Atlassian documents
REST API v2/v3: POST /rest/api/2/issue (201 {id,key,self}), comments, transitions; Cloud's
GET /rest/api/3/search/jql (the old /search is removed there: 410) which is eventually
consistent; Data Center's GET /rest/api/2/search."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tourniquet.connectors.tickets import TicketClient, TicketDraft, TicketsConfig
from tourniquet.connectors.tickets.jira import Jira
from tourniquet.errors import PermanentError

AUTH_CLOUD = "Basic " + __import__("base64").b64encode(b"soc@example.org:api-token").decode()


class FakeJira:
    def __init__(self, *, cloud: bool, lag: int = 0) -> None:
        self.cloud = cloud
        self.lag = lag  # Cloud: an issue shows in search only after this many further searches
        self.issues: dict[str, dict[str, Any]] = {}
        self.comments: dict[str, list[str]] = {}
        self.searches: list[list[str]] = []
        self.status: int | None = None
        self.comment_status: int | None = None  # only the comment POST answers this (sent, then lost?)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.status:
            return httpx.Response(self.status, text="Bad gateway")
        if self.comment_status and request.method == "POST" and request.url.path.endswith("/comment"):
            return httpx.Response(self.comment_status, text="Service Unavailable")
        wanted = AUTH_CLOUD if self.cloud else "Bearer pat-token"
        if request.headers.get("Authorization") != wanted:
            return httpx.Response(401, json={"errorMessages": ["You are not authenticated."], "errors": {}})
        path = request.url.path
        body = json.loads(request.content) if request.content else {}
        if path == "/rest/api/2/search" and self.cloud:
            return httpx.Response(410, json={"errorMessages": ["The requested API has been removed. "
                                                              "Please migrate to the /rest/api/3/search/jql API."]})
        if path in ("/rest/api/3/search/jql", "/rest/api/2/search"):
            if path.endswith("/jql") and not self.cloud:
                return httpx.Response(404, text="")
            label = re.search(r'labels = "([^"]+)"', request.url.params["jql"]).group(1)  # type: ignore[union-attr]
            assert "statusCategory != Done" in request.url.params["jql"]
            for issue in self.issues.values():
                issue["age"] += 1
            found = [{"id": i["id"], "key": k, "fields": {"summary": i["summary"]}} for k, i in self.issues.items()
                     if label in i["labels"] and i["category"] != "done" and i["age"] > self.lag]
            self.searches.append([f["key"] for f in found])
            return httpx.Response(200, json={"issues": found, "isLast": True} if self.cloud else
                                  {"startAt": 0, "maxResults": 10, "total": len(found), "issues": found})
        if path == "/rest/api/2/issue" and request.method == "POST":
            key = f"SEC-{len(self.issues) + 1}"
            fields = body["fields"]
            self.issues[key] = {"id": str(10000 + len(self.issues)), "summary": fields["summary"],
                                "description": fields["description"], "labels": fields["labels"],
                                "category": "new", "age": 0}
            return httpx.Response(201, json={"id": self.issues[key]["id"], "key": key,
                                             "self": f"https://jira.example/rest/api/2/issue/{key}"})
        match = re.match(r"^/rest/api/2/issue/(SEC-\d+)(/comment|/transitions)?$", path)
        if match and match.group(1) in self.issues:
            key, sub = match.group(1), match.group(2)
            if sub == "/comment":
                self.comments.setdefault(key, []).append(body["body"])
                return httpx.Response(201, json={"id": "1", "body": body["body"]})
            if sub == "/transitions" and request.method == "GET":
                return httpx.Response(200, json={"transitions": [
                    {"id": "11", "name": "In Progress", "to": {"statusCategory": {"key": "indeterminate"}}},
                    {"id": "31", "name": "Done", "to": {"statusCategory": {"key": "done"}}}]})
            if sub == "/transitions":
                assert body == {"transition": {"id": "31"}}
                self.issues[key]["category"] = "done"
                return httpx.Response(204)
            self.issues[key].update({k: v for k, v in body["fields"].items()})
            return httpx.Response(204)
        return httpx.Response(404, json={"errorMessages": ["Issue does not exist"]})


def _client(fake: FakeJira, state: Path, monkeypatch: pytest.MonkeyPatch, token: str | None = None) -> TicketClient:
    monkeypatch.setenv("JIRA_TOKEN", token or ("api-token" if fake.cloud else "pat-token"))
    config = TicketsConfig.model_validate({
        "kind": "jira", "url": "https://jira.example", "user": "soc@example.org", "token": {"env": "JIRA_TOKEN"},
        "project": "SEC", "deployment": "cloud" if fake.cloud else "datacenter"})
    return TicketClient(Jira(config, transport=httpx.MockTransport(fake)), state, retry_after=0)


def test_cloud_search_lag_does_not_make_a_second_issue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Jira Cloud's /rest/api/3/search/jql is eventually consistent: a just-created issue is not found yet.
    The local record of what was created keeps a re-run (or a concurrent step) on the same issue."""
    jira = FakeJira(cloud=True, lag=3)
    draft = TicketDraft(title="Credential misuse", body="Locked: x", labels=["credential misuse"])

    first = _client(jira, tmp_path / "state", monkeypatch).open("inc-j1", draft)
    again = _client(jira, tmp_path / "state", monkeypatch).open("inc-j1", draft)
    _client(jira, tmp_path / "state", monkeypatch).comment("inc-j1", "Data scope: 2 patients")

    assert jira.searches == [[]], "search was asked once, before creating, and saw nothing"
    assert list(jira.issues) == ["SEC-1"] and first.ticket_id == again.ticket_id == "SEC-1"
    assert again.status == "noop"
    assert jira.issues["SEC-1"]["labels"] == ["tourniquet-inc-j1", "credential-misuse"]
    assert jira.comments["SEC-1"] == ["Data scope: 2 patients"]
    assert first.url == "https://jira.example/browse/SEC-1"


def test_cloud_finds_by_label_once_the_index_caught_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another host (no local record) finds the issue by its unique label once search has indexed it."""
    jira = FakeJira(cloud=True, lag=0)
    draft = TicketDraft(title="Credential misuse", body="x")
    _client(jira, tmp_path / "a", monkeypatch).open("inc-j2", draft)

    found = _client(jira, tmp_path / "b", monkeypatch).open("inc-j2", draft)

    assert found.ticket_id == "SEC-1" and list(jira.issues) == ["SEC-1"]


def test_data_center_uses_api_2_search_and_closes_by_transition(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Data Center keeps GET /rest/api/2/search (Bearer PAT); closing picks the transition into the Done category."""
    jira = FakeJira(cloud=False)
    draft = TicketDraft(title="Credential misuse", body="x")
    _client(jira, tmp_path / "a", monkeypatch).open("inc-j3", draft)
    other = _client(jira, tmp_path / "b", monkeypatch)

    assert other.open("inc-j3", draft).ticket_id == "SEC-1"
    other.resolve("inc-j3", "Closed after review")

    assert jira.issues["SEC-1"]["category"] == "done"
    assert jira.comments["SEC-1"][-1] == "Closed after review"


def test_bad_token_is_permanent_and_not_queued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong API token: 401 {"errorMessages": ["You are not authenticated."]}."""
    jira = FakeJira(cloud=True)
    client = _client(jira, tmp_path, monkeypatch, token="wrong")

    with pytest.raises(PermanentError, match="authentication"):
        client.open("inc-j4", TicketDraft(title="x"))
    assert client.outbox.pending("inc-j4") == []


def test_502_queues_then_delivers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Atlassian's edge answering 502 Bad Gateway: the issue and its comment wait, then are delivered in order."""
    jira = FakeJira(cloud=True)
    client = _client(jira, tmp_path, monkeypatch)
    jira.status = 502
    client.open("inc-j5", TicketDraft(title="x"))
    client.comment("inc-j5", "first")
    jira.status = None

    assert client.deliver() == {"delivered": 2, "pending": 0}
    assert jira.comments["SEC-1"] == ["first"]


def test_a_comment_answered_503_waits_in_the_outbox_rather_than_being_lost(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """POST /rest/api/2/issue/{key}/comment answered 503 (it may or may not have been stored): the comment
    (a seal's root, say) is kept in the outbox and delivered later, not dropped as a permanent failure."""
    jira = FakeJira(cloud=True)
    client = _client(jira, tmp_path, monkeypatch)
    client.open("inc-j6", TicketDraft(title="x"))
    jira.comment_status = 503

    client.comment("inc-j6", "evidence root abc")
    assert [entry.payload["text"] for entry in client.outbox.pending("inc-j6")] == ["evidence root abc"]

    jira.comment_status = None
    assert client.deliver() == {"delivered": 1, "pending": 0}
    assert jira.comments["SEC-1"][-1] == "evidence root abc"
