"""The playbook engine: decide what runs next, guard it, record it.

The engine evaluates expressions, applies the guardrails (:mod:`tourniquet.engine.targets`: protected
accounts, blast radius, one writer per account) and keeps step results; it does not do I/O itself.
A step's items run in chunks (:mod:`tourniquet.engine.chunks`); where the chunks run is the
:class:`Executor`'s business — Prefect task runs in a flow run (:mod:`tourniquet.flows.executor`),
plain threads otherwise. What a run gives back is a :class:`~tourniquet.engine.summary.RunSummary`
(re-exported here with the executor and approval names its callers use).

May import: the other ``engine`` modules but ``execute``, ``report`` and ``recover`` (``undo`` only
inside a rollback), ``actions.context``, ``registry``, ``journal``, ``site``, ``model``,
``tourniquet.errors``. Imported by: ``engine.execute``, ``engine.recover``, ``engine.regions_*``,
``flows``, ``hygiene.runner``, ``cli``.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

import structlog

from tourniquet import registry
from tourniquet.actions.context import ActionContext
from tourniquet.engine import expressions
from tourniquet.engine.approvals import ApprovalDecision, ApprovalRequest, Approver, ask_with_timeout, reject_all
from tourniquet.engine.chunks import run_chunk, split
from tourniquet.engine.executor import Chunk, Executor, Invocation, ItemOutcome, StepTimeout, ThreadExecutor
from tourniquet.engine.guardrails import is_protected
from tourniquet.engine.inputs import resolve_inputs
from tourniquet.engine.loader import LoadedPlaybook
from tourniquet.engine.locks import AccountLocks
from tourniquet.engine.playbook import Step
from tourniquet.engine.summary import RunSummary, describe_error, label_of, plain
from tourniquet.engine.targets import TargetGuard
from tourniquet.errors import TourniquetError, TransientError
from tourniquet.journal import Journal
from tourniquet.model import INCIDENT_ID
from tourniquet.outcomes import Outcomes, fold
from tourniquet.site import Site
from tourniquet.untrusted import check_incident_id

__all__ = [
    "Invocation",
    "ItemOutcome",
    "Executor",
    "ThreadExecutor",
    "ApprovalRequest",
    "ApprovalDecision",
    "Approver",
    "reject_all",
    "ask_with_timeout",
    "RunSummary",
    "PlaybookRun",
    "StepFailed",
    "StepTimeout",
    "default_incident_id",
    "is_protected",
    "label_of",
    "INCIDENT_ID",
]

log = structlog.get_logger("tourniquet")


class StepFailed(TourniquetError):
    """A step with ``on_error: fail`` failed; the run stopped there."""


def default_incident_id(playbook: str, inputs: dict[str, Any], day: datetime | None = None) -> str:
    """Same playbook, same inputs, same day → same incident (re-runs resume, never duplicate)."""
    stamp = (day or datetime.now(timezone.utc)).strftime("%Y%m%d")
    digest = hashlib.sha256(
        json.dumps({"playbook": playbook, "inputs": _stable(inputs)}, sort_keys=True, default=str).encode()
    ).hexdigest()[:8]
    return f"inc-{stamp}-{digest}"


def _stable(inputs: dict[str, Any]) -> dict[str, Any]:
    """What identifies an incident: the lists of targets, not free text or time windows."""
    return {k: sorted(str(x) for x in v) for k, v in inputs.items() if isinstance(v, list)}


class OutcomeView(Mapping[str, Any]):
    """``outcome.*`` in a step's expressions: the fold of this run's journal so far, read when first used.

    A ticket's title and body say ``${{ outcome.headline }}`` and ``${{ outcome.summary }}``, never counts
    of their own (:meth:`tourniquet.outcomes.Outcomes.as_dict`). Every run of the playbook for the incident
    is folded: the ticket is the incident's, and a re-run's "already so" does not hide what the first did.
    """

    def __init__(self, run: PlaybookRun) -> None:
        self._run = run
        self._data: dict[str, Any] | None = None

    def _folded(self) -> dict[str, Any]:
        if self._data is None:
            self._data = self._run.outcomes(incident_wide=True).as_dict()
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._folded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._folded())

    def __len__(self) -> int:
        return len(self._folded())


class PlaybookRun:
    """One execution (or dry-run plan) of a loaded playbook for one incident."""

    def __init__(
        self,
        loaded: LoadedPlaybook,
        inputs: dict[str, Any],
        site: Site,
        *,
        incident: str | None = None,
        dry_run: bool = False,
        run_id: str = "",
        executor: Executor | None = None,
        approver: Approver = reject_all,
        on_step: Callable[[str, str], None] | None = None,
    ) -> None:
        self.loaded = loaded
        self.playbook = loaded.playbook
        self.inputs = resolve_inputs(self.playbook, inputs)
        self.site = site
        self.dry_run = dry_run
        self.incident = incident or default_incident_id(self.playbook.playbook, self.inputs)
        check_incident_id(self.incident)  # it names the evidence folder and goes into ticket searches
        # A run id even outside Prefect: rollback must undo this run's changes, not an earlier run's.
        self.run_id = run_id or f"local-{uuid.uuid4()}"
        self.executor: Executor = executor or ThreadExecutor()
        self.approver = approver
        self.on_step = on_step
        self.results: dict[str, Any] = {}
        self._deadline = 0.0
        folder = site.plan_dir(self.incident) if dry_run else site.incident_dir(self.incident)
        name = f"plan-{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}.jsonl" if dry_run else "journal.jsonl"
        self.journal = Journal(folder / name, incident=self.incident, run=self.run_id)
        self.locks = AccountLocks(site.config.state_dir / "locks", run=self.run_id, incident=self.incident)
        self.summary = RunSummary(self.incident, self.playbook.playbook, dry_run, journal=self.journal.path)
        self.guard = TargetGuard(
            site=site, journal=self.journal, summary=self.summary, incident=self.incident,
            playbook=self.playbook.playbook, dry_run=dry_run, approver=approver,
            limit=min(self.playbook.limits.max_accounts, site.config.limits.max_accounts_ceiling),
            protected=list(self.playbook.limits.protected) + list(site.config.limits.protected),
            approval_timeout=min(
                expressions.parse_duration(self.playbook.limits.approval_timeout).total_seconds(),
                expressions.parse_duration(site.config.limits.approval_timeout_ceiling).total_seconds(),
            ),
        )

    # -- scope

    def scope(self, item: Any = None, with_item: bool = False) -> dict[str, Any]:
        scope: dict[str, Any] = {
            "inputs": self.inputs,
            "steps": self.results,
            "limits": self.playbook.limits.model_dump(),
            "incident": {"id": self.incident, "playbook": self.playbook.playbook, "dry_run": self.dry_run,
                         "started": self.started.isoformat()},
        }
        if with_item:
            scope["item"] = item
        scope["outcome"] = OutcomeView(self)
        return scope

    def outcomes(self, *, incident_wide: bool = False) -> Outcomes:
        """This run's outcomes so far, folded from its journal (what the report and the command say);
        ``incident_wide``: every run of this playbook for the incident (what the incident's ticket says)."""
        try:
            if incident_wide:
                return fold(self.journal.records(), playbook=self.playbook.playbook, dry_run=self.dry_run)
            return fold(self.journal.records(), run=self.run_id, dry_run=self.dry_run)
        except Exception as exc:  # an unreadable journal is said, not hidden behind a headline
            outcomes = Outcomes(dry_run=self.dry_run)
            outcomes.problems.append(f"the journal could not be read: {describe_error(exc)}")
            return outcomes

    # -- main loop

    def execute(self) -> RunSummary:
        self.started = datetime.now(timezone.utc)
        bind = structlog.contextvars.bound_contextvars(
            incident=self.incident, playbook=self.playbook.playbook, dry_run=self.dry_run
        )
        with bind:
            self.summary.directory_transport = self.site.directory_transport
            self.journal.write(
                "run", status="started", playbook=self.playbook.playbook, file=self.loaded.file,
                inputs=self.inputs, dry_run=self.dry_run, site=self.site.name, word=self.playbook.headline_word,
                directory_transport=self.summary.directory_transport,
            )
            log.info("run.started", inputs=self.inputs)
            try:
                for step in self.playbook.steps:
                    self._run_step(step)
                self.summary.status = "planned" if self.dry_run else "completed"
                if self.summary.failures:  # steps that continue on error still make the run's outcome
                    self.summary.status += " with errors"
                    first = self.summary.failures[0]
                    self.summary.error = (f"{len(self.summary.failures)} call(s) failed in steps that continue on "
                                          f"error; first: {first['step']} {first['item']}: {first['error']}")
            except Exception as exc:  # whatever stopped the run, the journal and the summary say so
                self.summary.status = "failed"
                self.summary.error = describe_error(exc)
                log.error("run.failed", error=str(exc))
                if self.playbook.on_failure == "rollback" and not self.dry_run:
                    self._rollback()
            finally:
                self.locks.release()
                self.summary.results = self.results
                self.journal.write("run", status=self.summary.status, error=self.summary.error)
                log.info("run.finished", status=self.summary.status)
        self.summary.outcomes = self.outcomes()
        return self.summary

    def _run_step(self, step: Step) -> None:
        with structlog.contextvars.bound_contextvars(step=step.id):
            spec = registry.get(step.action)
            assert spec is not None  # the loader checked it
            if step.if_ is not None:
                condition = step.if_ if isinstance(step.if_, bool) else expressions.evaluate(
                    step.if_ if "${{" in step.if_ else "${{ " + step.if_ + " }}", self.scope()
                )
                if not condition:
                    self.results[step.id] = None
                    self.summary.steps[step.id] = "skipped"
                    self.journal.write("step", step=step.id, status="skipped", reason="if is false")
                    return
            if step.for_each is None:
                items: list[Any] = [None]
            else:
                evaluated = expressions.evaluate(step.for_each, self.scope())
                if not isinstance(evaluated, list):
                    raise StepFailed(f"step {step.id}: for_each gave a {type(evaluated).__name__}, not a list")
                items = evaluated
            invocations = [self._invocation(step, spec, item, step.for_each is not None) for item in items]
            deadline = self._deadline = time.monotonic() + step.timeout
            with self.journal.group():
                invocations, keys = self.guard.admit(step, spec, invocations)  # nothing sent yet
                self.journal.write("step", step=step.id, action=step.action, status="started",
                                   items=len(invocations))
            if self.on_step:
                self.on_step(step.id, "started")
            outcomes: list[ItemOutcome] = []
            if invocations and keys and not self.dry_run:
                try:  # one writer per account: this run holds them until it ends
                    self.locks.ensure(keys, timeout=max(0.0, deadline - time.monotonic()))
                    self.journal.refresh()  # what a run that held them before us recorded
                except TransientError as exc:
                    outcomes = [ItemOutcome(i, error=exc) for i in invocations]
            if invocations and not outcomes:
                outcomes = self.executor.run(step, split(step, invocations), self._work, deadline)
            self._collect(step, spec, outcomes)

    def _work(self, chunk: Chunk) -> list[ItemOutcome]:
        """What one chunk does, wherever the executor runs it."""
        return run_chunk(chunk, site=self.site, journal=self.journal, deadline=self._deadline)

    def _invocation(self, step: Step, spec: registry.ActionSpec, item: Any, with_item: bool) -> Invocation:
        arguments = expressions.evaluate(step.with_, self.scope(item, with_item))
        context = ActionContext(
            incident=self.incident, playbook=self.playbook.playbook, step=step.id, action=spec.name,
            dry_run=self.dry_run, site=self.site, journal=self.journal, undo_action=step.undo or spec.undo,
            approver=self._ask,
        )
        label = step.id if not with_item else f"{step.id}[{label_of(item) or '?'}]"
        return Invocation(label=label, step=step, spec=spec, arguments=arguments, context=context, item=item)

    def _ask(self, request: ApprovalRequest) -> ApprovalDecision:
        return ask_with_timeout(self.approver, request)

    # -- results

    def _collect(self, step: Step, spec: registry.ActionSpec, outcomes: list[ItemOutcome]) -> None:
        results: list[Any] = []
        failed: list[dict[str, Any]] = []
        with self.journal.group():
            for outcome in outcomes:
                self.summary.changes.extend(outcome.changes)
                for problem in outcome.problems:  # the action went on without these items
                    partial = {"step": step.id, **problem}
                    self.summary.failures.append(partial)
                    self.journal.write("failure", **partial)
                if outcome.error is None:
                    results.append(plain(outcome.result))
                    continue
                account = label_of(outcome.invocation.arguments.get(spec.target or "")) if spec.target else ""
                message = describe_error(outcome.error)
                failure = {"step": step.id, "item": label_of(outcome.invocation.item), "account": account,
                           "error": message, "kind": type(outcome.error).__name__}
                failed.append(failure)
                self.summary.failures.append(failure)
                self.journal.write("failure", **failure)
                log.error("step.item_failed", account=account, error=message)
            if step.for_each is None:
                self.results[step.id] = results[0] if results else None
            else:
                skipped = [r for r in self.summary.refused if r["step"] == step.id]
                self.results[step.id] = {"results": results, "failed": failed, "skipped": skipped,
                                         "count": len(results)}
            self.guard.remember_accounts(self.results[step.id])
            status = "failed" if failed else "completed"
            self.summary.steps[step.id] = status if not failed or step.on_error == "fail" else "completed with errors"
            self.journal.write("step", step=step.id, status=status, succeeded=len(results), failed=len(failed))
        if self.on_step:
            self.on_step(step.id, status)
        if failed and step.on_error == "fail":
            raise StepFailed(f"step {step.id} failed for {len(failed)} of {len(outcomes)}: {failed[0]['error']}")

    # -- compensation

    def _rollback(self) -> None:
        from tourniquet.engine.undo import undo_records

        mine = [r for r in self.journal.records() if r.get("type") == "change" and r.get("outcome") == "applied"
                and r.get("run") == self.run_id and r.get("incident") == self.incident and r.get("undo")]
        log.warning("run.rollback", changes=len(mine))
        self.summary.rolled_back = undo_records(mine, self.site, self.journal, self.playbook.playbook)
        self.summary.status = "rolled back"
