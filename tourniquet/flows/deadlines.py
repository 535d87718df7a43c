"""The ``deadlines`` flow (hourly): remind the DPO and the SOC of each CNIL filing due soon or late.

At 48 h and 70 h after awareness, for an incident whose scope is frozen and whose CNIL filing is not
recorded, and once more when the 72 h have passed; each reminder once (the journal remembers it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from prefect import flow
from pydantic import Field

from tourniquet.config import load_site
from tourniquet.logs import configure_logging
from tourniquet.site import Site

__all__ = ["deadlines", "remind", "DEADLINES_CRON"]

#: Every hour, a few minutes past (prefect.yaml's ``deadlines`` deployment says the same).
DEADLINES_CRON = "7 * * * *"


def remind(site: str | None = None, now: datetime | None = None) -> list[dict[str, Any]]:
    """Send what is due at ``now`` (default: now); what was sent, per incident, reminder and role."""
    from tourniquet.engine.notices import remind_deadlines

    configure_logging()
    runtime = Site(load_site(site))
    try:
        return remind_deadlines(runtime, now)
    finally:
        runtime.close()


@flow(name="deadlines", log_prints=False)
def deadlines(
    site: Annotated[str | None, Field(description="Site configuration file; empty = $TOURNIQUET_SITE")] = None,
    now: Annotated[datetime | None, Field(description="Check as of this time (default: now)")] = None,
) -> list[dict[str, Any]]:
    """Remind the DPO and the SOC of the Art. 33 filings due (48 h, 70 h) or late."""
    return remind(site, now)
