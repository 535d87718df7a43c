"""The playbook engine: decide what runs next, guard it, record it.

The engine evaluates expressions, applies the guardrails (protected accounts, blast radius,
one writer per account) and keeps step results; it does not do I/O itself. A step's items run in
chunks (:mod:`tourniquet.engine.chunks`); where the chunks run is the :class:`Executor`'s business
— Prefect task runs in a flow run (:mod:`tourniquet.flows.executor`), plain threads otherwise.
"""

from __future__ import annotations

import hashlib
import json
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel, ValidationError

from tourniquet import registry
from tourniquet.actions.context import ActionContext, PlannedChange
from tourniquet.engine import expressions
from tourniquet.engine.approvals import ApprovalDecision, ApprovalRequest, Approver, ask_with_timeout, reject_all
from tourniquet.engine.chunks import run_chunk, split
from tourniquet.engine.executor import Chunk, Executor, Invocation, ItemOutcome, StepTimeout, ThreadExecutor
from tourniquet.engine.guardrails import canonical_dn, identity_of, is_protected
from tourniquet.engine.inputs import resolve_inputs
from tourniquet.engine.loader import LoadedPlaybook
from tourniquet.engine.locks import AccountLocks
from tourniquet.engine.playbook import Step
from tourniquet.errors import (
    ApprovalRejected,
    BlastRadiusExceeded,
    ConnectorError,
    GuardrailError,
    PlaybookError,
    TourniquetError,
    TransientError,
)
from tourniquet.journal import Journal
from tourniquet.model import INCIDENT_ID, dn_within
from tourniquet.site import Site

__all__ = [
    "Invocation",
    "ItemOutcome",
    "Executor",
    "ThreadExecutor",
    "ApprovalRequest",
    "ApprovalDecision",
    "Approver",
    "reject_all",
    "RunSummary",
    "PlaybookRun",
    "StepFailed",
    "StepTimeout",
    "default_incident_id",
    "is_protected",
    "label_of",
]

log = structlog.get_logger("tourniquet")


class StepFailed(TourniquetError):
    """A step with ``on_error: fail`` failed; the run stopped there."""


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


def _label_of(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, dict):
        return str(value.get("uid") or value.get("dn") or value.get("id") or value.get("name") or "")
    if value is None:
        return ""
    return str(value)


