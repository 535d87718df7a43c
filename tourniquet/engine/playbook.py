"""The playbook format, version 1, as pydantic models.

Every mapping forbids unknown keys, so a typo (``for_eac``) is an error at load time,
not a step that silently runs once. The JSON Schema that ``tourniquet schema`` prints
is generated from these classes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["InputType", "InputSpec", "Limits", "Step", "Playbook", "INPUT_TYPES"]

InputType = Literal["str", "int", "bool", "datetime", "duration", "list[str]", "list[int]"]
INPUT_TYPES: tuple[str, ...] = InputType.__args__  # type: ignore[attr-defined]

_ID = r"^[a-z][a-z0-9_]{0,62}$"
_ACTION = r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class InputSpec(_Strict):
    """One value the responder gives when starting the playbook."""

    type: InputType = Field("str", description="Value type; datetime accepts ISO, relative (-30d) or auto.")
    description: str = Field("", description="Shown in the CLI help and the Prefect UI form.")
    default: Any = Field(None, description="Used when the input is not given. No default = required.")
    required: bool | None = Field(
        None, description="Defaults to true when there is no default, false otherwise."
    )

    @property
    def is_required(self) -> bool:
        if self.required is not None:
            return self.required
        return "default" not in self.model_fields_set


class Limits(_Strict):
    """Guardrails that travel with the playbook."""

    max_accounts: int = Field(
        20, ge=1, description="Above this many accounts a person approves before anything changes."
    )
    protected: list[str] = Field(
        default_factory=list,
        description="Accounts never changed: DN or uid glob patterns (uid=breakglass-*, ou=services,*), "
        "or memberOf=<group DN glob>.",
    )
    approval_timeout: str = Field(
        "1h", pattern=r"^\d+[smhdw]$", description="How long to wait for an approval; no answer = rejected."
    )


class Step(_Strict):
    """One line of the incident procedure."""

    id: str = Field(pattern=_ID, description="Unique step name; later steps read steps.<id>.")
    action: str = Field(pattern=_ACTION, description="Registered action, e.g. directory.lock.")
    description: str = Field("", description="What this step is for, in the responder's words.")
    with_: dict[str, Any] = Field(
        default_factory=dict, alias="with", description="Arguments of the action (expressions allowed)."
    )
    if_: str | bool | None = Field(None, alias="if", description="Run the step only when this is true.")
    for_each: str | list[Any] | None = Field(
        None, description="Run the action once per item; the item is available as `item`."
    )
    concurrency: int = Field(4, ge=1, le=32, description="How many for_each items run at once.")
    on_error: Literal["fail", "continue"] = Field(
        "fail", description="fail: stop the run (and roll back if on_failure says so); continue: record and go on."
    )
    retries: int = Field(0, ge=0, le=10, description="Retries after a transient failure (down, timeout, 5xx).")
    retry_delay: float = Field(2.0, ge=0, le=600, description="Seconds between retries.")
    timeout: float = Field(300, gt=0, le=86400, description="Seconds before the step counts as failed.")
    undo: str | None = Field(
        None, pattern=_ACTION, description="Action that reverses this step (defaults to the action's own undo)."
    )


class Playbook(_Strict):
    """A response procedure: inputs, limits, then steps run top to bottom."""

    playbook: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$", description="Playbook name.")
    version: Literal[1] = Field(description="Format version; only 1 exists.")
    title: str = Field(description="One line a responder recognises.")
    description: str = Field("", description="What the playbook is for, at more length than its title.")
    headline_word: str = Field(
        "contained", min_length=1, max_length=40, pattern=r"^[a-z][a-z ]*$",
        description="What an account this playbook handled is said to be in headlines and tickets: contained, "
                    "given back, reinstated ('3 of 3 accounts contained').")
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    limits: Limits = Field(default_factory=Limits)  # type: ignore[arg-type]
    on_failure: Literal["stop", "rollback"] = Field(
        "stop", description="rollback: undo this run's completed changes, newest first, when a step fails."
    )
    steps: list[Step] = Field(min_length=1)

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)
