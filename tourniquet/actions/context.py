"""What an action gets besides its arguments: who it runs for, and one way to change things.

Every change an action makes goes through :meth:`ActionContext.change`, which is the single place
where dry-run, idempotence, the journal, read-back verification and undo records are handled — so
no action can forget one of them. Actions ask the context, not the journal file, what the incident
already did (:meth:`ActionContext.already_applied`), and ask a person through it
(:meth:`ActionContext.approve`).

A chunk of accounts runs each changing action twice (:mod:`tourniquet.engine.chunks`): first
*planning* — the action reads and decides, and :meth:`change` only notes the intent — then, once the
chunk's intents are on disk together, *applying* with those intents *prepared*.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import structlog

from tourniquet.errors import VerificationFailed
from tourniquet.journal import Journal, change_key
from tourniquet.model import ApprovalDecision, ApprovalRequest, Approver
from tourniquet.site import Site
from tourniquet.storage import sync_paths

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
    implied_by: str = ""  # an earlier change of the run made this one by itself (see ActionContext.change)


def _nobody(request: ApprovalRequest) -> ApprovalDecision:
    return ApprovalDecision(False, "", "no approver available outside a Prefect flow run")


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
    #: Planning pass of a chunk: :meth:`change` notes the intent in :attr:`intents` and sends nothing;
    #: ``dry_run`` is true meanwhile, so the action behaves as in a plan (no read-back checks, no files).
    planning: bool = False
    intents: list[dict[str, Any]] = field(default_factory=list)
    #: Applying pass: intents already on disk (written for the whole chunk), consumed by :meth:`change`.
    prepared: list[dict[str, Any]] = field(default_factory=list)
    #: Files written for the evidence, made durable together before the chunk's records (see :meth:`written`).
    unsynced: list[Path] | None = None
    #: The engine's approver, with its timeout rule (no answer in time is a no).
    approver: Approver = _nobody
    #: Each change is an INFO line when the call runs alone; in a chunk of many, DEBUG (the chunk's
    #: own line sums them up, and the journal has every one).
    verbose: bool = True

    # -- what the incident already did, and asking a person

    def already_applied(self, target: str, operation: str) -> bool:
        """Whether this incident already applied ``operation`` to ``target`` (the journal index, no scan)."""
        return bool(self.journal.applied(target, operation))

    def already_planned(self, target: str, operation: str) -> bool:
        """Whether this dry run planned ``operation`` on ``target`` in an earlier step (the plan's index)."""
        return (target, operation) in self.journal.index.planned

    def approve(self, description: str, timeout_seconds: float) -> ApprovalDecision:
        """Ask a person (the Prefect form in a flow run); no answer in time, or nobody to ask, is a no."""
        return self.approver(ApprovalRequest(
            incident=self.incident, playbook=self.playbook, step=self.step, reason=description.splitlines()[0][:200]
            if description else "", accounts=[], limit=0, timeout_seconds=timeout_seconds, description=description))

    def written(self, path: Path) -> None:
        """An evidence file was written: durable before the records that name it (now, or with the chunk)."""
        if self.unsynced is None:
            sync_paths([path])
        else:
            self.unsynced.append(path)
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

    # -- the one way to change something

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
        implied_by: str = "",
    ) -> Outcome:
        """Make one change the safe way.

        ``before`` and ``after`` are the target's state for the keys the change touches.
        Equal: nothing to do (``noop``). Dry-run: recorded as ``planned``, nothing sent.
        Otherwise an ``intent`` record is on disk before the change is sent (prepared for the
        whole chunk, or written now); the change is sent, read back and compared with ``after``,
        and the outcome recorded with the undo call that reverses it. ``implied_by``: an earlier
        change of the run makes this one by itself (a password replacement sets the reset flag), so
        the plan and the run both say so instead of counting it as a change of its own.
        """
        record: dict[str, Any] = {
            "step": self.step, "action": self.action, "system": system, "target": target,
            "account": account, "operation": operation, "before": before, "after": after,
        }
        if implied_by:
            record["implied_by"] = implied_by
        bound = log.bind(step=self.step, account=account or target, operation=operation)
        key = change_key(record)
        if before == after:
            if self.planning:
                return "noop"
            earlier = self.journal.index.unconfirmed.get(key) if not self.dry_run else None
            if earlier is not None:
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
            bound.debug("change.noop", system=system)
            return "noop"
        if self.planning:
            self.intents.append({**record, "undo": undo})
            return "planned"
        if self.dry_run:
            self.journal.write("change", **record, outcome="planned")
            self._note(record, "planned", account)
            bound.debug("change.planned", system=system, before=before, after=after)
            return "planned"
        if not self._take_prepared(record, undo):
            self.journal.write("intent", **record, undo=undo)
            if self.unsynced:  # evidence files first: the records committed now may name them
                sync_paths(self.unsynced)
                self.unsynced.clear()
            self.journal.commit()  # the intent is on disk before the change is sent
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
        self.journal.write("change", **record, outcome="applied", undo=undo)
        self._note(record, "applied", account)
        (bound.info if self.verbose else bound.debug)("change.applied", system=system, before=before, after=after)
        return "applied"

    def _take_prepared(self, record: dict[str, Any], undo: dict[str, Any] | None) -> bool:
        """Consume the chunk's prepared intent for exactly this change, if there is one."""
        for index, intent in enumerate(self.prepared):
            if intent.get("undo") == undo and all(intent.get(k) == v for k, v in record.items()):
                del self.prepared[index]
                return True
        return False

    def _note(self, record: dict[str, Any], outcome: str, account: str | None) -> None:
        self.changes.append(PlannedChange(
            step=record["step"], action=record["action"], system=record["system"], target=record["target"],
            operation=record["operation"], before=record["before"], after=record["after"], outcome=outcome,
            account=account, implied_by=str(record.get("implied_by", "")),
        ))
