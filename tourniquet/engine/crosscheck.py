"""The cross-field checks of a playbook that validated: what pydantic's models alone cannot say.

Actions and undo actions exist, arguments are the action's own (names, and types where no
expression stands in), expressions parse and name only what exists by then (declared inputs,
earlier steps and the fields of their results, ``item`` inside ``for_each``), input defaults
coerce. One small method per rule; every problem is collected, located at its node.

May import: ``engine.expressions``, ``engine.playbook``, ``engine.parsing``, ``engine.inputs`` (inside a
check), ``registry``, ``tourniquet.errors``, pydantic. Imported by: ``engine.loader``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import TypeAdapter, ValidationError

from tourniquet import registry
from tourniquet.engine import expressions
from tourniquet.engine.parsing import Path_, dotted, nearest, suggest
from tourniquet.engine.playbook import Limits, Playbook, Step
from tourniquet.errors import ExpressionError, Location, PlaybookError

__all__ = ["check_playbook", "SCOPE_ROOTS", "FOR_EACH_KEYS", "INCIDENT_KEYS", "OUTCOME_KEYS"]

#: Names an expression may start with.
SCOPE_ROOTS = ("inputs", "steps", "limits", "incident", "item", "outcome")
#: What ``steps.<id>`` holds for a for_each step.
FOR_EACH_KEYS = ("results", "failed", "skipped", "count")
INCIDENT_KEYS = ("id", "playbook", "dry_run", "started")
#: What ``outcome`` holds: the run so far, folded from its journal (:meth:`tourniquet.outcomes.Outcomes.as_dict`).
OUTCOME_KEYS = ("headline", "summary", "contained", "not_contained", "total", "exit_code", "state")


def check_playbook(playbook: Playbook, marks: dict[Path_, Location],
                   key_marks: dict[Path_, Location]) -> list[PlaybookError]:
    """Every cross-field problem of ``playbook``, each located through ``marks`` (values) or ``key_marks``."""
    return _Checker(playbook, marks, key_marks).run()


class _Checker:
    """Cross-field checks: one small method per rule, in the spirit of orquesta's inspect()."""

    def __init__(self, playbook: Playbook, marks: dict[Path_, Location], key_marks: dict[Path_, Location]) -> None:
        self.playbook = playbook
        self.marks = marks
        self.key_marks = key_marks
        self.errors: list[PlaybookError] = []

    def error(self, message: str, path: Path_, *, key: bool = False) -> None:
        location = (self.key_marks.get(path) if key else None) or nearest(self.marks, path)
        self.errors.append(PlaybookError(message, location, dotted(path)))

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
            self.error(f"unknown action {step.action!r}{suggest(step.action, names)}", path + ("action",))
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
                    f"unknown argument {name!r} for {spec.name}{suggest(name, list(fields))} (expected: {expected})",
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
        elif root == "outcome" and len(ref) > 1 and ref[1] not in OUTCOME_KEYS:
            self.error(f"outcome has no {ref[1]!r} (outcome: {', '.join(OUTCOME_KEYS)})", path)
        elif root == "steps" and len(ref) > 1:
            self.check_step_reference(ref, step, path, earlier)

    def check_step_reference(self, ref: tuple[str, ...], step: Step, path: Path_, earlier: list[str]) -> None:
        target = ref[1]
        ids = [s.id for s in self.playbook.steps]
        if target == step.id:
            self.error(f"step {step.id!r} refers to its own result", path)
            return
        if target not in ids:
            self.error(f"no step {target!r}{suggest(target, ids)}", path)
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
