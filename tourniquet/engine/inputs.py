"""Turn the responder's inputs (CLI ``k=v`` strings, UI form values) into typed values.

Inputs are hostile like everything that comes from outside: a value is bounded in size,
in nesting and in items before anything parses it, and every text must be valid Unicode text
(an id with a byte that is not UTF-8, or a lone surrogate, is refused by name here, before it
reaches a directory filter, the journal or Prefect's API).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from tourniquet.engine.expressions import parse_duration, resolve_instant
from tourniquet.engine.playbook import InputSpec, Playbook
from tourniquet.errors import ExpressionError, PlaybookError
from tourniquet.untrusted import INCIDENT_ID, check_incident_id, text_problem

__all__ = [
    "coerce_input", "resolve_inputs", "parse_cli_inputs", "text_problem", "check_incident_id", "INCIDENT_ID",
    "MAX_INPUT_BYTES", "MAX_INPUT_ITEMS", "MAX_INPUT_DEPTH", "MAX_INPUTS",
]

#: One input value (a list of accounts included): far above any real alert, far below trouble.
MAX_INPUT_BYTES = 1 << 20
#: Items of a list input (the blast-radius approval applies long before this).
MAX_INPUT_ITEMS = 10_000
#: ``[`` / ``{`` nesting of a JSON list input: list inputs are flat; a little slack for the error message.
MAX_INPUT_DEPTH = 8
#: ``-i`` options on one command line.
MAX_INPUTS = 100
def _shown(value: Any, limit: int = 60) -> str:
    text = ascii(value) if isinstance(value, str) else type(value).__name__
    return text if len(text) <= limit else text[:limit] + "…'"


def _check_text(name: str, value: str, where: str = "") -> None:
    problem = text_problem(value)
    if problem is not None:
        raise PlaybookError(f"input {name!r}{where} is not valid text: {problem} ({_shown(value)})",
                            path=f"inputs.{name}")


def _check_bounds(name: str, value: Any) -> None:
    """Size, items, nesting and text of a value before it is parsed or used."""
    if isinstance(value, str):
        if len(value) > MAX_INPUT_BYTES:
            raise PlaybookError(f"input {name!r} is {len(value)} characters long: more than MAX_INPUT_BYTES "
                                f"({MAX_INPUT_BYTES})", path=f"inputs.{name}")
        _check_text(name, value)
        depth = deepest = 0
        quoted = escaped = False
        for char in value if value.lstrip().startswith(("[", "{")) else "":
            if quoted:
                escaped, quoted = (False, True) if escaped else (char == "\\", char != '"')
            elif char == '"':
                quoted = True
            elif char in "[{":
                depth += 1
                deepest = max(deepest, depth)
                if deepest > MAX_INPUT_DEPTH:
                    raise PlaybookError(f"input {name!r} is nested more than MAX_INPUT_DEPTH ({MAX_INPUT_DEPTH}) "
                                        "levels deep", path=f"inputs.{name}")
            elif char in "]}":
                depth -= 1
    elif isinstance(value, list):
        if len(value) > MAX_INPUT_ITEMS:
            raise PlaybookError(f"input {name!r} has {len(value)} items: more than MAX_INPUT_ITEMS "
                                f"({MAX_INPUT_ITEMS})", path=f"inputs.{name}")
        for index, item in enumerate(value):
            if isinstance(item, str):
                _check_text(name, item, f" item {index + 1}")
            elif isinstance(item, (list, dict)):
                raise PlaybookError(f"input {name!r} item {index + 1} is a {type(item).__name__}: list inputs are "
                                    "flat", path=f"inputs.{name}")


def coerce_input(name: str, spec: InputSpec, value: Any) -> Any:
    """Check and convert one value; raise :class:`PlaybookError` naming the input."""
    path = f"inputs.{name}"
    kind = spec.type
    _check_bounds(name, value)
    try:
        if kind == "str":
            if not isinstance(value, str):
                raise ValueError(f"expected text, got {type(value).__name__}")
            return value
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError("expected a whole number, got a boolean")
            return int(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "yes", "1", "on"):
                return True
            if str(value).lower() in ("false", "no", "0", "off"):
                return False
            raise ValueError(f"expected true or false, got {value!r}")
        if kind == "datetime":
            if not isinstance(value, (str, datetime)):
                raise ValueError(f"expected an ISO date-time, -30d or auto, got {value!r}")
            if isinstance(value, str) and value.strip().lower() == "auto":
                return "auto"  # for actions that can choose the instant themselves (audit.snapshot_scope)
            return resolve_instant(value).isoformat()
        if kind == "duration":
            return f"{value}" if parse_duration(str(value)) is not None else value
        if kind in ("list[str]", "list[int]"):
            items = _as_list(value)
            _check_bounds(name, items)
            if kind == "list[int]":
                return [int(v) for v in items]
            if not all(isinstance(v, str) for v in items):
                raise ValueError("expected a list of text values")
            return items
    except (ValueError, TypeError, ExpressionError, RecursionError, OverflowError) as exc:
        raise PlaybookError(f"bad value for input {name!r} ({kind}): {str(exc)[:200]}", path=path) from None
    raise PlaybookError(f"unknown input type {kind!r}", path=path)


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            parsed = json.loads(text)
            if not isinstance(parsed, list):
                raise ValueError("expected a list")
            return parsed
        return [part.strip() for part in text.split(",") if part.strip()]
    raise ValueError(f"expected a list, got {type(value).__name__}")


def resolve_inputs(playbook: Playbook, given: dict[str, Any]) -> dict[str, Any]:
    """Every declared input with its value: given, else default; unknown or missing ones are errors."""
    unknown = sorted(set(given) - set(playbook.inputs))
    if unknown:
        shown = ", ".join(_shown(name) if text_problem(name) else name for name in unknown[:10])
        raise PlaybookError(
            f"unknown input(s) {shown} (declared: {', '.join(playbook.inputs) or 'none'})",
            path="inputs",
        )
    values: dict[str, Any] = {}
    for name, spec in playbook.inputs.items():
        if name in given and given[name] is not None:
            values[name] = coerce_input(name, spec, given[name])
            if spec.is_required and values[name] == [] and spec.type.startswith("list"):
                raise PlaybookError(f"input {name!r} is an empty list: it is required ({spec.description})",
                                    path=f"inputs.{name}")
        elif "default" in spec.model_fields_set:
            values[name] = None if spec.default is None else coerce_input(name, spec, spec.default)
        elif spec.is_required:
            raise PlaybookError(f"missing required input {name!r}: {spec.description}", path=f"inputs.{name}")
        else:
            values[name] = None
    return values


def parse_cli_inputs(pairs: list[str]) -> dict[str, Any]:
    """``["accounts=a,b", "since=-30d"]`` → ``{"accounts": "a,b", "since": "-30d"}``."""
    if len(pairs) > MAX_INPUTS:
        raise PlaybookError(f"{len(pairs)} --input options: more than MAX_INPUTS ({MAX_INPUTS})", path="inputs")
    result: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise PlaybookError(f"--input expects name=value, got {_shown(pair)}", path="inputs")
        name, value = pair.split("=", 1)
        name = name.strip()
        problem = text_problem(name)
        if problem is not None or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,63}", name):
            raise PlaybookError(f"--input name {_shown(name)} is not an input name"
                                + (f" ({problem})" if problem else " (letters, digits, _ and -)"),
                                path="inputs")
        _check_bounds(name, value)
        result[name] = value
    return result
