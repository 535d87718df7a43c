"""Jira over REST API v2 (plain-text descriptions; v3 would need Atlassian Document Format).

The incident key is a **label** (``tourniquet-<key>``). Finding the open issue:
Cloud ``GET /rest/api/3/search/jql`` (the old ``/search`` is gone there), Data Center
``GET /rest/api/2/search``. Cloud's search is *eventually consistent*: an issue created a
second ago may not be found yet — the ticket client's local ledger (what we created)
is checked first, so a re-run does not create a second issue.
Auth: Cloud = e-mail + API token (Basic), Data Center = personal access token (Bearer).
"""

from __future__ import annotations

import re

import httpx

from tourniquet.connectors._http import HttpClient
from tourniquet.connectors.tickets.base import TicketDraft, TicketRef, TicketsConfig
from tourniquet.errors import PermanentError

__all__ = ["Jira"]

SYSTEM = "jira"
NAME = "Jira"
_LABEL = re.compile(r"\s+")


class Jira:
    system = SYSTEM

    def __init__(self, config: TicketsConfig, transport: httpx.BaseTransport | None = None) -> None:
        assert config.url is not None and config.token is not None and config.project
        self.web = config.url.rstrip("/")
        self.project = config.project
        self.issue_type = config.issue_type
        self.prefix = config.label_prefix
        self.cloud = config.deployment == "cloud"
        headers = {"Accept": "application/json"}
        auth: httpx.Auth | None = None
        if self.cloud:
            auth = httpx.BasicAuth(config.user or "", config.token.get())
        else:
            headers["Authorization"] = f"Bearer {config.token.get()}"
        self.api = HttpClient(config.http_settings(), self.web + "/", system=SYSTEM, name=NAME,
                              headers=headers, auth=auth, transport=transport)

    def label(self, key: str) -> str:
        return self.prefix + key

    def _ref(self, issue_key: str) -> TicketRef:
        return TicketRef(id=issue_key, url=f"{self.web}/browse/{issue_key}")

    def find_open(self, key: str) -> TicketRef | None:
        jql = f'labels = "{self.label(key)}" AND statusCategory != Done ORDER BY created ASC'
        path = "rest/api/3/search/jql" if self.cloud else "rest/api/2/search"
        answer = self.api.json("GET", path, params={"jql": jql, "fields": "summary,status", "maxResults": 10}) or {}
        issues = answer.get("issues") or []
        return self._ref(issues[0]["key"]) if issues else None

    def create(self, key: str, draft: TicketDraft) -> TicketRef:
        labels = [self.label(key)] + [_LABEL.sub("-", label) for label in draft.labels]
        answer = self.api.json("POST", "rest/api/2/issue", idempotent=True, json={"fields": {  # safe to repeat: see Backend
            "project": {"key": self.project}, "issuetype": {"name": self.issue_type},
            "summary": draft.title, "description": draft.text(), "labels": labels,
        }})
        return self._ref(answer["key"])

    def update(self, ref: TicketRef, draft: TicketDraft) -> None:
        self.api.request("PUT", f"rest/api/2/issue/{ref.id}",
                         json={"fields": {"summary": draft.title, "description": draft.text()}})

    def comment(self, ref: TicketRef, text: str) -> None:
        self.api.json("POST", f"rest/api/2/issue/{ref.id}/comment", idempotent=True, json={"body": text})

    def close(self, ref: TicketRef, text: str) -> None:
        if text:
            self.comment(ref, text)
        answer = self.api.json("GET", f"rest/api/2/issue/{ref.id}/transitions") or {}
        for transition in answer.get("transitions", []):
            if transition.get("to", {}).get("statusCategory", {}).get("key") == "done":
                self.api.request("POST", f"rest/api/2/issue/{ref.id}/transitions",
                                 json={"transition": {"id": transition["id"]}})
                return
        raise PermanentError(f"{ref.id}: no transition leads to a Done status from here", system=SYSTEM)

    def close_connection(self) -> None:
        self.api.close()
