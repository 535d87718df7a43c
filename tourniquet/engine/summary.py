"""What a run gives back: its :class:`RunSummary`, and how items, errors and results are written in it.

The summary is what the report, the Prefect artifacts and the command line read (its ``outcomes``,
folded from the journal, are the words they all use); :func:`label_of`
names an item the same way in labels, refusals and the report, :func:`describe_error` turns any
outcome's error into one line (a located one when it was unexpected), :func:`plain` makes a step's
result JSON-able for later steps and the journal.

May import: pydantic, ``actions.context`` (``PlannedChange``), ``tourniquet.errors``, ``outcomes``. Imported by:
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
from tourniquet.outcomes import Outcomes

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
    #: What the run did per account, folded from its journal when it ended (what every renderer says).
    outcomes: Outcomes | None = None
    #: What was told to whom (sent, waiting in the outbox, or would be sent), one line each.
    notifications: list[str] = field(default_factory=list)
    #: The LDAP library the directory was reached through ("ldap3" or "libldap"), as the run's journal says.
    directory_transport: str | None = None

    def outcome(self) -> Outcomes:
        """The fold of the run's journal (an empty one before the run ended)."""
        return self.outcomes if self.outcomes is not None else Outcomes(dry_run=self.dry_run)

    def as_result(self) -> dict[str, Any]:
        """What a flow returns and the command prints: figures and the outcome (headline, lines, exit code)."""
        outcomes = self.outcome()
        return {
            "incident": self.incident, "playbook": self.playbook, "status": self.status, "dry_run": self.dry_run,
            "error": self.error, "journal": str(self.journal), "report": str(self.report), "steps": self.steps,
            "failures": self.failures, "refused": self.refused, "notifications": self.notifications,
            "outcome": {**outcomes.as_dict(), "lines": outcomes.lines()},
        }


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
