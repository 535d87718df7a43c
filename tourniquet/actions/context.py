"""What an action gets besides its arguments: who it runs for, and one way to change things.

Every change an action makes goes through :meth:`ActionContext.change`, which is the
single place where dry-run, idempotence, the journal, read-back verification and undo
records are handled — so no action can forget one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from tourniquet.errors import VerificationFailed
from tourniquet.journal import Journal
from tourniquet.site import Site

__all__ = ["ActionContext", "Outcome", "PlannedChange"]

Outcome = Literal["applied", "noop", "planned"]
log = structlog.get_logger("tourniquet")


@dataclass(frozen=True)
class PlannedChange:
    """One change, as a dry-run plan lists it and a report shows it."""

    step: str
    action: str
    system: str
    target: str
    operation: str
    before: dict[str, Any]
    after: dict[str, Any]
    outcome: str
    account: str | None = None  # the account changed; None for a change that is not about one (a ticket)


@dataclass
class ActionContext:
    incident: str
    playbook: str
    step: str
    action: str
    dry_run: bool
    site: Site
    journal: Journal
    undo_action: str | None = None
    changes: list[PlannedChange] = field(default_factory=list)
    #: Intents an earlier run of this incident wrote without an outcome (it died): see :meth:`change`.
    unconfirmed: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    #: Items an action could not handle although it went on with the others (an unknown id among
    #: several): the engine counts each as a failure, so the run ends "completed with errors".
    problems: list[dict[str, str]] = field(default_factory=list)

    def report_problem(self, item: str, error: str, *, kind: str = "", account: str = "") -> None:
        """Record that ``item`` failed while the action went on with the rest."""
        self.problems.append({"item": item, "error": error, "kind": kind, "account": account})

    def undo_call(self, arguments: dict[str, Any]) -> dict[str, Any] | None:
        """The journal's undo record for this step: which action, called with what."""
        if self.undo_action is None:
            return None
        from tourniquet import registry

        spec = registry.get(self.undo_action)
        accepted = spec.parameters.model_fields if spec is not None else arguments
        return {"action": self.undo_action, "arguments": {k: v for k, v in arguments.items() if k in accepted}}

    def change(
        self,
        *,
        system: str,
        target: str,
        operation: str,
        before: dict[str, Any],
        after: dict[str, Any],
        apply: Callable[[], None],
        read_back: Callable[[], dict[str, Any]] | None = None,
        undo: dict[str, Any] | None = None,
        account: str | None = None,
    ) -> Outcome:
        """Make one change the safe way.

        ``before`` and ``after`` are the target's state for the keys the change touches.
        Equal: nothing to do (``noop``). Dry-run: recorded as ``planned``, nothing sent.
        Otherwise an ``intent`` record is written, the change sent, read back and compared
        with ``after``, and the outcome recorded with the undo call that reverses it.
        """
        record = {
            "step": self.step, "action": self.action, "system": system, "target": target,
            "account": account or target, "operation": operation, "before": before, "after": after,
        }
        bound = log.bind(step=self.step, account=account or target, operation=operation)
        key = (system, target, operation)
        if before == after:
            earlier = self.unconfirmed.get(key) if not self.dry_run else None
            if earlier is not None and earlier.get("after") == after and self.unconfirmed.pop(key, None):
                # This change was sent earlier (by a run that died, or by an attempt whose answer was
                # lost) but never confirmed: the state shows it took. Record it now, once, with that
                # attempt's "before" and undo call, so the journal and `undo` stay exact.
                recovered = {**record, "before": earlier.get("before", before)}
                self.journal.write("change", **recovered, outcome="applied", recovered=earlier.get("hash"),
                                   undo=earlier.get("undo", undo))
                self._note(recovered, "applied", account)
                bound.info("change.recovered", system=system)
                return "applied"
            self.journal.write("change", **record, outcome="noop")
            self._note(record, "noop", account)
            bound.info("change.noop", system=system)
            return "noop"
        if self.dry_run:
            self.journal.write("change", **record, outcome="planned")
            self._note(record, "planned", account)
            bound.info("change.planned", system=system, before=before, after=after)
            return "planned"
        # Until its outcome is recorded, a sent change is "unconfirmed": a retry or a re-run that finds
        # the target already in the "after" state records it as applied instead of as a no-op.
        self.unconfirmed[key] = self.journal.write("intent", **record, undo=undo)
        try:
            apply()
        except Exception as exc:
            self.journal.write("change", **record, outcome="failed", error=str(exc))
            bound.error("change.failed", system=system, error=str(exc))
            raise
        if read_back is not None:
            try:
                observed = read_back()
            except Exception as exc:
                # The system accepted the change, then could not be read: it counts as applied (and
                # undoable); the error still fails this attempt, and a retry's no-op confirms it.
                self.unconfirmed.pop(key, None)
                self.journal.write("change", **record, outcome="applied", undo=undo,
                                   unverified=f"read back failed: {exc}")
                self._note(record, "applied", account)
                bound.error("change.unverified", system=system, error=str(exc))
                raise
            if observed != after:
                self.journal.write("change", **record, outcome="failed", observed=observed,
                                   error="read back does not match")
                raise VerificationFailed(
                    f"{operation} on {target}: sent, but reading it back gives {observed} instead of {after}",
                    system=system,
                )
        self.unconfirmed.pop(key, None)
        self.journal.write("change", **record, outcome="applied", undo=undo)
        self._note(record, "applied", account)
        bound.info("change.applied", system=system, before=before, after=after)
        return "applied"

    def _note(self, record: dict[str, Any], outcome: str, account: str | None) -> None:
        self.changes.append(PlannedChange(
            step=record["step"], action=record["action"], system=record["system"], target=record["target"],
            operation=record["operation"], before=record["before"], after=record["after"], outcome=outcome,
            account=account,
        ))
