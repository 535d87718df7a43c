"""The responder's form and the alert's parameters, read forgivingly; what a run is called and tagged.

The ``respond`` form takes the accounts as a list *or* one block of text (one per line, or
separated by commas, semicolons or spaces: what a responder pastes from an alert or a mail).
An alert's trigger passes them as JSON text (``prefect.yaml``), so that a malformed alert —
accounts missing, ``null``, an object — still starts a run, which fails saying what was wrong,
instead of being dropped by the server's parameter check without a word.

Run names say which incident and whether anything changes: ``inc-20261201-624586d0-contain``,
``inc-20261201-624586d0-DRY-RUN``; tags ``dry-run`` / ``live`` filter the runs list.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["AccountsError", "parse_accounts", "run_name", "mode_tag", "DRY_RUN_TAG", "LIVE_TAG"]

DRY_RUN_TAG = "dry-run"
LIVE_TAG = "live"
_SEPARATORS = re.compile(r"[\s,;]+")
_EXPECTED = "a list of uid, RPPS number or e-mail, or one block of text with one per line (or separated by commas)"


class AccountsError(ValueError):
    """The accounts given cannot be read as account ids; the message says what was given."""


def parse_accounts(value: Any) -> list[str]:
    """A list, a block of text, or the JSON text an alert trigger renders → ids, in order, once each."""
    if isinstance(value, str):
        value = _decoded(value)
    if value is None:
        raise AccountsError(f"no accounts were given (expected {_EXPECTED})")
    if isinstance(value, bool) or not isinstance(value, (str, int, list, tuple)):
        raise AccountsError(f"accounts must be {_EXPECTED}, not {_kind(value)}: {_excerpt(value)}")
    items = [value] if isinstance(value, (str, int)) else list(value)
    ids: list[str] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise AccountsError(f"each account must be an id (text), not {_kind(item)}: {_excerpt(item)}")
        for part in _SEPARATORS.split(str(item)):
            if part and part not in ids:
                ids.append(part)
    if not ids:
        raise AccountsError(f"no accounts were given (expected {_EXPECTED})")
    return ids


def _decoded(text: str) -> Any:
    """JSON when it is JSON that is not a bare number (an RPPS number is an id, not a number)."""
    stripped = text.strip()
    if not stripped:
        return None
    if stripped[0] in '["{' or stripped in ("null", "true", "false"):
        try:
            return json.loads(stripped)
        except ValueError:
            return text  # "[jdupont" is someone's text, not broken JSON to refuse
    return text


def _kind(value: Any) -> str:
    return {dict: "an object", bool: "true/false", float: "a number"}.get(type(value), type(value).__name__)


def _excerpt(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 80 else text[:79] + "…"


def mode_tag(dry_run: bool) -> str:
    return DRY_RUN_TAG if dry_run else LIVE_TAG


def run_name(incident: str, dry_run: bool, live_word: str = "contain") -> str:
    """``<incident>-DRY-RUN`` or ``<incident>-<live_word>``: tells a plan from a containment in any list."""
    return f"{incident}-{'DRY-RUN' if dry_run else live_word}"
