"""Load a playbook file and check everything that can be checked before a run.

All problems are collected and raised together as :class:`PlaybookErrors`, each
naming ``file:line:column``, the field path and what was expected. Nothing here
ever lets a yaml or pydantic traceback reach the responder.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from tourniquet import registry
from tourniquet.engine import expressions
from tourniquet.engine.playbook import Limits, Playbook, Step
from tourniquet.errors import ExpressionError, Location, PlaybookError, PlaybookErrors
from tourniquet.untrusted import BoundedLoader, TooLarge, read_bounded, text_problem

__all__ = ["LoadedPlaybook", "ParsedYaml", "parse_yaml", "load_playbook", "load_text", "read_text", "SCOPE_ROOTS",
           "FOR_EACH_KEYS", "MAX_PLAYBOOK_BYTES"]

#: A playbook is a few kilobytes; ``validate`` reads no more than this of any file.
MAX_PLAYBOOK_BYTES = 1 << 20

Path_ = tuple[str | int, ...]

#: Names an expression may start with.
SCOPE_ROOTS = ("inputs", "steps", "limits", "incident", "item")
#: What ``steps.<id>`` holds for a for_each step.
FOR_EACH_KEYS = ("results", "failed", "skipped", "count")
INCIDENT_KEYS = ("id", "playbook", "dry_run", "started")


@dataclass
class LoadedPlaybook:
    """A checked playbook plus where each of its nodes came from."""

    playbook: Playbook
    file: str
    marks: dict[Path_, Location] = field(default_factory=dict)

    def location(self, path: Path_) -> Location | None:
        return _nearest(self.marks, path)


# --------------------------------------------------------------------------- YAML → data + marks


class _Builder:
    """Turns a composed YAML node tree into plain data, remembering each node's position."""

    #: More nodes than any real playbook has: an alias bomb ("billion laughs") stops here, not after hours.
    MAX_NODES = 20_000

    def __init__(self, file: str, loader: yaml.SafeLoader) -> None:
        self.file = file
        self.loader = loader
        self.count = 0
        self.marks: dict[Path_, Location] = {}
        self.key_marks: dict[Path_, Location] = {}
        self.errors: list[PlaybookError] = []

    def mark(self, node: yaml.Node) -> Location:
        return Location(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def construct(self, node: yaml.Node, path: Path_) -> Any:
        """A scalar's value; a tag that cannot read it (``!!int abc``, ``!!timestamp x``) is an error here."""
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, RecursionError) as exc:
            shown = node.value if isinstance(node, yaml.ScalarNode) else node.id
            tag = node.tag.rsplit(":", 1)[-1]
            self.errors.append(PlaybookError(
                f"cannot read {str(shown)[:60]!r} as {tag} ({type(exc).__name__}: {str(exc)[:80]})",
                self.mark(node), _dotted(path)))
            return None
        problem = text_problem(value) if isinstance(value, str) else None
        if problem is not None:
            self.errors.append(PlaybookError(f"not valid text: {problem}", self.mark(node), _dotted(path)))
            return None
        return value

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.count += 1
        if self.count > self.MAX_NODES:
            raise PlaybookErrors([PlaybookError(
                f"more than {self.MAX_NODES} YAML nodes (aliases expanding too much?)", self.mark(node), _dotted(path))])
        self.marks[path] = self.mark(node)
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self.construct(key_node, path)
                if not isinstance(key, str):
                    key = str(key)
                if key in result:
                    self.errors.append(
                        PlaybookError(f"duplicate key {key!r}", self.mark(key_node), _dotted(path))
                    )
                    continue
                self.key_marks[path + (key,)] = self.mark(key_node)
                result[key] = self.build(value_node, path + (key,))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (index,)) for index, item in enumerate(node.value)]
        return self.construct(node, path)


def _dotted(path: Path_) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _nearest(marks: dict[Path_, Location], path: Path_) -> Location | None:
    probe = tuple(path)
    while probe:
        if probe in marks:
            return marks[probe]
        probe = probe[:-1]
    return marks.get(())


# --------------------------------------------------------------------------- entry points


