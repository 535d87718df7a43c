"""Deliver one message to one channel through Apprise (or a Prefect notification block), with a timeout.

The URL with its secrets filled in is built here, for the moment of sending, and every secret in it
(each reference's value) is registered for masking first: an error Apprise reports about it (or a log line it writes) comes
out masked. Apprise's own logger is kept quiet; what it said about a failure is read from its
result and put, masked and short, in the :class:`NotificationFailed` raised.

``folder://PATH`` is a channel of our own, for the demo and for sites that want a copy on disk: each
message becomes one text file in ``PATH`` (its attachments listed, not copied).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from tourniquet.connectors.notify.config import PLACEHOLDER, ChannelRef
from tourniquet.errors import ConfigError, TransientError
from tourniquet.secrets import SecretRef, mask

__all__ = ["NotificationFailed", "resolve_url", "deliver", "FOLDER_SCHEME"]

FOLDER_SCHEME = "folder"
logging.getLogger("apprise").propagate = False  # its lines may hold a URL: we read its result instead
logging.getLogger("apprise").addHandler(logging.NullHandler())


class NotificationFailed(TransientError):
    """A channel did not take the message (down, refused, timed out): it waits in the outbox."""


def _placeholder(match: re.Match[str]) -> str:
    kind, value = match.group(1), match.group(2)
    reference = SecretRef.model_validate({"prefect_secret" if kind == "secret" else kind: value})
    return quote(reference.get(), safe="")


def resolve_url(channel: ChannelRef, *, add: dict[str, str] | None = None) -> str:
    """The channel's URL with its secrets read now (and registered for masking); ``add``: query values."""
    if channel.secret is not None:
        url = channel.secret.get()  # the whole URL is the secret (registered by get)
    else:
        # Only the referenced parts are secret (each registered by get, in every form it may take, the
        # URL-encoded one too): registering the whole URL would mask its public scheme and host as well.
        url = PLACEHOLDER.sub(_placeholder, channel.url or "")
    if add:
        extra = "&".join(f"{k}={quote(v, safe='@')}" for k, v in add.items())
        url += ("&" if "?" in url else "?") + extra
    return url


def deliver(channel: ChannelRef, *, subject: str, body: str, attachments: list[str], timeout: float,
            add: dict[str, str] | None = None, level: str = "info") -> None:
    """Send, or raise :class:`NotificationFailed` (or :class:`ConfigError` for a channel that cannot work)."""
    files = [a for a in attachments if Path(a).is_file()] if channel.attachments else []
    if not channel.attachments and attachments:
        body += "\n\n" + "\n".join(f"- {a}" for a in attachments)
    if channel.prefect_block:
        _by_block(channel, subject, body, timeout)
        return
    url = resolve_url(channel, add=add)
    if url.split("://", 1)[0] == FOLDER_SCHEME:
        _to_folder(url, subject, body, attachments)
        return
    import apprise

    sender = apprise.Apprise(asset=apprise.AppriseAsset(storage_mode="memory"))
    if not sender.add(url):
        raise ConfigError(f"notification channel {channel.describe()}: Apprise does not accept this URL")
    attach = apprise.AppriseAttachment(list[Any](files)) if files else None
    try:
        result = sender.notify(body=body, title=subject, attach=attach, timeout=timeout,
                               notify_type=level if level in ("info", "success", "warning", "failure") else "info")
    except Exception as exc:  # a plugin's own error: the channel did not take the message
        raise NotificationFailed(mask(f"{type(exc).__name__}: {exc}")[:300], system=channel.describe()) from None
    if not result:
        raise NotificationFailed(_why(result), system=channel.describe())


def _why(result: Any) -> str:
    """What Apprise said about the failure, masked, in one short line."""
    said = []
    try:
        for entry in result.logs():
            text = str(getattr(entry, "message", entry))
            level = logging.getLevelNamesMapping().get(str(getattr(entry, "level", "WARNING")), logging.WARNING)
            if text and level >= logging.WARNING:
                said.append(text)
    except Exception:  # the wording is a courtesy; the failure stands without it
        pass
    status = getattr(getattr(result, "status", None), "name", "FAILURE").lower()
    line = "; ".join(said[-2:]) if said else "not delivered"
    return mask(f"{status}: {line}")[:300]


def _by_block(channel: ChannelRef, subject: str, body: str, timeout: float) -> None:
    """Through a Prefect notification block (it holds its own secrets), in a thread bounded by ``timeout``."""
    outcome: dict[str, BaseException | None] = {}

    def send() -> None:
        try:
            from prefect.blocks.abstract import NotificationBlock
            from prefect.blocks.core import Block

            block = Block.load(channel.prefect_block or "")
            if not isinstance(block, NotificationBlock):
                raise ConfigError(f"Prefect block {channel.prefect_block!r} is not a notification block")
            sent = block.notify(body=body, subject=subject)
            if inspect.isawaitable(sent):  # called where an event loop runs: this thread has none of its own
                asyncio.run(_awaited(sent))
            outcome["error"] = None
        except BaseException as exc:  # reported below, translated
            outcome["error"] = exc

    worker = threading.Thread(target=send, name="notify-block", daemon=True)
    worker.start()
    worker.join(timeout)
    if "error" not in outcome:
        raise NotificationFailed(f"no answer within {timeout:g} s", system=channel.describe())
    error = outcome["error"]
    if isinstance(error, ConfigError):
        raise error
    if error is not None:
        raise NotificationFailed(mask(f"{type(error).__name__}: {error}")[:300], system=channel.describe())


async def _awaited(value: Any) -> None:
    await value


def _to_folder(url: str, subject: str, body: str, attachments: list[str]) -> None:
    """One text file per message in the folder the URL names (``folder:///abs/path``)."""
    folder = Path(unquote(url.split("://", 1)[1].split("?", 1)[0]))
    if not folder.is_absolute():
        raise ConfigError(f"folder channel {folder}: the path must be absolute (folder:///path)")
    recipient = unquote(url.split("to=", 1)[1].split("&", 1)[0]) if "to=" in url else ""
    now = datetime.now(timezone.utc)
    lines = [f"Date: {now.isoformat(timespec='seconds')}"] + ([f"To: {recipient}"] if recipient else []) + \
            [f"Subject: {subject}", ""] + [body] + (["", "Attached:"] + [f"- {a}" for a in attachments]
                                                    if attachments else [])
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{now:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:6]}.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    except OSError as exc:
        raise NotificationFailed(f"cannot write {folder}: {exc.strerror or exc}", system="folder") from None
