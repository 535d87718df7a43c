"""Load a playbook file and check everything that can be checked before a run.

All problems are collected and raised together as :class:`PlaybookErrors`, each
naming ``file:line:column``, the field path and what was expected. Nothing here
ever lets a yaml or pydantic traceback reach the responder: the file is read and parsed by
:mod:`tourniquet.engine.parsing`, validated by the models of :mod:`tourniquet.engine.playbook`
(pydantic's errors rewritten here, with "did you mean"), then cross-checked by
:mod:`tourniquet.engine.crosscheck`.

May import: ``engine.parsing``, ``engine.crosscheck``, ``engine.playbook``, ``tourniquet.errors``, pydantic.
Imported by: ``engine.execute``, ``engine.run``, ``engine.recover``, ``engine.regions_run``, ``flows``,
``cli``, ``hygiene.runner``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from tourniquet.engine.crosscheck import FOR_EACH_KEYS, SCOPE_ROOTS, check_playbook
from tourniquet.engine.parsing import (
    MAX_PLAYBOOK_BYTES,
    ParsedYaml,
    Path_,
    dotted,
    nearest,
    parse_yaml,
    read_text,
    suggest,
)
from tourniquet.engine.playbook import Limits, Playbook, Step
from tourniquet.errors import Location, PlaybookError, PlaybookErrors

__all__ = ["LoadedPlaybook", "ParsedYaml", "parse_yaml", "load_playbook", "load_text", "read_text", "SCOPE_ROOTS",
           "FOR_EACH_KEYS", "MAX_PLAYBOOK_BYTES"]


@dataclass
class LoadedPlaybook:
    """A checked playbook plus where each of its nodes came from."""

    playbook: Playbook
    file: str
    marks: dict[Path_, Location] = field(default_factory=dict)

    def location(self, path: Path_) -> Location | None:
        return nearest(self.marks, path)


def load_playbook(path: str | Path) -> LoadedPlaybook:
    return load_text(read_text(path), str(path))


def load_text(text: str, file: str = "<playbook>") -> LoadedPlaybook:
    """Parse, validate and cross-check; raise :class:`PlaybookErrors` listing every problem."""
    parsed = parse_yaml(text, file)
    data = parsed.data
    errors = list(parsed.errors)
    if not isinstance(data, dict):
        errors.append(PlaybookError("a playbook is a mapping (playbook:, version:, steps: …)", parsed.marks[()]))
        raise PlaybookErrors(errors)

    marks = {**parsed.marks}
    key_marks = parsed.key_marks
    try:
        playbook = Playbook.model_validate(data)
    except ValidationError as exc:
        errors.extend(_from_pydantic(exc, marks, key_marks))
        raise PlaybookErrors(errors) from None
    loaded = LoadedPlaybook(playbook, file, marks)
    errors.extend(check_playbook(playbook, marks, key_marks))
    if errors:
        raise PlaybookErrors(errors)
    return loaded


def _from_pydantic(
    exc: ValidationError, marks: dict[Path_, Location], key_marks: dict[Path_, Location]
) -> Iterator[PlaybookError]:
    for error in exc.errors():
        loc: Path_ = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        kind = error["type"]
        field_path = dotted(loc)
        if kind == "extra_forbidden":
            parent = loc[:-1]
            allowed = _allowed_keys(parent)
            hint = suggest(str(loc[-1]), allowed)
            message = f"unknown field {loc[-1]!r}{hint}"
            if allowed:
                message += f" (allowed: {', '.join(allowed)})"
            yield PlaybookError(message, key_marks.get(loc) or nearest(marks, loc), field_path)
        elif kind == "missing":
            yield PlaybookError(f"missing required field {loc[-1]!r}", nearest(marks, loc[:-1]), dotted(loc[:-1]))
        elif kind == "string_pattern_mismatch" and loc and loc[-1] in _PATTERN_HINTS:
            yield PlaybookError(f"{_PATTERN_HINTS[str(loc[-1])]}, got {_shown(error.get('input'))}", nearest(marks, loc), field_path)
        else:
            got = error.get("input")
            shown = "" if isinstance(got, (dict, list)) else f", got {_shown(got)}"
            yield PlaybookError(f"{error['msg']}{shown}", nearest(marks, loc), field_path)


_PATTERN_HINTS = {
    "id": "a step id is lowercase letters, digits and _, starting with a letter",
    "action": "an action is namespace.name, e.g. directory.lock (see `tourniquet actions`)",
    "undo": "an undo action is namespace.name, e.g. directory.unlock",
    "playbook": "a playbook name is lowercase letters, digits and -, starting with a letter",
    "approval_timeout": "a timeout is a number and a unit (s, m, h, d, w), e.g. 1h",
}


def _shown(value: Any, limit: int = 80) -> str:
    """A value as the author wrote it, cut short; never fails (repr of a 5000-digit int raises)."""
    try:
        text = repr(value)
    except ValueError:
        return f"a number with more than {sys.get_int_max_str_digits()} digits"
    return text if len(text) <= limit else text[:limit] + "…"


def _allowed_keys(parent: Path_) -> list[str]:
    model: type[BaseModel] | None
    if parent == ():
        model = Playbook
    elif parent == ("limits",):
        model = Limits
    elif len(parent) == 2 and parent[0] == "steps":
        model = Step
    elif len(parent) == 2 and parent[0] == "inputs":
        from tourniquet.engine.playbook import InputSpec

        model = InputSpec
    else:
        model = None
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]