def label_of(value: Any) -> str:
    """How an item is named in labels and reports: its uid, else its DN, id or name."""
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, dict):
        return str(value.get("uid") or value.get("dn") or value.get("id") or value.get("name") or "")
    if value is None:
        return ""
    return str(value)


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
        if not INCIDENT_ID.match(self.incident):
            # It names the evidence folder and goes into ticket searches (TicketSQL, JQL): a safe alphabet only.
            raise PlaybookError(f"incident id {self.incident!r} must be letters, digits and . _ : - "
                                f"(at most 128, starting with a letter or digit)", path="incident")
        # A run id even outside Prefect: rollback must undo this run's changes, not an earlier run's.
        self.run_id = run_id or f"local-{uuid.uuid4()}"
        self.executor: Executor = executor or ThreadExecutor()
        self.approver = approver
        self.on_step = on_step
        self.results: dict[str, Any] = {}
        self.touched: set[str] = set()
        self.approved_up_to = 0
        #: Accounts as the directory gave them to earlier steps of this run (canonical DN → identity).
        self.seen: dict[str, dict[str, Any]] = {}
        self._deadline = 0.0
        folder = site.plan_dir(self.incident) if dry_run else site.incident_dir(self.incident)
        name = f"plan-{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}.jsonl" if dry_run else "journal.jsonl"
        self.journal = Journal(folder / name, incident=self.incident, run=self.run_id)
        self.locks = AccountLocks(site.config.state_dir / "locks", run=self.run_id, incident=self.incident)
        self.summary = RunSummary(self.incident, self.playbook.playbook, dry_run, journal=self.journal.path)
        self.limit = min(self.playbook.limits.max_accounts, site.config.limits.max_accounts_ceiling)
        self.protected = list(self.playbook.limits.protected) + list(site.config.limits.protected)
        self.approval_timeout = min(
            expressions.parse_duration(self.playbook.limits.approval_timeout).total_seconds(),
            expressions.parse_duration(site.config.limits.approval_timeout_ceiling).total_seconds(),
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
        return scope

    # -- main loop

    def execute(self) -> RunSummary:
        self.started = datetime.now(timezone.utc)
        bind = structlog.contextvars.bound_contextvars(
            incident=self.incident, playbook=self.playbook.playbook, dry_run=self.dry_run
        )
        with bind:
            self.journal.write(
                "run", status="started", playbook=self.playbook.playbook, file=self.loaded.file,
                inputs=self.inputs, dry_run=self.dry_run, site=self.site.name,
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
                self.summary.error = _describe(exc)
                log.error("run.failed", error=str(exc))
                if self.playbook.on_failure == "rollback" and not self.dry_run:
                    self._rollback()
            finally:
                self.locks.release()
                self.summary.results = self.results
                self.journal.write("run", status=self.summary.status, error=self.summary.error)
                log.info("run.finished", status=self.summary.status)
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
                invocations, keys = self._guard(step, spec, invocations)
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

    # -- guardrails

    def _guard(self, step: Step, spec: registry.ActionSpec,
               invocations: list[Invocation]) -> tuple[list[Invocation], list[str]]:
        """Drop protected targets, then ask for approval when the blast radius exceeds the limit.

        Protection is checked against the account as the step names it *and* as the directory
        has it (DN, uid, groups): as an earlier step of this run read it (resolve), or read now for an
        account this run has not seen, so a hand-written or stale account cannot slip through.
        Nothing has been sent for this step when this runs. Returns the allowed invocations and the
        canonical keys of the accounts they change.
        """
        if not spec.changes or spec.target is None:
            return invocations, []
        allowed: list[Invocation] = []
        keys: set[str] = set()
        for invocation in invocations:
            account = invocation.arguments.get(spec.target)
            live = self._known_identity(account)
            pattern = is_protected(account, self.protected, also=[live] if live else ())
            outside = self._outside_base(account, live)
            if pattern is not None or outside:
                label = label_of(account)
                reason = f"protected by {pattern!r}" if pattern is not None else outside
                self.summary.refused.append({"step": step.id, "account": label, "reason": reason})
                self.journal.write("refused", step=step.id, action=spec.name, account=label, reason=reason)
                log.warning("account.protected", account=label, pattern=pattern)
                continue
            key = _account_key(live or account)
            if key in keys:
                # Two spellings of one entry in one step: change it once (two concurrent changes of the
                # same entry would both read "before" and both be recorded as applied).
                self.journal.write("duplicate", step=step.id, account=label_of(account), key=key)
                log.warning("account.duplicate", account=label_of(account))
                continue
            allowed.append(invocation)
            keys.add(key)
        wanted = self.touched | keys
        if len(wanted) > max(self.limit, self.approved_up_to):
            self._approve(step, sorted(wanted))
        self.touched = wanted
        return allowed, sorted(keys)

    def _outside_base(self, account: Any, live: dict[str, Any] | None) -> str:
        """A reason when the entry is not under the site's base_dn (playbooks only change accounts there)."""
        base = self.site.config.directory.base_dn
        for identity in (identity_of(account), live or {}):
            dn = identity.get("dn") or ""
            if dn and not dn_within(dn, base):
                return f"outside {base}"
        return ""

    def _known_identity(self, account: Any) -> dict[str, Any] | None:
        """The account as the directory gave it to this run, else as the directory has it now (None if unknown)."""
        claimed = identity_of(account)
        if not claimed["dn"]:
            return None
        seen = self.seen.get(canonical_dn(claimed["dn"]))
        if seen is not None and _same_identity(seen, claimed):
            return seen
        return self._live_identity(claimed["dn"])

    def _live_identity(self, dn: str) -> dict[str, Any] | None:
        """The account's DN, uid and groups as the directory has them now (None if it cannot say)."""
        config = self.site.config.directory
        try:
            attributes = self.site.directory.read(dn, [config.uid_attribute, "memberOf", "entryDN"])
        except ConnectorError as exc:
            log.warning("guard.live_read_failed", dn=dn, error=str(exc))
            return None  # the claimed identity is still checked; the action itself will meet the same error
        if attributes is None:
            return None
        return {
            "dn": (attributes.get("entryDN") or [dn])[0],
            "uid": (attributes.get(config.uid_attribute) or [""])[0],
            "groups": attributes.get("memberOf", []),
        }

    def _remember_accounts(self, value: Any, depth: int = 0) -> None:
        """Note every account (dn, uid, groups) a step's result holds: the directory's view, read by this run.

        Accounts sit near the top of a result (``accounts: [...]``, ``results: [...]``): three levels are
        looked at, not every attribute of every snapshot.
        """
        if depth > 3:
            return
        if isinstance(value, dict):
            if isinstance(value.get("dn"), str) and "uid" in value and isinstance(value.get("groups"), list):
                self.seen[canonical_dn(value["dn"])] = identity_of(value)
            for key, inner in value.items():
                if isinstance(inner, (dict, list)) and key != "attributes":
                    self._remember_accounts(inner, depth + 1)
        elif isinstance(value, list):
            for inner in value:
                self._remember_accounts(inner, depth + 1)

    def _approve(self, step: Step, accounts: list[str]) -> None:
        reason = f"{len(accounts)} accounts exceed the limit of {self.limit}"
        if self.dry_run:
            self.journal.write("approval", step=step.id, status="would be required", reason=reason, accounts=accounts)
            self.summary.approvals.append({"step": step.id, "status": "would be required", "reason": reason})
            return
        request = ApprovalRequest(
            incident=self.incident, playbook=self.playbook.playbook, step=step.id, reason=reason,
            accounts=accounts, limit=self.limit, timeout_seconds=self.approval_timeout,
        )
        self.journal.write("approval", step=step.id, status="requested", reason=reason, accounts=accounts,
                           timeout_seconds=self.approval_timeout)
        self.journal.commit()
        decision = ask_with_timeout(self.approver, request)
        record = {"step": step.id, "status": "approved" if decision.approved else "rejected",
                  "approver": decision.approver, "comment": decision.comment, "reason": reason}
        self.journal.write("approval", **record)
        self.summary.approvals.append(record)
        if not decision.approved:
            error: GuardrailError = (
                BlastRadiusExceeded(f"{reason} and nobody approved ({decision.comment})")
                if not decision.approver else ApprovalRejected(f"{decision.approver} rejected: {decision.comment}")
            )
            raise error
        self.approved_up_to = len(accounts)

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
                    results.append(_plain(outcome.result))
                    continue
                account = label_of(outcome.invocation.arguments.get(spec.target or "")) if spec.target else ""
                message = _describe(outcome.error)
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
            self._remember_accounts(self.results[step.id])
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


def _same_identity(seen: dict[str, Any], claimed: dict[str, Any]) -> bool:
    """The claimed account says no more and no less than what the directory gave this run."""
    return (canonical_dn(seen["dn"]) == canonical_dn(claimed["dn"]) and seen["uid"] == claimed["uid"]
            and sorted(map(str, seen["groups"])) == sorted(map(str, claimed["groups"])))


def _account_key(account: Any) -> str:
    """One key per directory entry (canonical DN), so two spellings of an account count once."""
    identity = identity_of(account)
    return canonical_dn(identity["dn"]) if identity["dn"] else "uid=" + identity["uid"].strip().lower()


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _describe(error: BaseException) -> str:
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

