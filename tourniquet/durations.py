"""Durations (``-30d``, ``12h``) and instants (ISO, or relative to now) as playbooks and sites write them."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from tourniquet.errors import ExpressionError

__all__ = ["parse_duration", "resolve_instant", "utc_now"]

_DURATION = re.compile(r"^\s*([+-]?)\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``-30d``, ``12h``, ``+2w`` → a signed timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise ExpressionError(f"{text!r} is not a duration (expected e.g. -30d, 12h, 15m)")
    sign, amount, unit = match.groups()
    delta = timedelta(**{_UNITS[unit]: int(amount)})
    return -delta if sign == "-" else delta


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def resolve_instant(value: str | datetime, *, now: datetime | None = None) -> datetime:
    """An absolute ISO time, or a duration relative to now (``-30d``); always timezone-aware."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if _DURATION.match(value):
        return (now or utc_now()) + parse_duration(value)
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ExpressionError(
            f"{value!r} is neither an ISO date-time nor a relative duration like -30d"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