def read_text(path: str | Path) -> str:
    """A playbook file's text; a missing or unreadable file is a located PlaybookErrors, not a traceback."""
    file = _printable(str(path))
    try:
        data = read_bounded(path, MAX_PLAYBOOK_BYTES, "playbook")
    except FileNotFoundError:
        raise PlaybookErrors([PlaybookError("file not found", Location(file, 1, 1))]) from None
    except TooLarge as exc:
        raise PlaybookErrors([PlaybookError(f"{exc} (MAX_PLAYBOOK_BYTES)", Location(file, 1, 1))]) from None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise PlaybookErrors([PlaybookError(f"cannot read: {reason}", Location(file, 1, 1))]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise PlaybookErrors([PlaybookError(f"not UTF-8 text: byte {data[exc.start]:#04x}", Location(file, line, column))
                              ]) from None


def _printable(name: str) -> str:
    """A file name as given, with what cannot be printed escaped (a name is hostile input too)."""
    return name if text_problem(name) is None else ascii(name)[1:-1]


def load_playbook(path: str | Path) -> LoadedPlaybook:
    return load_text(read_text(path), str(path))


#: Deeper ``[``/``{`` nesting than any playbook needs; PyYAML's scanner slows down quadratically past it.
MAX_FLOW_DEPTH = 64


def _check_flow_depth(text: str, file: str) -> None:
    """Refuse absurd ``[[[[…`` nesting before PyYAML spends seconds on it (quoted text and comments skipped)."""
    depth = 0
    for number, line in enumerate(text.splitlines(), start=1):
        quote = ""
        for column, char in enumerate(line, start=1):
            if quote:
                if char == quote:
                    quote = ""
            elif char in "'\"":
                quote = char
            elif char == "#" and (column == 1 or line[column - 2] in " \t"):
                break
            elif char in "[{":
                depth += 1
                if depth > MAX_FLOW_DEPTH:
                    raise PlaybookErrors([PlaybookError(
                        f"invalid YAML: brackets nested more than {MAX_FLOW_DEPTH} levels deep",
                        Location(file, number, column))])
            elif char in "]}":
                depth = max(0, depth - 1)


@dataclass
class ParsedYaml:
    """Plain data from a YAML file, with the position of every node and key."""

    data: Any
    marks: dict[Path_, Location]
    key_marks: dict[Path_, Location]
    errors: list[PlaybookError]


def parse_yaml(text: str, file: str) -> ParsedYaml:
    """Safe YAML → data + marks; every YAML problem becomes a located :class:`PlaybookErrors`.

    Shared by the playbook and hygiene-playbook loaders, so both get the same defences
    (flow-nesting bombs, bad tags, recursion) and the same messages.
    """
    if len(text) > MAX_PLAYBOOK_BYTES:
        raise PlaybookErrors([PlaybookError(f"{len(text)} characters: more than MAX_PLAYBOOK_BYTES "
                                            f"({MAX_PLAYBOOK_BYTES})", Location(file, 1, 1))])
    _check_flow_depth(text, file)
    try:
        loader = BoundedLoader(text)
        try:
            root = loader.get_single_node()
            if root is None:
                raise PlaybookErrors([PlaybookError("the file is empty", Location(file, 1, 1))])
            builder = _Builder(file, loader)
            data = builder.build(root, ())
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file, 1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise PlaybookErrors([PlaybookError(f"invalid YAML: {problem}", location)]) from None
    except yaml.YAMLError as exc:
        raise PlaybookErrors([PlaybookError(f"invalid YAML: {exc}", Location(file, 1, 1))]) from None
    except (RecursionError, MemoryError):
        raise PlaybookErrors([PlaybookError("YAML nested too deeply", Location(file, 1, 1))]) from None
    return ParsedYaml(data, builder.marks, builder.key_marks, list(builder.errors))


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
    errors.extend(_Checker(loaded, key_marks).run())
    if errors:
        raise PlaybookErrors(errors)
    return loaded


def _from_pydantic(
    exc: ValidationError, marks: dict[Path_, Location], key_marks: dict[Path_, Location]
) -> Iterator[PlaybookError]:
    for error in exc.errors():
        loc: Path_ = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        kind = error["type"]
        field_path = _dotted(loc)
        if kind == "extra_forbidden":
            parent = loc[:-1]
            allowed = _allowed_keys(parent)
            hint = _suggest(str(loc[-1]), allowed)
            message = f"unknown field {loc[-1]!r}{hint}"
            if allowed:
                message += f" (allowed: {', '.join(allowed)})"
            yield PlaybookError(message, key_marks.get(loc) or _nearest(marks, loc), field_path)
        elif kind == "missing":
            yield PlaybookError(f"missing required field {loc[-1]!r}", _nearest(marks, loc[:-1]), _dotted(loc[:-1]))
        elif kind == "string_pattern_mismatch" and loc and loc[-1] in _PATTERN_HINTS:
            yield PlaybookError(f"{_PATTERN_HINTS[str(loc[-1])]}, got {_shown(error.get('input'))}", _nearest(marks, loc), field_path)
        else:
            got = error.get("input")
            shown = "" if isinstance(got, (dict, list)) else f", got {_shown(got)}"
            yield PlaybookError(f"{error['msg']}{shown}", _nearest(marks, loc), field_path)


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


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f", did you mean {close[0]!r}?" if close else ""


# --------------------------------------------------------------------------- semantic checks


class _Checker:
    """Cross-field checks: one small method per rule, in the spirit of orquesta's inspect()."""

    def __init__(self, loaded: LoadedPlaybook, key_marks: dict[Path_, Location]) -> None:
        self.loaded = loaded
        self.playbook = loaded.playbook
        self.key_marks = key_marks
        self.errors: list[PlaybookError] = []

    def error(self, message: str, path: Path_, *, key: bool = False) -> None:
        location = (self.key_marks.get(path) if key else None) or self.loaded.location(path)
        self.errors.append(PlaybookError(message, location, _dotted(path)))

    def run(self) -> list[PlaybookError]:
        self.check_input_defaults()
        seen: dict[str, int] = {}
        for index, step in enumerate(self.playbook.steps):
            path: Path_ = ("steps", index)
            if step.id in seen:
                self.error(f"duplicate step id {step.id!r} (first used by steps[{seen[step.id]}])", path + ("id",))
            spec = self.check_action(step, path)
            if spec is not None:
                self.check_arguments(step, spec, path)
                self.check_undo(step, spec, path)
            self.check_expressions(step, index, path, earlier=list(seen))
            seen.setdefault(step.id, index)
        return self.errors

    def check_input_defaults(self) -> None:
        from tourniquet.engine.inputs import coerce_input

        for name, spec in self.playbook.inputs.items():
            if "default" in spec.model_fields_set and spec.default is not None:
                try:
                    coerce_input(name, spec, spec.default)
                except PlaybookError as exc:
                    self.error(exc.message, ("inputs", name, "default"))

    def check_action(self, step: Step, path: Path_) -> registry.ActionSpec | None:
        spec = registry.get(step.action)
        if spec is None:
            names = [a.name for a in registry.all_actions()]
            self.error(f"unknown action {step.action!r}{_suggest(step.action, names)}", path + ("action",))
        return spec

    def check_undo(self, step: Step, spec: registry.ActionSpec, path: Path_) -> None:
        if step.undo is None:
            return
        undo = registry.get(step.undo)
        if undo is None:
            self.error(f"unknown undo action {step.undo!r}", path + ("undo",))
        elif not spec.changes:
            self.error(f"{step.action} changes nothing, so it has nothing to undo", path + ("undo",))

    def check_arguments(self, step: Step, spec: registry.ActionSpec, path: Path_) -> None:
        fields = spec.parameters.model_fields
        for name, value in step.with_.items():
            arg_path = path + ("with", name)
            if name not in fields:
                expected = ", ".join(fields) or "no arguments"
                self.error(
                    f"unknown argument {name!r} for {spec.name}{_suggest(name, list(fields))} (expected: {expected})",
                    arg_path,
                    key=True,
                )
                continue
            if _has_expression(value):
                continue
            try:
                TypeAdapter(fields[name].annotation or Any).validate_python(value)
            except ValidationError as exc:
                self.error(f"bad value for {name!r} of {spec.name}: {exc.errors()[0]['msg']}", arg_path)
        for name in spec.required():
            if name not in step.with_:
                self.error(f"missing argument {name!r} for {spec.name}", path + ("with",) if step.with_ else path + ("action",))

    def check_expressions(self, step: Step, index: int, path: Path_, earlier: list[str]) -> None:
        sources: list[tuple[Path_, Any]] = [(path + ("with",), step.with_)]
        if step.if_ is not None and not isinstance(step.if_, bool):
            sources.append((path + ("if",), step.if_ if "${{" in step.if_ else "${{ " + step.if_ + " }}"))
        if step.for_each is not None:
            sources.append((path + ("for_each",), step.for_each))
            if isinstance(step.for_each, str) and not _is_single_expression(step.for_each):
                self.error("for_each must be a list or a single ${{ … }} expression", path + ("for_each",))
        for node_path, value in sources:
            for sub_path, text in _strings(value, node_path):
                if "${{" not in text:
                    continue
                try:
                    template = expressions.parse_template(text)
                except ExpressionError as exc:
                    self.error(str(exc), sub_path)
                    continue
                for expression in template.expressions:
                    for reference in expressions.references(expression):
                        self.check_reference(reference, step, sub_path, earlier, in_for_each=node_path[-1] == "for_each")

    def check_reference(
        self, ref: tuple[str, ...], step: Step, path: Path_, earlier: list[str], in_for_each: bool
    ) -> None:
        root = ref[0]
        if root in ("true", "false", "null", "True", "False", "None") or root in expressions.FUNCTIONS:
            return
        if root not in SCOPE_ROOTS:
            self.error(f"name {root!r} is not defined (expressions start with: {', '.join(SCOPE_ROOTS)})", path)
        elif root == "item" and (step.for_each is None or in_for_each):
            self.error("'item' exists only inside a step with for_each", path)
        elif root == "inputs" and len(ref) > 1 and ref[1] not in self.playbook.inputs:
            known = ", ".join(self.playbook.inputs) or "none declared"
            self.error(f"input {ref[1]!r} is not declared (inputs: {known})", path)
        elif root == "limits" and len(ref) > 1 and ref[1] not in Limits.model_fields:
            self.error(f"limits has no {ref[1]!r} (limits: {', '.join(Limits.model_fields)})", path)
        elif root == "incident" and len(ref) > 1 and ref[1] not in INCIDENT_KEYS:
            self.error(f"incident has no {ref[1]!r} (incident: {', '.join(INCIDENT_KEYS)})", path)
        elif root == "steps" and len(ref) > 1:
            self.check_step_reference(ref, step, path, earlier)

    def check_step_reference(self, ref: tuple[str, ...], step: Step, path: Path_, earlier: list[str]) -> None:
        target = ref[1]
        ids = [s.id for s in self.playbook.steps]
        if target == step.id:
            self.error(f"step {step.id!r} refers to its own result", path)
            return
        if target not in ids:
            self.error(f"no step {target!r}{_suggest(target, ids)}", path)
            return
        if target not in earlier:
            self.error(f"step {target!r} runs later: a step can only read the results of earlier steps", path)
            return
        if len(ref) < 3:
            return
        referenced = self.playbook.step(target)
        if referenced.for_each is not None:
            if ref[2] not in FOR_EACH_KEYS:
                self.error(
                    f"steps.{target} runs for_each: it has {', '.join(FOR_EACH_KEYS)}, not {ref[2]!r}", path
                )
            return
        spec = registry.get(referenced.action)
        if spec is not None and spec.result is not None and ref[2] not in spec.result.model_fields:
            fields = ", ".join(spec.result.model_fields)
            self.error(f"{referenced.action} result has no {ref[2]!r} (it has: {fields})", path)


def _has_expression(value: Any) -> bool:
    return any("${{" in text for _, text in _strings(value, ()))


def _is_single_expression(text: str) -> bool:
    try:
        return expressions.parse_template(text).is_single
    except ExpressionError:
        return True  # reported by the expression check


def _strings(value: Any, path: Path_) -> Iterator[tuple[Path_, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, path + (index,))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, path + (key,))
