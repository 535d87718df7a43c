"""PLACEHOLDER (prefect branch): the real ``hygiene`` flow comes with the hygiene issue.

It exists here only so that ``prefect.yaml`` deploys on this branch; the lead keeps the
hygiene branch's version of this file at merge.
"""

from __future__ import annotations

from typing import Any

from prefect import flow


@flow(name="hygiene", log_prints=False)
def hygiene(site: str | None = None) -> dict[str, Any]:
    """Daily account hygiene (placeholder: does nothing yet).

    Args:
        site: Site configuration file; empty = $TOURNIQUET_SITE
    """
    return {"status": "placeholder", "site": site}
