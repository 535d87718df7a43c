"""PLACEHOLDER (prefect branch): the real ``reinstate`` flow comes with its own issue.

It exists here only so that ``prefect.yaml`` deploys on this branch; the lead keeps the
other branch's version of this file at merge.
"""

from __future__ import annotations

from typing import Any

from prefect import flow


@flow(name="reinstate", log_prints=False)
def reinstate(incident: str, site: str | None = None) -> dict[str, Any]:
    """Give contained accounts back after an incident (placeholder: does nothing yet).

    Args:
        incident: Incident id whose accounts are given back
        site: Site configuration file; empty = $TOURNIQUET_SITE
    """
    return {"status": "placeholder", "incident": incident, "site": site}
