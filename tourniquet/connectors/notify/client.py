"""Send a message to a role, journal it, and keep it in the outbox when a channel does not take it.

Why an outbox: a notification must never stop or slow a containment. Each channel gets one try
with a timeout; a message a channel did not take is written to the ``notify`` outbox (the channel's
reference, never its URL) and delivered by ``tourniquet outbox --deliver`` or at the next run.

Each message, sent or queued, is one ``notification`` record in the incident's journal: role,
kind, channel (described, never the URL), time, status and the SHA-256 of subject and body. The
body itself is journaled only when it names nobody (a plan awaiting approval, a reminder).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from tourniquet.connectors.notify.channels import NotificationFailed, deliver
from tourniquet.connectors.notify.config import ChannelRef, NotifyConfig
from tourniquet.connectors.notify.referents import Referents
from tourniquet.errors import ConfigError
from tourniquet.journal import Journal
from tourniquet.outbox import Outbox
from tourniquet.secrets import mask

__all__ = ["Message", "Target", "Notifier", "SendReport"]

log = structlog.get_logger("tourniquet")
STREAM = "notify"
#: How a chat shows each kind of message (Apprise's notify types: colours, icons).
LEVELS = {"contained": "success", "recovered": "success", "partially-contained": "warning", "failed": "failure",
          "region-down": "failure", "reminder-late": "failure", "reminder-70h": "warning", "approval-needed": "warning"}


@dataclass(frozen=True)
class Target:
    """One channel and, for a person reached by e-mail, their address (added to the URL as ``to=``)."""

    channel: ChannelRef
    to: str = ""
    label: str = ""

    def describe(self) -> str:
        return self.label or self.channel.describe()

    def as_dict(self) -> dict[str, Any]:
        return {"channel": self.channel.model_dump(mode="json", exclude_none=True), "to": self.to,
                "label": self.label}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Target":
        return cls(ChannelRef.model_validate(data["channel"]), str(data.get("to", "")), str(data.get("label", "")))


@dataclass(frozen=True)
class Message:
    """What one role is told about one incident; ``personal``: it names people (then only its hash is journaled)."""

    role: str
    kind: str
    incident: str
    subject: str
    body: str
    attachments: tuple[str, ...] = ()
    personal: bool = True
    #: Who it is for when that is not the whole role (a practitioner's referent): a label, no address.
    recipient: str = ""
    #: Where to send it when the role's channels are not the answer (a referent's address).
    targets: tuple[Target, ...] = ()
    #: Sent once per incident under this key (a reminder); empty: every time it is asked for.
    once: str = ""

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"{self.subject}\n\n{self.body}".encode("utf-8", "surrogatepass")).hexdigest()

    def as_dict(self) -> dict[str, Any]:
        return {"role": self.role, "kind": self.kind, "incident": self.incident, "subject": self.subject,
                "body": self.body, "attachments": list(self.attachments), "personal": self.personal,
                "recipient": self.recipient, "once": self.once}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Message":
        return cls(role=data["role"], kind=data["kind"], incident=data["incident"], subject=data["subject"],
                   body=data["body"], attachments=tuple(data.get("attachments", ())),
                   personal=bool(data.get("personal", True)), recipient=data.get("recipient", ""),
                   once=data.get("once", ""))


@dataclass
class SendReport:
    """What became of one message: per channel, sent, queued (in the outbox) or planned (a dry run)."""

    message: Message
    sent: list[str] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.queued:
            return "queued"
        if self.planned:
            return "planned"
        return "sent" if self.sent else "no channel"


class Notifier:
    """The site's notifications: its channels by role, its outbox, its referents."""

    def __init__(self, config: NotifyConfig | None, *, state_dir: Path | None) -> None:
        self.config = config or NotifyConfig()
        self.outbox = Outbox(Path(state_dir or "var"), STREAM)
        route = self.config.practitioner
        self.referents = Referents.read(route.referents) if route is not None and route.referents else None
        #: Channels that did not take a message in this run: later ones go straight to the outbox, so a
        #: channel that is down costs one timeout per run, not one per message.
        self.down: dict[str, str] = {}

    @property
    def configured(self) -> bool:
        return bool(self.config.soc or self.config.dpo or self.config.practitioner)

    def targets(self, message: Message) -> list[Target]:
        return list(message.targets) or [Target(c) for c in self.config.channels(message.role)]

    def already_sent(self, journal: Journal, message: Message) -> bool:
        """A message sent once per incident (a reminder) that was sent or queued already."""
        return bool(message.once) and any(
            r.get("type") == "notification" and r.get("once") == message.once and r.get("role") == message.role
            and r.get("status") in ("sent", "queued") for r in journal.kept("notification"))

    def send(self, message: Message, journal: Journal, *, dry_run: bool = False) -> SendReport:
        """Each channel once, with the site's timeout; what fails waits in the outbox. Never raises."""
        report = SendReport(message)
        if self.already_sent(journal, message):
            return report
        targets = self.targets(message)
        if not targets and not self.configured:
            return report  # the site tells nobody: nothing to journal
        for target in targets:
            if dry_run:
                report.planned.append(target.describe())
                self._journal(journal, message, target, "planned")
                continue
            try:
                if target.channel.describe() in self.down:
                    raise NotificationFailed(f"down earlier in this run: {self.down[target.channel.describe()]}",
                                             system=target.channel.describe())
                self._deliver(message, target)
            except (NotificationFailed, ConfigError) as exc:
                error = mask(str(exc))
                self.down.setdefault(target.channel.describe(), error)
                report.errors.append(error)
                report.queued.append(target.describe())
                with self.outbox.lock(message.incident):
                    self.outbox.append(message.incident, "notify", {"message": message.as_dict(),
                                                                    "target": target.as_dict()}, reason=error)
                self._journal(journal, message, target, "queued", error=error)
                log.warning("notify.queued", role=message.role, kind=message.kind, channel=target.describe(),
                            error=error)
                continue
            report.sent.append(target.describe())
            self._journal(journal, message, target, "sent")
            log.info("notify.sent", role=message.role, kind=message.kind, channel=target.describe())
        if not targets:
            self._journal(journal, message, None, "no channel")
        return report

    def _deliver(self, message: Message, target: Target) -> None:
        deliver(target.channel, subject=message.subject, body=message.body, attachments=list(message.attachments),
                timeout=self.config.timeout, add={"to": target.to} if target.to else None,
                level=LEVELS.get(message.kind, "info"))

    def _journal(self, journal: Journal, message: Message, target: Target | None, status: str, *,
                 error: str = "", delivered_from_outbox: bool = False) -> None:
        shown = {} if message.personal else {"subject": message.subject, "body": message.body}
        journal.write("notification", role=message.role, kind=message.kind, once=message.once,
                      recipient=message.recipient, channel=target.describe() if target else "",
                      status=status, digest=message.digest, attachments=len(message.attachments),
                      error=error, **({"from_outbox": True} if delivered_from_outbox else {}), **shown)

    def deliver_pending(self, journal_for: Callable[[str], Journal]) -> dict[str, int]:
        """Deliver what waits, in order per incident; stop an incident's queue at its first failure."""
        delivered = 0
        for key in self.outbox.keys():
            with self.outbox.lock(key):
                for entry in self.outbox.pending(key):
                    message = Message.from_dict(entry.payload["message"])
                    target = Target.from_dict(entry.payload["target"])
                    if target.channel.describe() in self.down:
                        break  # it did not answer a moment ago: one timeout per channel, not one per message
                    try:
                        self._deliver(message, target)
                    except (NotificationFailed, ConfigError) as exc:
                        self.down.setdefault(target.channel.describe(), mask(str(exc)))
                        log.warning("notify.still_waiting", incident=key, channel=target.describe(),
                                    error=mask(str(exc)))
                        break
                    self._journal(journal_for(key), message, target, "sent", delivered_from_outbox=True)
                    self.outbox.remove(entry)
                    delivered += 1
        return {"delivered": delivered, "pending": self.outbox.count()}
