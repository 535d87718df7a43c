"""GLPI over its REST API (``…/apirest.php``), the ticket system of most French public bodies.

Session: ``GET initSession`` with ``App-Token`` and ``Authorization: user_token …`` gives a
``Session-Token`` for the next calls; ``killSession`` at the end; an expired session is
opened again once. GLPI has no free custom field without a plugin, so the incident key is
kept **in the ticket title**, as a ``[key]`` suffix, and found with ``/search/Ticket``
(field 1 = title, ``contains``; field 12 = status, ``notold`` = not solved nor closed).
GET requests carry no body (GLPI refuses them).
"""

from __future__ import annotations

from typing import Any

import httpx

from tourniquet.connectors._http import HttpClient
from tourniquet.connectors.tickets.base import TicketDraft, TicketRef, TicketsConfig
from tourniquet.errors import PermanentError

__all__ = ["Glpi", "marker"]

SYSTEM = "glpi"
NAME = "GLPI"
URGENCY = {"low": 2, "medium": 3, "high": 4, "critical": 5}
CLOSED = 6


def marker(key: str) -> str:
    return f"[{key}]"


class Glpi:
    system = SYSTEM

    def __init__(self, config: TicketsConfig, transport: httpx.BaseTransport | None = None) -> None:
        assert config.url is not None and config.token is not None
        self.base = config.url.rstrip("/")
        self.web = self.base.removesuffix("/apirest.php")
        self.user_token = config.token
        self.app_token = config.app_token.get() if config.app_token else None
        headers = {"Accept": "application/json"}
        if self.app_token:
            headers["App-Token"] = self.app_token
        self.api = HttpClient(config.http_settings(), self.base + "/", system=SYSTEM, name=NAME,
                              headers=headers, transport=transport)
        self.session: str | None = None

    def _login(self) -> str:
        answer = self.api.json("GET", "initSession", headers={"Authorization": f"user_token {self.user_token.get()}"})
        token = (answer or {}).get("session_token")
        if not token:
            raise PermanentError("initSession gave no session_token", system=SYSTEM)
        self.session = str(token)
        return self.session

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        session = self.session or self._login()
        try:
            return self.api.json(method, path, headers={"Session-Token": session}, **kwargs)
        except PermanentError as exc:
            if "ERROR_SESSION_TOKEN_INVALID" not in str(exc):
                raise
            return self.api.json(method, path, headers={"Session-Token": self._login()}, **kwargs)

    def _ref(self, ticket_id: Any) -> TicketRef:
        return TicketRef(id=str(ticket_id), url=f"{self.web}/front/ticket.form.php?id={ticket_id}")

    def find_open(self, key: str) -> TicketRef | None:
        params = {
            "criteria[0][field]": "1", "criteria[0][searchtype]": "contains", "criteria[0][value]": marker(key),
            "criteria[1][link]": "AND", "criteria[1][field]": "12", "criteria[1][searchtype]": "equals",
            "criteria[1][value]": "notold", "forcedisplay[0]": "2", "forcedisplay[1]": "1",
            "sort": "2", "order": "ASC",
        }
        answer = self._call("GET", "search/Ticket", params=params) or {}
        for row in answer.get("data") or []:
            if str(row.get("1", "")).endswith(marker(key)):  # contains is a LIKE: check the exact suffix
                return self._ref(row["2"])
        return None

    def create(self, key: str, draft: TicketDraft) -> TicketRef:
        answer = self._call("POST", "Ticket", idempotent=True, json={"input": {  # safe to repeat: see Backend
            "name": f"{draft.title} {marker(key)}", "content": draft.text(), "urgency": URGENCY[draft.severity],
            "type": 1,
        }})
        return self._ref(answer["id"])

    def update(self, ref: TicketRef, draft: TicketDraft) -> None:
        key = self._key_of(ref)
        self._call("PUT", f"Ticket/{ref.id}", json={"input": {"name": f"{draft.title} {marker(key)}",
                                                              "urgency": URGENCY[draft.severity]}})
        self.comment(ref, "Updated description:\n\n" + draft.text())

    def _key_of(self, ref: TicketRef) -> str:
        name = str((self._call("GET", f"Ticket/{ref.id}") or {}).get("name", ""))
        return name[name.rfind("[") + 1:-1] if name.endswith("]") and "[" in name else ""

    def comment(self, ref: TicketRef, text: str) -> None:
        self._call("POST", "ITILFollowup", idempotent=True, json={"input": {"itemtype": "Ticket", "items_id": int(ref.id),
                                                           "content": text}})

    def close(self, ref: TicketRef, text: str) -> None:
        if text:
            self.comment(ref, text)
        self._call("PUT", f"Ticket/{ref.id}", json={"input": {"status": CLOSED}})

    def close_connection(self) -> None:
        if self.session:
            try:
                self.api.request("GET", "killSession", headers={"Session-Token": self.session})
            except Exception:  # closing is best effort: the session expires on its own
                pass
            self.session = None
        self.api.close()
