"""The action registry: playbook action names → typed Python functions.

An action is a plain function whose first parameter is the :class:`ActionContext`
and whose other parameters are annotated (``Annotated[T, Field(description=...)]``).
:func:`action` only attaches metadata; the parameter model, the ``tourniquet actions``
listing, the JSON Schema and the loader's checks are all built from the signature, so
they cannot drift apart.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, create_model

__all__ = ["ActionSpec", "action", "get", "all_actions"]

_REGISTRY: dict[str, "ActionSpec"] = {}


@dataclass(frozen=True)
class ActionSpec:
    """Everything the loader, the runner and the docs need to know about one action."""

    name: str
    function: Callable[..., Any]
    parameters: type[BaseModel]
    summary: str
    changes: bool
    undo: str | None
    target: str | None
    retryable: bool
    result: type[BaseModel] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.name.split(".", 1)[0]

    def required(self) -> list[str]:
        return [n for n, f in self.parameters.model_fields.items() if f.is_required()]

    def describe(self) -> list[tuple[str, str, bool, str]]:
        """(name, type, required, description) of each parameter, in order."""
        rows = []
        for name, info in self.parameters.model_fields.items():
            rows.append((name, _type_name(info.annotation), info.is_required(), info.description or ""))
        return rows

    def validate_arguments(self, arguments: dict[str, Any]) -> BaseModel:
        return self.parameters.model_validate(arguments)


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def action(
    name: str,
    *,
    changes: bool = False,
    undo: str | None = None,
    target: str | None = None,
    retryable: bool = True,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``function`` as the playbook action ``name``.

    ``changes``: the action modifies an outside system (dry-run, journal and undo apply). Its effects
    must all go through ``ctx.change``: in a chunk it runs twice per item, planning then applying
    (:mod:`tourniquet.engine.chunks`), and the planning pass must change nothing.
    ``undo``: the name of the action that reverses it.
    ``target``: the parameter that names the account changed (guardrails check it).
    ``retryable``: safe to call again after a transient failure.
    """

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY and _REGISTRY[name].function is not function:
            raise ValueError(f"action {name!r} registered twice")
        doc = inspect.getdoc(function) or ""
        _REGISTRY[name] = ActionSpec(
            name=name,
            function=function,
            parameters=_parameters_model(name, function),
            summary=doc.splitlines()[0] if doc else "",
            changes=changes,
            undo=undo,
            target=target,
            retryable=retryable,
            result=_result_model(function),
        )
        return function

    return register


def _parameters_model(name: str, function: Callable[..., Any]) -> type[BaseModel]:
    hints = get_type_hints(function, include_extras=True)
    fields: dict[str, Any] = {}
    parameters = list(inspect.signature(function).parameters.values())[1:]  # skip the context
    for parameter in parameters:
        annotation = hints.get(parameter.name, Any)
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[parameter.name] = (annotation, default)
    model_name = "".join(part.title() for part in name.replace("_", ".").split(".")) + "Arguments"
    return create_model(  # type: ignore[call-overload, no-any-return]
        model_name, __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True), **fields
    )


def _result_model(function: Callable[..., Any]) -> type[BaseModel] | None:
    returned = get_type_hints(function).get("return")
    if isinstance(returned, type) and issubclass(returned, BaseModel):
        return returned
    return None


def get(name: str) -> ActionSpec | None:
    """The registered action ``name`` (the catalogue, :mod:`tourniquet.actions`, registers them all)."""
    return _REGISTRY.get(name)


def all_actions() -> Iterator[ActionSpec]:
    for name in sorted(_REGISTRY):
        yield _REGISTRY[name]


