"""Read a hygiene playbook: YAML with positions, the models of :mod:`tourniquet.hygiene.spec`, and each
check's parameters validated against the catalogue (:mod:`tourniquet.hygiene.checks`).

Every problem (unknown field, unknown check, bad parameter, duplicate id) is reported at once as
``file:line:column: path: message``, reusing the response-playbook loader's YAML position tracking.

Imports the spec, the catalogue and the engine's YAML reader; the runner, the CLI and the package
namespace import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from tourniquet.engine.parsing import Path_, dotted, nearest, parse_yaml, read_text, suggest
from tourniquet.errors import Location, PlaybookError, PlaybookErrors
from tourniquet.hygiene.checks import CHECKS
from tourniquet.hygiene.spec import CheckSpec, HygienePlaybook, PlatformSpec, RespondPolicy

__all__ = ["LoadedHygiene", "load_hygiene", "load_hygiene_text"]


@dataclass
class LoadedHygiene:
    playbook: HygienePlaybook
    file: str
    params: dict[str, BaseModel] = field(default_factory=dict)  # check id → validated parameters
    marks: dict[Path_, Location] = field(default_factory=dict)


_MODELS: dict[Path_, type[BaseModel]] = {(): HygienePlaybook, ("respond",): RespondPolicy, ("platform",): PlatformSpec}


def load_hygiene(path: str | Path) -> LoadedHygiene:
    return load_hygiene_text(read_text(path), str(path))


def load_hygiene_text(text: str, file: str = "<hygiene>") -> LoadedHygiene:
    """Parse and validate; raise :class:`PlaybookErrors` listing every problem with file:line:col."""
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
                                        nearest(marks, path + ("id",)), dotted(path + ("id",))))
        seen.setdefault(spec.id, index)
        definition = CHECKS.get(spec.check)
        if definition is None:
            errors.append(PlaybookError(f"unknown check {spec.check!r}{suggest(spec.check, list(CHECKS))} "
                                        f"(checks: {', '.join(CHECKS)})",
                                        nearest(marks, path + ("check",)), dotted(path + ("check",))))
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
            message = f"unknown field {loc[-1]!r}{suggest(str(loc[-1]), allowed)}"
            if allowed:
                message += f" (allowed: {', '.join(allowed)})"
            found.append(PlaybookError(message, key_marks.get(loc) or nearest(marks, loc), dotted(loc)))
        elif kind == "missing":
            found.append(PlaybookError(f"missing required field {loc[-1]!r}", nearest(marks, loc[:-1]), dotted(loc[:-1])))
        else:
            got = error.get("input")
            shown = "" if isinstance(got, (dict, list)) else f", got {got!r}"
            found.append(PlaybookError(f"{error['msg']}{shown}", nearest(marks, loc), dotted(loc)))
    return found


def _owner(parent: Path_) -> type[BaseModel] | None:
    if len(parent) == 2 and parent[0] == "checks":
        return CheckSpec
    return _MODELS.get(parent)
