"""Notifications: the SOC, the DPO and the practitioner's referent, told through Apprise.

``config`` is the site's ``notify:`` section (channels by role, secrets as references), ``channels``
sends one message to one channel (Apprise, a Prefect notification block, or a folder on disk), with a
timeout, ``referents`` finds who tells a practitioner, and ``client`` is the :class:`Notifier` that
journals each message and keeps what a channel did not take in the ``notify`` outbox.

May import: ``tourniquet.errors``, ``secrets``, ``outbox``, ``journal``, ``untrusted``. Imported by:
``config``, ``site``, ``notices``, ``actions.notify``, the outbox and deadlines flows and CLI.
"""

from __future__ import annotations

from pathlib import Path

from tourniquet.connectors.notify.channels import FOLDER_SCHEME, NotificationFailed, deliver, resolve_url
from tourniquet.connectors.notify.client import Message, Notifier, SendReport, Target
from tourniquet.connectors.notify.config import ROLES, ChannelRef, NotifyConfig, PractitionerRoute
from tourniquet.connectors.notify.referents import Referent, Referents

__all__ = [
    "NotifyConfig", "ChannelRef", "PractitionerRoute", "ROLES", "Message", "Target", "Notifier", "SendReport",
    "NotificationFailed", "deliver", "resolve_url", "FOLDER_SCHEME", "Referent", "Referents", "connect",
]


def connect(config: NotifyConfig | None, *, state_dir: Path | None, transport: object = None) -> Notifier:
    """The site's notifier (``Site.notify`` calls this lazily); no ``notify:`` section: nobody is told."""
    return Notifier(config, state_dir=state_dir)
