"""The incident's story as one Prefect artifact per incident, and the links a run and its ticket share.

``tourniquet-<incident>-story`` is written again (a new version of the same key) by every flow run
that touches the incident — the plan, the containment, each recovery, the undo — from the same fold
as ``tourniquet incidents show`` (:mod:`tourniquet.lifecycle`). :func:`run_links` gives the engine
the Prefect UI address of this run and of the story, which the playbooks put on the ticket.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from tourniquet.lifecycle import incident_of, story_markdown
from tourniquet.regional import slug
from tourniquet.secrets import mask

__all__ = ["story_key", "ui_url", "run_links", "publish_story"]

log = structlog.get_logger("tourniquet")


def story_key(incident: str) -> str:
    return slug(f"tourniquet-{incident}-story")


def ui_url() -> str:
    """The Prefect UI's address as the server's users reach it (``PREFECT_UI_URL``, else derived from the API's)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    url = PREFECT_UI_URL.value() or ""
    if not url:
        api = PREFECT_API_URL.value() or ""
        url = api.removesuffix("/").removesuffix("/api") if api else ""
    return str(url).rstrip("/")


def run_links(incident: str, flow_run_id: str) -> dict[str, str]:
    """``run_url`` (this flow run's page) and ``story_url`` (the incident's story artifact), or nothing."""
    base = ui_url()
    if not base or not flow_run_id:
        return {}
    return {"run_url": f"{base}/runs/flow-run/{flow_run_id}", "story_url": f"{base}/artifacts/key/{story_key(incident)}"}


def publish_story(incident: str, sites: Iterable[str | None], links: dict[str, str] | None = None) -> None:
    """Write the story artifact again from the journals; never fails the run that calls it."""
    from prefect.artifacts import create_markdown_artifact

    try:
        found = incident_of(incident, list(sites))
        if found is None:
            return
        shown = dict(links or {})
        if found.ticket and found.ticket.startswith(("http://", "https://")):
            shown.setdefault("ticket", found.ticket)
        create_markdown_artifact(mask(story_markdown(found, shown)), key=story_key(incident),
                                 description=mask(f"Incident {incident}: {found.state}"))
    except Exception as exc:  # the story is a view: the containment must not fail over it
        log.warning("story.not_published", incident=incident, error=str(exc))
