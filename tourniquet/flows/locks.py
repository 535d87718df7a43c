"""One account, one writer: a Prefect global concurrency limit of 1 per account.

Two runs that both want to change ``jdupont`` (two alerts, a responder and a trigger) take
the slot ``tourniquet-account-jdupont`` in turn around each changing call; the second waits
(up to its step's timeout, then reports the call as failed) and never interleaves. The limit
is created on first use; Prefect ignores a limit that does not exist, so creating it is part
of taking it (``strict=True`` then makes a missing limit an error rather than no lock at all).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

from tourniquet.errors import TransientError

__all__ = ["account_lock", "lock_name"]

log = structlog.get_logger("tourniquet")

_SAFE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,80}$")
_created: set[str] = set()
_created_guard = threading.Lock()


def lock_name(account: str) -> str:
    """``tourniquet-account-<uid>``; odd characters (a DN, an e-mail) get a stable digest instead."""
    key = account.strip().lower()
    if not _SAFE.match(key):
        key = "h-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return f"tourniquet-account-{key}"


def _ensure_limit(name: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    from prefect.settings import PREFECT_API_URL

    cache_key = f"{PREFECT_API_URL.value()}|{name}"
    with _created_guard:
        if cache_key in _created:
            return
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
            except ObjectAlreadyExists:
                pass  # another run created it between our read and our create
    with _created_guard:
        _created.add(cache_key)


@contextmanager
def account_lock(account: str, timeout_seconds: float | None = None) -> Iterator[None]:
    """Hold the account's slot while the body runs; wait for it at most ``timeout_seconds``."""
    from prefect.concurrency.sync import concurrency

    name = lock_name(account)
    _ensure_limit(name)
    acquired = False
    try:
        with concurrency(name, occupy=1, timeout_seconds=timeout_seconds, strict=True):
            acquired = True
            log.debug("account.lock_acquired", account=account, limit=name)
            yield
    except TimeoutError as exc:
        if acquired:
            raise
        raise TransientError(
            f"{account} is being changed by another run; gave up waiting after {timeout_seconds:g}s",
            system="prefect",
        ) from exc
