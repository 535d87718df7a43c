"""One account, one writer: a Prefect global concurrency limit of 1 per account.

Two runs that both want to change ``jdupont`` (two alerts, a responder and a trigger) take
the slot ``tourniquet-account-jdupont`` in turn around each changing call; the second waits
(up to its step's timeout, then reports the calls as failed) and never interleaves. The limit
is created on first use; Prefect ignores a limit that does not exist, so creating it is part
of taking it (``strict=True`` then makes a missing limit an error rather than no lock at all).

A slot costs an acquire and a release round trip (≈0.2 s on a SQLite server), so the executor
takes the slots of a whole for_each batch in one acquisition (:func:`account_locks`): Prefect
acquires several limits all or nothing, so two runs wanting overlapping batches cannot deadlock.
Limit: a call that outlives its step's timeout keeps running in its thread (Prefect cannot
interrupt it) after the slot is released; each connector's own network timeout bounds that.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

from tourniquet.errors import TransientError

__all__ = ["account_lock", "account_locks", "lock_name"]

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
def account_locks(accounts: list[str], timeout_seconds: float | None = None) -> Iterator[None]:
    """Hold every listed account's slot while the body runs (acquired together, all or nothing)."""
    from prefect.concurrency.sync import concurrency

    names = sorted({lock_name(account) for account in accounts})
    if not names:
        yield
        return
    for name in names:
        _ensure_limit(name)
    acquired = False
    try:
        # A failed lease renewal must not abort a change half-way: the change is journaled either way.
        with concurrency(names, occupy=1, timeout_seconds=timeout_seconds, strict=True,
                         raise_on_lease_renewal_failure=False):
            acquired = True
            log.debug("account.locks_acquired", accounts=sorted(accounts))
            yield
    except TimeoutError as exc:
        if acquired:
            raise
        raise TransientError(
            f"{', '.join(sorted(accounts))}: being changed by another run; gave up waiting after {timeout_seconds:g}s",
            system="prefect",
        ) from exc


@contextmanager
def account_lock(account: str, timeout_seconds: float | None = None) -> Iterator[None]:
    """One account's slot (see :func:`account_locks`)."""
    with account_locks([account], timeout_seconds):
        yield
