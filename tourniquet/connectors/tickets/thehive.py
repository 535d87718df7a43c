"""TheHive 5: the incident is an **alert** whose ``sourceRef`` is the incident key.

TheHive refuses a second alert with the same (type, source, sourceRef), which makes
creation idempotent on the server side; the alert is still looked up first with
``POST /api/v1/query`` (``listAlert`` filtered on ``source`` and ``sourceRef``).
Comments go to ``POST /api/v1/alert/{id}/comment``; closing sets the alert status.
Auth: ``Authorization: Bearer <API key>``.
"""

from __future__ import annotations

from typing import Any

import httpx

from tourniquet.connectors._http import HttpClient
from tourniquet.connectors.tickets.base import TicketDraft, TicketRef, TicketsConfig
from tourniquet.errors import PermanentError

__all__ = ["TheHive"]

SYSTEM = "thehive"
NAME = "TheHive"
SOURCE = "tourniquet"
ALERT_TYPE = "incident-response"
SEVERITY = {"low": 1, "medium": 2, "high": 3, "critical": 4}
CLOSE_STATUS = "Ignored"


class TheHive:
    system = SYSTEM

    def __init__(self, config: TicketsConfig, transport: httpx.BaseTransport | None = None) -> None:
        assert config.url is not None and config.token is not None
        self.web = config.url.rstrip("/")
        self.api = HttpClient(config.http_settings(), self.web + "/", system=SYSTEM, name=NAME,
                              headers={"Accept": "application/json",
                                       "Authorization": f"Bearer {config.token.get()}"}, transport=transport)

    def _ref(self, alert_id: str) -> TicketRef:
        return TicketRef(id=alert_id, url=f"{self.web}/alerts/{alert_id}/details")

    def _alerts(self, key: str) -> list[dict[str, Any]]:
        query = [
            {"_name": "listAlert"},
            {"_name": "filter", "_and": [{"_eq": {"_field": "source", "_value": SOURCE}},
                                         {"_eq": {"_field": "sourceRef", "_value": key}}]},
            {"_name": "sort", "_fields": [{"_createdAt": "asc"}]},
        ]
        answer = self.api.json("POST", "api/v1/query", idempotent=True,  # a search: reads only
                               params={"name": "tourniquet-alert"}, json={"query": query})
        return [a for a in (answer or []) if a.get("sourceRef") == key]

    def find_open(self, key: str) -> TicketRef | None:
        alerts = self._alerts(key)  # one alert per sourceRef, closed or not: TheHive allows no second one
        return self._ref(str(alerts[0]["_id"])) if alerts else None

    def create(self, key: str, draft: TicketDraft) -> TicketRef:
        try:
            answer = self.api.json("POST", "api/v1/alert", idempotent=True, json={  # a second one is refused
                "type": ALERT_TYPE, "source": SOURCE, "sourceRef": key, "title": draft.title,
                "description": draft.text(), "severity": SEVERITY[draft.severity], "tags": draft.labels,
            })
        except PermanentError as exc:
            if "already exists" not in str(exc):
                raise
            found = self.find_open(key)  # a concurrent run created it: use that one
            if found is None:
                raise
            return found
        return self._ref(str(answer["_id"]))

    def update(self, ref: TicketRef, draft: TicketDraft) -> None:
        self.api.request("PATCH", f"api/v1/alert/{ref.id}", idempotent=True, json={  # sets fields: same each time
            "title": draft.title, "description": draft.text(), "severity": SEVERITY[draft.severity],
            "tags": draft.labels,
        })

    def comment(self, ref: TicketRef, text: str) -> None:
        self.api.json("POST", f"api/v1/alert/{ref.id}/comment", json={"message": text})

    def close(self, ref: TicketRef, text: str) -> None:
        if text:
            self.comment(ref, text)
        self.api.request("PATCH", f"api/v1/alert/{ref.id}", idempotent=True, json={"status": CLOSE_STATUS})

    def close_connection(self) -> None:
        self.api.close()
