"""The hygiene playbook format (YAML) and its loader.

    hygiene: daily                       # name
    version: 1
    title: Daily account hygiene
    checks:
      - id: not-registered
        check: not_in_register           # a registered check (tourniquet.hygiene.checks)
        severity: high
        suggest: credential-misuse       # playbook a responder would run (optional)
        with: {extract: register}        # the check's parameters, validated at load time
    respond:
      playbook: credential-misuse
      propose_at: high                   # findings at/above: a dry-run plan of that playbook
      execute_at: critical               # at/above: a real run, behind the approval gate (null: never)

Loading reuses the response-playbook loader's YAML position tracking, so every problem
(unknown field, unknown check, bad parameter, duplicate id) is reported at once as
``file:line:column: path: message``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tourniquet.engine.loader import Path_, _dotted, _nearest, _suggest, parse_yaml, read_text
from tourniquet.errors import Location, PlaybookError, PlaybookErrors
from tourniquet.hygiene.findings import Severity

__all__ = ["CheckSpec", "RespondPolicy", "HygienePlaybook", "LoadedHygiene", "load_hygiene", "load_hygiene_text"]

_ID = r"^[a-z][a-z0-9_-]{0,62}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CheckSpec(_Strict):
    """One check to run, with its parameters and the severity of what it finds."""

    id: str = Field(pattern=_ID, description="Unique name; findings carry it.")
    check: str = Field(description="Registered check: not_in_register, dormant, unprotected, unusual_volume, "
                                   "off_hours, new_source_ip, slow_scraping.")
    description: str = ""
    severity: Severity = Field(Severity.medium, description="Severity of each finding of this check.")
    suggest: str | None = Field(None, description="Playbook a responder would run on the account.")
    enabled: bool = True
    with_: dict[str, Any] = Field(default_factory=dict, alias="with", description="Parameters of the check.")


class RespondPolicy(_Strict):
    """How findings turn into response runs: only ever through the guarded response playbooks."""

    playbook: str = Field("credential-misuse", description="Response playbook to plan or run.")
    propose_at: Severity | None = Field(Severity.high, description="Plan a dry run for findings at/above this.")
    execute_at: Severity | None = Field(
        None, description="Start a real run, behind the approval gate, for findings at/above this (null: never)."
    )
    max_accounts: int = Field(20, ge=1, description="At most this many accounts in one proposed run.")
    reason: str = Field("hygiene finding", description="Reason recorded in the response run.")


class HygienePlaybook(_Strict):
    hygiene: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$", description="Name of the hygiene playbook.")
    version: Literal[1] = 1
    title: str
    description: str = ""
    checks: list[CheckSpec] = Field(min_length=1)
    respond: RespondPolicy | None = None


@dataclass
class LoadedHygiene:
    playbook: HygienePlaybook
    file: str
    params: dict[str, BaseModel] = field(default_factory=dict)  # check id → validated parameters
    marks: dict[Path_, Location] = field(default_factory=dict)


_MODELS: dict[Path_, type[BaseModel]] = {(): HygienePlaybook, ("respond",): RespondPolicy}


def load_hygiene(path: str | Path) -> LoadedHygiene:
    return load_hygiene_text(read_text(path), str(path))


def load_hygiene_text(text: str, file: str = "<hygiene>") -> LoadedHygiene:
    """Parse and validate; raise :class:`PlaybookErrors` listing every problem with file:line:col."""
    from tourniquet.hygiene.checks import CHECKS

    parsed = parse_yaml(text, file)
    data = parsed.data
    errors = list(parsed.errors)
    marks, key_marks = parsed.marks, parsed.key_marks
    if not isinstance(data, dict):
        raise PlaybookErrors(errors + [PlaybookError("a hygiene playbook is a mapping (hygiene:, checks: …)", marks[()])])
    try:
        playbook = HygienePlaybook.model_validate(data)
    except ValidationError as exc:
        errors.extend(_pydantic_errors(exc, (), marks, key_marks))
        errors.extend(_raw_parameter_errors(data, marks, key_marks))
        raise PlaybookErrors(errors) from None

    loaded = LoadedHygiene(playbook, file, marks=marks)
    seen: dict[str, int] = {}
    for index, spec in enumerate(playbook.checks):
        path: Path_ = ("checks", index)
        if spec.id in seen:
            errors.append(PlaybookError(f"duplicate check id {spec.id!r} (first used by checks[{seen[spec.id]}])",
                                        _nearest(marks, path + ("id",)), _dotted(path + ("id",))))
        seen.setdefault(spec.id, index)
        definition = CHECKS.get(spec.check)
        if definition is None:
            errors.append(PlaybookError(f"unknown check {spec.check!r}{_suggest(spec.check, list(CHECKS))} "
                                        f"(checks: {', '.join(CHECKS)})",
                                        _nearest(marks, path + ("check",)), _dotted(path + ("check",))))
            continue
        try:
            loaded.params[spec.id] = definition.params.model_validate(spec.with_)
        except ValidationError as exc:
            errors.extend(_pydantic_errors(exc, path + ("with",), marks, key_marks, definition.params))
    if errors:
        raise PlaybookErrors(errors)
    return loaded


def _raw_parameter_errors(data: dict[str, Any], marks: dict[Path_, Location],
                          key_marks: dict[Path_, Location]) -> list[PlaybookError]:
    """Check parameters even when the playbook around them is invalid: every problem in one go."""
    from tourniquet.hygiene.checks import CHECKS

    found: list[PlaybookError] = []
    checks = data.get("checks")
    for index, raw in enumerate(checks if isinstance(checks, list) else []):
        if not isinstance(raw, dict) or not isinstance(raw.get("with", {}), dict):
            continue
        definition = CHECKS.get(str(raw.get("check")))
        if definition is None:
            continue
        try:
            definition.params.model_validate(raw.get("with", {}))
        except ValidationError as exc:
            found.extend(_pydantic_errors(exc, ("checks", index, "with"), marks, key_marks, definition.params))
    return found


def _pydantic_errors(
    exc: ValidationError, prefix: Path_, marks: dict[Path_, Location], key_marks: dict[Path_, Location],
    model: type[BaseModel] | None = None,
) -> list[PlaybookError]:
    found: list[PlaybookError] = []
    for error in exc.errors():
        loc: Path_ = prefix + tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        kind = error["type"]
        if kind == "extra_forbidden":
            parent = loc[:-1]
            owner = model if model is not None and parent == prefix else _owner(parent)
            allowed = [info.alias or name for name, info in owner.model_fields.items()] if owner else []
            message = f"unknown field {loc[-1]!r}{_suggest(str(loc[-1]), allowed)}"
            if allowed:
                message += f" (allowed: {', '.join(allowed)})"
            found.append(PlaybookError(message, key_marks.get(loc) or _nearest(marks, loc), _dotted(loc)))
        elif kind == "missing":
            found.append(PlaybookError(f"missing required field {loc[-1]!r}", _nearest(marks, loc[:-1]), _dotted(loc[:-1])))
        else:
            got = error.get("input")
            shown = "" if isinstance(got, (dict, list)) else f", got {got!r}"
            found.append(PlaybookError(f"{error['msg']}{shown}", _nearest(marks, loc), _dotted(loc)))
    return found


def _owner(parent: Path_) -> type[BaseModel] | None:
    if len(parent) == 2 and parent[0] == "checks":
        return CheckSpec
    return _MODELS.get(parent)
