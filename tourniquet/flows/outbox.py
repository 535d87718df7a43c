"""The ``deliver-outbox`` flow: deliver ticket writes and notifications that waited while their system was down.

Runs on a schedule (or by hand) as well as implicitly at the next ticket step of any run;
delivery is in order per incident and stops for an incident at the first write that still
cannot be delivered. Each write is delivered once: the ledger remembers delivered op ids.
"""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow
from pydantic import Field

from tourniquet.config import load_site
from tourniquet.logs import configure_logging
from tourniquet.site import Site

__all__ = ["deliver_outbox", "deliver_pending"]


def deliver_pending(site: str | None = None) -> dict[str, int]:
    """Deliver every pending ticket write of the site; return how many were delivered and how many wait."""
    configure_logging()
    from tourniquet.engine.notices import deliver_notifications

    runtime = Site(load_site(site))
    try:
        report: dict[str, int] = runtime.tickets.deliver()
        notified = deliver_notifications(runtime) if runtime.notify.outbox.keys() else {}
        if notified:
            report = {**report, "notifications_delivered": notified["delivered"],
                      "notifications_pending": notified["pending"]}
        return report
    finally:
        runtime.close()


@flow(name="deliver-outbox", log_prints=False)
def deliver_outbox(
    site: Annotated[str | None, Field(description="Site configuration file; empty = $TOURNIQUET_SITE")] = None,
) -> dict[str, Any]:
    """Deliver the ticket writes that waited in the outbox, in order, per incident."""
    return deliver_pending(site)
