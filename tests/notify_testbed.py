"""Real receivers on loopback for the notification tests: an SMTP server (aiosmtpd) and an HTTP hook.

The mail server keeps every envelope (recipients, parsed message, attachment names); the hook keeps
every request (path, JSON body). ``Receivers.site`` writes a site file whose ``notify:`` section points
at them, the SOC's hook secret as an environment reference.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.conftest import write_site
from tests.loopback_http import LoopbackServer
from tourniquet.demo.access_log import demo_log, write_sqlite
from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import Slapd, find_free_port


@dataclass
class Mail:
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["subject"])

    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain", "html"))
        return part.get_content() if part is not None else ""

    def attachments(self) -> dict[str, str]:
        return {p.get_filename() or "": p.get_content() if isinstance(p.get_content(), str) else
                p.get_content().decode("utf-8", "replace") for p in self.message.iter_attachments()}


@dataclass
class MailServer:
    mails: list[Mail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.mails.append(Mail(list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[Mail]:
        return [m for m in self.mails if address in m.recipients]


@dataclass
class Hook:
    requests: list[tuple[str, Any]] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        try:
            body: Any = json.loads(request.content)
        except ValueError:
            body = request.content.decode("utf-8", "replace")
        self.requests.append((request.url.path, body))
        return httpx.Response(200, json={})

    def texts(self) -> list[str]:
        return [b.get("title", "") + "\n" + b.get("message", "") if "message" in b else b.get("text", "")
                for _, b in self.requests if isinstance(b, dict)]


SOC_SECRET = "soc-hook-7f3a9c1e5b"
REFERENTS = """establishment,name,email,phone,url
cn=chu-lille*,Mme Referente Lille,referent.lille@chu-lille.example,+33 3 20 00 00 00,
cn=ch-roubaix*,M. Referent Roubaix,referent.roubaix@ch-roubaix.example,,
*,Support régional,support@grades.example,,
"""


@dataclass
class Receivers:
    smtp: MailServer
    smtp_port: int
    hook: Hook
    hook_url: str

    def notify_section(self, folder: Path, *, smtp_port: int | None = None, hook_host: str | None = None) -> dict[str, Any]:
        port = smtp_port or self.smtp_port
        host = hook_host or self.hook_url.split("://", 1)[1]
        referents = folder / "referents.csv"
        referents.write_text(REFERENTS, encoding="utf-8")
        mail = f"mailto://127.0.0.1:{port}?from=tourniquet@grades.example&mode=insecure"
        return {
            "soc": [f"json://{host}/hooks/{{env: TEST_SOC_HOOK}}", f"mmost://{host}/{{env: TEST_SOC_HOOK}}"],
            "dpo": [f"{mail}&to=dpo@grades.example"],
            "practitioner": {"via": "referent", "referents": "referents.csv", "mail": mail,
                             "call": "le support au 03 20 00 00 00"},
            "soc_language": "en",
            "timeout": 5,
        }


@pytest.fixture
def receivers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receivers]:
    monkeypatch.setenv("TEST_SOC_HOOK", SOC_SECRET)
    server = MailServer()
    port = find_free_port()
    controller = Controller(server, hostname="127.0.0.1", port=port)
    controller.start()
    hook = Hook()
    try:
        with LoopbackServer(hook) as http:
            yield Receivers(server, port, hook, http.url)
    finally:
        controller.stop()


def access_log(folder: Path, practitioners: Directory, compromised: list[str]) -> dict[str, Any]:
    """The demo's access log for these practitioners, as the site's audit section."""
    from datetime import datetime, timezone

    path = folder / "access-log.sqlite"
    if not path.exists():
        write_sqlite(demo_log([p.uid for p in practitioners.practitioners], compromised, end=datetime.now(timezone.utc),
                              days=40, attack_days=10, patients=800), path)
    return {"kind": "sqlite", "path": str(path), "account_key": "uid", "columns": {"may_hold_nir": ["query"]}}


def notify_site(tmp_path: Path, slapd: Slapd, practitioners: Directory, receivers: Receivers, compromised: list[str],
                site: dict[str, Any] | None = None, **notify: Any) -> Path:
    """A site whose ``notify:`` points at the receivers (``notify`` overrides it), ``site`` overrides the rest."""
    section = {**receivers.notify_section(tmp_path), **notify}
    return write_site(tmp_path, slapd, practitioners, notify=section,
                      audit=access_log(tmp_path, practitioners, compromised), **(site or {}))


def no_secret_in(*places: Path | str) -> None:
    """The SOC's hook secret, in any form, is in none of these files or texts."""
    forms = {SOC_SECRET, SOC_SECRET.encode().hex(), __import__("base64").b64encode(SOC_SECRET.encode()).decode()}
    for place in places:
        if isinstance(place, Path):
            files = [p for p in place.rglob("*") if p.is_file()] if place.is_dir() else [place]
            for file in files:
                data = file.read_bytes().decode("utf-8", "replace")
                assert not any(f in data for f in forms), f"secret in {file}"
        else:
            assert not any(f in place for f in forms), "secret in text"


__all__ = ["Receivers", "receivers", "notify_site", "no_secret_in", "SOC_SECRET", "Mail", "os"]
