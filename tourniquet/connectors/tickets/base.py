"""Ticket models every backend shares: the site's ticket settings, a draft, a reference, the backend interface.

Imported by the backends and by the client; imports nothing from them (no circle).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal, Protocol

import structlog
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tourniquet.connectors._http import HttpSettings, plaintext_problem
from tourniquet.errors import PermanentError
from tourniquet.secrets import SecretRef

__all__ = ["digest", "TicketsConfig", "TicketDraft", "TicketRef", "Backend", "Severity", "SEVERITIES", "check_key"]

log = structlog.get_logger("tourniquet")


def digest(value: Any) -> str:
    """A short, stable fingerprint of a JSON value (what a ticket or comment held when it was delivered)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


class TicketsConfig(BaseModel):
    """Which ticket system the site uses, and how to reach it."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["file", "rt", "glpi", "jira", "thehive"] = Field("file", description="Which ticket system.")
    path: str = Field("var/tickets", description="file: folder holding one Markdown + JSON file per ticket.")
    url: str | None = Field(None, description="Base URL: RT with its web path (…/rt), GLPI up to apirest.php, "
                                                "Jira site, TheHive.")
    user: str | None = Field(None, description="RT user (Basic auth) or Jira Cloud account e-mail.")
    password: SecretRef | None = Field(None, description="RT password (Basic auth).")
    token: SecretRef | None = Field(None, description="RT auth token, GLPI user token, Jira API token / PAT, "
                                                      "TheHive API key.")
    app_token: SecretRef | None = Field(None, description="GLPI App-Token.")
    queue: str = Field("General", description="rt: queue of incident tickets.")
    custom_field: str = Field("IncidentKey", description="rt: ticket custom field holding the incident key.")
    project: str | None = Field(None, description="jira: project key.")
    issue_type: str = Field("Task", description="jira: issue type name.")
    deployment: Literal["cloud", "datacenter"] = Field(
        "cloud", description="jira: Cloud searches /rest/api/3/search/jql, Data Center /rest/api/2/search."
    )
    label_prefix: str = Field("tourniquet-", description="jira: the key label is this prefix + the incident key.")
    timeout: float = Field(10.0, gt=0, description="Seconds for each read/write of a request.")
    connect_timeout: float = Field(5.0, gt=0, description="Seconds to connect.")
    verify_certificates: bool = Field(True, description="Check the ticket system's TLS certificate (keep it on).")
    ca_file: str | None = Field(None, description="CA bundle for HTTPS (default: the system's).")
    allow_plaintext: bool = Field(
        False, description="Allow http:// to a host that is not loopback (the token or password travels in clear). "
        "Test systems only.")
    outbox: bool = Field(True, description="Queue writes while the system is down (false: fail the step).")

    @model_validator(mode="after")
    def _complete(self) -> "TicketsConfig":
        needed: dict[str, tuple[str, ...]] = {
            "rt": ("url",), "glpi": ("url", "token"), "jira": ("url", "token", "project"), "thehive": ("url", "token"),
        }
        missing = [name for name in needed.get(self.kind, ()) if not getattr(self, name)]
        if missing:
            raise ValueError(f"tickets kind {self.kind} needs {', '.join(missing)}")
        if self.kind == "rt" and not (self.token or (self.user and self.password)):
            raise ValueError("tickets kind rt needs token, or user and password")
        problem = self.url and self.kind != "file" and plaintext_problem(
            self.url, allow_plaintext=self.allow_plaintext, section="tickets")
        if problem:
            raise ValueError(problem)
        return self

    def http_settings(self) -> HttpSettings:
        return HttpSettings("tickets", timeout=self.timeout, connect_timeout=self.connect_timeout,
                            verify_certificates=self.verify_certificates, ca_file=self.ca_file,
                            allow_plaintext=self.allow_plaintext)


class TicketDraft(BaseModel):
    """What the ticket says. The incident key is not part of it: it is passed alongside."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=250)
    body: str = ""
    severity: Severity = "high"
    labels: list[str] = Field(default_factory=list)
    links: dict[str, str] = Field(default_factory=dict, description="name → URL or path (evidence, journal …)")

    def fingerprint(self) -> str:
        return digest(self.model_dump(mode="json"))

    def text(self) -> str:
        """The body as plain text, with the labels and links every backend can carry."""
        parts = [self.body.rstrip()] if self.body.strip() else []
        if self.links:
            parts.append("Evidence:\n" + "\n".join(f"- {name}: {target}" for name, target in self.links.items()))
        if self.labels:
            parts.append("Labels: " + ", ".join(self.labels))
        return "\n\n".join(parts) or self.title


class TicketRef(BaseModel):
    """A ticket as the system names it."""

    id: str
    url: str | None = None


class Backend(Protocol):
    """One ticket system. Errors: TransientError (down, 5xx), PermanentError (auth, refused), NotFound.

    Creating and commenting are sent as *safe to repeat* (retried, and queued in the outbox after a
    timeout or a 5xx): a repeated create is found first by its incident key (``find_open``), and a
    repeated comment at worst shows twice on the ticket — while a comment lost after a timeout may be
    a seal's root hash, the anchor evidence verification looks for.
    """

    system: str

    def find_open(self, key: str) -> TicketRef | None: ...
    def create(self, key: str, draft: TicketDraft) -> TicketRef: ...
    def update(self, ref: TicketRef, draft: TicketDraft) -> None: ...
    def comment(self, ref: TicketRef, text: str) -> None: ...
    def close(self, ref: TicketRef, text: str) -> None: ...
    def close_connection(self) -> None: ...


def check_key(key: str) -> str:
    """Incident keys go into TicketSQL, JQL and search criteria: allow only a safe alphabet."""
    if not _KEY.match(key):
        raise PermanentError(f"incident key {key!r} must match {_KEY.pattern}", system="tickets")
    return key


