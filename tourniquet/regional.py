"""Which region the current thread works for, when one incident runs across several sites.

Three regions contain the same incident at once, in threads of one process: their Prefect
artifacts would share keys (``tourniquet-<incident>-report``) and overwrite each other, and their
log lines would interleave without saying whose they are. Inside :func:`working_for` both carry
the region's name. Outside it (a run on one site) nothing changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import structlog

__all__ = ["working_for", "current_region", "artifact_key", "slug"]

_REGION: ContextVar[str] = ContextVar("tourniquet_region", default="")


def slug(text: str) -> str:
    """Lowercase letters, digits and single dashes: what Prefect allows in an artifact key."""
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]+", "-", text.lower())).strip("-")


def current_region() -> str:
    """The region this thread works for ("" outside a run across several sites)."""
    return _REGION.get()


@contextmanager
def working_for(region: str) -> Iterator[None]:
    """Artifact keys and log lines in this block (and the threads it starts with its context) name ``region``."""
    token = _REGION.set(region)
    try:
        with structlog.contextvars.bound_contextvars(region=region):
            yield
    finally:
        _REGION.reset(token)


def artifact_key(incident: str, suffix: str) -> str:
    """``tourniquet-<incident>-<suffix>``, with the region before the suffix inside :func:`working_for`."""
    region = current_region()
    return slug(f"tourniquet-{incident}-{region}-{suffix}" if region else f"tourniquet-{incident}-{suffix}")
