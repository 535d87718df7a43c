"""What a run gives back: its :class:`RunSummary`, and how items, errors and results are written in it.

The summary is what the report, the Prefect artifacts and the command line read; :func:`label_of`
names an item the same way in labels, refusals and the report, :func:`describe_error` turns any
outcome's error into one line (a located one when it was unexpected), :func:`plain` makes a step's
result JSON-able for later steps and the journal.

May import: pydantic, ``actions.context`` (``PlannedChange``), ``tourniquet.errors``. Imported by:
``engine.run``, ``engine.targets``, and everything that reads a run's outcome (report, flows, cli,
hygiene).
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from tourniquet.actions.context import PlannedChange
from tourniquet.errors import ConnectorError, TourniquetError

__all__ = ["RunSummary", "label_of", "describe_error", "plain"]


@dataclass
class RunSummary:
    incident: str
    playbook: str
    dry_run: bool
    status: str = "running"
    error: str | None = None
    journal: Path | None = None
    report: Path | None = None
    changes: list[PlannedChange] = field(default_factory=list)
    steps: dict[str, str] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    rolled_back: list[dict[str, Any]] = field(default_factory=list)
    #: What was told to whom (sent, waiting in the outbox, or would be sent), one line each.
    notifications: list[str] = field(default_factory=list)

    def accounts(self) -> dict[str, dict[str, str]]:
        """Per account: each operation's outcome (for the report table)."""
        table: dict[str, dict[str, str]] = {}
        for change in self.changes:
            if change.account:
                table.setdefault(change.account, {})[change.operation] = change.outcome
        for failure in self.failures:
            if failure.get("account"):
                table.setdefault(failure["account"], {})[failure["step"]] = "failed: " + failure["error"]
        for refusal in self.refused:
            table.setdefault(refusal["account"], {})[refusal["step"]] = "refused: " + refusal["reason"]
        return table


def label_of(value: Any) -> str:
    """How an item is named in labels and reports: its uid, else its DN, id or name."""
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, dict):
        return str(value.get("uid") or value.get("dn") or value.get("id") or value.get("name") or "")
    if value is None:
        return ""
    return str(value)


def plain(value: Any) -> Any:
    """A step's result as JSON-able data (models dumped), as later steps' expressions read it."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def describe_error(error: BaseException) -> str:
    """One line for the summary and the journal; an unexpected error says where it came from."""
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        return f"bad argument {'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    if isinstance(error, (TourniquetError, ConnectorError)):
        return str(error)
    if isinstance(error, TimeoutError):
        return f"timed out: {error}"
    # An unexpected error is still an outcome to record, with where it came from.
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    return f"{type(error).__name__}: {error}{where}"
