"""Turn the responder's inputs (CLI ``k=v`` strings, UI form values) into typed values."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from tourniquet.engine.expressions import parse_duration, resolve_instant
from tourniquet.engine.playbook import InputSpec, Playbook
from tourniquet.errors import ExpressionError, PlaybookError

__all__ = ["coerce_input", "resolve_inputs", "parse_cli_inputs"]


def coerce_input(name: str, spec: InputSpec, value: Any) -> Any:
    """Check and convert one value; raise :class:`PlaybookError` naming the input."""
    path = f"inputs.{name}"
    kind = spec.type
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
            if kind == "list[int]":
                return [int(v) for v in items]
            if not all(isinstance(v, str) for v in items):
                raise ValueError("expected a list of text values")
            return items
    except (ValueError, TypeError, ExpressionError) as exc:
        raise PlaybookError(f"bad value for input {name!r} ({kind}): {exc}", path=path) from None
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
        raise PlaybookError(
            f"unknown input(s) {', '.join(unknown)} (declared: {', '.join(playbook.inputs) or 'none'})",
            path="inputs",
        )
    values: dict[str, Any] = {}
    for name, spec in playbook.inputs.items():
        if name in given and given[name] is not None:
            values[name] = coerce_input(name, spec, given[name])
        elif "default" in spec.model_fields_set:
            values[name] = None if spec.default is None else coerce_input(name, spec, spec.default)
        elif spec.is_required:
            raise PlaybookError(f"missing required input {name!r}: {spec.description}", path=f"inputs.{name}")
        else:
            values[name] = None
    return values


def parse_cli_inputs(pairs: list[str]) -> dict[str, Any]:
    """``["accounts=a,b", "since=-30d"]`` → ``{"accounts": "a,b", "since": "-30d"}``."""
    result: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise PlaybookError(f"--input expects name=value, got {pair!r}")
        name, value = pair.split("=", 1)
        result[name.strip()] = value
    return result
