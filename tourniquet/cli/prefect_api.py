"""Which Prefect server a command talks to, how long a temporary one took, and nothing left in flight at exit.

``tourniquet run`` uses, in this order: ``PREFECT_API_URL`` (the environment or the Prefect profile),
the site's long-lived local server (``tourniquet server start``), or a temporary server it starts
itself — timed, so that the summary can say what the start cost (12–30 s) and how to avoid it.

Before the command prints its summary, :func:`drain_prefect_queues` waits until the run's events and
logs have reached the server: otherwise Prefect's exit handler sends them after the summary and
warns "EventsWorker - Still processing items" under it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

__all__ = ["PrefectServer", "find_server", "drain_prefect_queues", "STILL_PROCESSING"]

#: What Prefect's queue services say when they stop with items left (a progress note, not a loss).
STILL_PROCESSING = "Still processing items"


@dataclass
class PrefectServer:
    """Where the run's API is: ``configured`` (PREFECT_API_URL), ``local`` (the site's) or ``temporary``."""

    kind: str
    url: str = ""
    started_in: float | None = None

    def start(self, timeout: int = 120) -> None:
        """Start the temporary server now (Prefect would on first use) and time it; others: nothing to do."""
        if self.kind != "temporary" or self.started_in is not None:
            return
        from prefect.server.api.server import SubprocessASGIServer

        began = time.monotonic()
        server = SubprocessASGIServer()  # the same instance Prefect's clients use when no URL is set
        server.start(timeout=timeout)
        self.started_in = time.monotonic() - began
        self.url = server.api_url

    def describe(self) -> str:
        """One line for the summary."""
        if self.kind == "temporary":
            took = f"started in {self.started_in:.1f} s" if self.started_in is not None else "started"
            return f"  prefect: a temporary server, {took} (`tourniquet server start` keeps one running)"
        origin = "the site's local server" if self.kind == "local" else "PREFECT_API_URL"
        return f"  prefect: {self.url} ({origin})"


def find_server(site: str | None) -> PrefectServer:
    """The server a run of ``site`` should use; a ``local`` one is exported as ``PREFECT_API_URL``."""
    configured = os.environ.get("PREFECT_API_URL") or _profile_url()
    if configured:
        return PrefectServer("configured", configured)
    from tourniquet.config import load_site
    from tourniquet.flows import local_server

    url = local_server.find(load_site(site).state_dir)
    if url:
        os.environ["PREFECT_API_URL"] = url
        return PrefectServer("local", url)
    # The throwaway server shares this terminal; when it stops, its services log the work they
    # were cancelled in (tracebacks) after the command's own output. Its clients still see
    # every real error as an API error, so its own log lines are noise here.
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
    return PrefectServer("temporary")


def _profile_url() -> str:
    try:
        from prefect.settings import PREFECT_API_URL

        return str(PREFECT_API_URL.value() or "")
    except Exception:  # a broken profile: Prefect itself will say so when the run starts
        return ""


class _NoQueueNotes(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return STILL_PROCESSING not in record.getMessage()


def drain_prefect_queues(timeout: float = 60.0) -> bool:
    """Wait (at most ``timeout``) until the events and logs queued by the run have been sent; True if they were.

    Waiting *before* Prefect drains its queue services keeps them from stopping with items left; the
    filter keeps their "Still processing items" note off the terminal should a late item remain.
    """
    for name in ("EventsWorker", "APILogWorker"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoQueueNotes) for f in logger.filters):
            logger.addFilter(_NoQueueNotes())
    try:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogHandler

        APILogHandler().flush()
        worker = EventsWorker.instance()
    except Exception:  # nothing to wait for: Prefect will say what is wrong, if anything is
        return False
    emptied = threading.Event()

    def wait() -> None:
        worker.wait_until_empty()
        emptied.set()

    threading.Thread(target=wait, name="tourniquet-drain-events", daemon=True).start()
    return emptied.wait(timeout)
