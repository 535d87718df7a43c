"""An incident's life, folded from its journals: state, accounts, approvals, scope, story.

Placeholder filled by the incident record (issue 25, part 3).
"""

from __future__ import annotations

from typing import Any

__all__ = ["incidents_of", "incident_row", "story_lines"]


def incidents_of(sites: list[str | None]) -> list[Any]:
    return []


def incident_row(incident: Any) -> dict[str, Any]:
    return {}


def story_lines(incident: Any) -> list[str]:
    return []
