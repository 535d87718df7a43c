"""Request Tracker 5 over REST2 (``<url>/REST/2.0/``), the ticket system CSIRTs run.

The incident key lives in a ticket custom field (``IncidentKey`` by default; an RT
administrator creates it, global or applied to the queue). An open ticket is found with
TicketSQL ``CF.{IncidentKey} = '<key>' AND Status != 'resolved' …``. Two hosts that do
not share a state_dir could still both create: after creating, the lowest open ticket
for the key wins and a newer duplicate is resolved pointing at it.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from tourniquet.connectors._http import HttpClient
from tourniquet.connectors.tickets.base import TicketDraft, TicketRef, TicketsConfig
from tourniquet.errors import ConfigError, PermanentError

__all__ = ["RequestTracker"]

SYSTEM = "rt"
NAME = "Request Tracker"
PRIORITY = {"low": 10, "medium": 30, "high": 60, "critical": 90}
CLOSED = ("resolved", "rejected", "deleted")
_CF_NAME = re.compile(r"^[A-Za-z0-9 _-]{1,64}$")


class RequestTracker:
    system = SYSTEM

    def __init__(self, config: TicketsConfig, transport: httpx.BaseTransport | None = None) -> None:
        assert config.url is not None
        if not _CF_NAME.match(config.custom_field):
            raise ConfigError(f"rt custom_field {config.custom_field!r}: letters, digits, space, _ and - only")
        self.web = config.url.rstrip("/")
        self.queue = config.queue
        self.field = config.custom_field
        headers = {"Accept": "application/json"}
        auth: httpx.Auth | None = None
        if config.token is not None:
            headers["Authorization"] = f"token {config.token.get()}"
        else:
            assert config.user and config.password
            auth = httpx.BasicAuth(config.user, config.password.get())
        self.api = HttpClient(config.http_settings(), self.web + "/REST/2.0/", system=SYSTEM, name=NAME,
                              headers=headers, auth=auth, transport=transport)

    def _ref(self, ticket_id: Any) -> TicketRef:
        return TicketRef(id=str(ticket_id), url=f"{self.web}/Ticket/Display.html?id={ticket_id}")

    def _open_ids(self, key: str) -> list[int]:
        closed = " AND ".join(f"Status != '{s}'" for s in CLOSED)
        query = f"CF.{{{self.field}}} = '{key}' AND {closed}"  # key alphabet checked by check_key
        answer = self.api.json("GET", "tickets", params={"query": query, "orderby": "id", "order": "ASC",
                                                         "per_page": 50, "fields": "id"})
        return sorted(int(item["id"]) for item in (answer or {}).get("items", []))

    def find_open(self, key: str) -> TicketRef | None:
        ids = self._open_ids(key)
        return self._ref(ids[0]) if ids else None

    def create(self, key: str, draft: TicketDraft) -> TicketRef:
        answer = self.api.json("POST", "ticket", idempotent=True, json={  # safe to repeat: see Backend
            "Queue": self.queue, "Subject": draft.title, "Content": draft.text(), "ContentType": "text/plain",
            "Priority": PRIORITY[draft.severity], "CustomFields": {self.field: key},
        })
        ticket_id = int(answer["id"])
        ids = self._open_ids(key)
        if ticket_id not in ids:  # RT drops unknown custom fields silently: the key would be lost
            raise PermanentError(
                f"ticket {ticket_id} created but its {self.field} custom field is not set: create the custom "
                f"field and apply it to queue {self.queue!r}", system=SYSTEM)
        if ids[0] != ticket_id:  # another host created one first: keep the oldest
            self.close(self._ref(ticket_id), f"Duplicate of ticket #{ids[0]} (same incident {key}).")
            ticket_id = ids[0]
        return self._ref(ticket_id)

    def update(self, ref: TicketRef, draft: TicketDraft) -> None:
        self.api.json("PUT", f"ticket/{ref.id}", json={"Subject": draft.title, "Priority": PRIORITY[draft.severity]})
        self.comment(ref, "Updated description:\n\n" + draft.text())

    def comment(self, ref: TicketRef, text: str) -> None:
        self.api.json("POST", f"ticket/{ref.id}/comment", idempotent=True, json={"Content": text, "ContentType": "text/plain"})

    def close(self, ref: TicketRef, text: str) -> None:
        if text:
            self.comment(ref, text)
        self.api.json("PUT", f"ticket/{ref.id}", json={"Status": "resolved"})

    def close_connection(self) -> None:
        self.api.close()
