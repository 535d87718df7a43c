"""Prefect flows: run a playbook (``run_playbook``) and the responder's form (``respond``).

Each step of the playbook is a Prefect task run named after the step (``lock[jdupont]``
for a for_each item), so the Prefect UI shows the incident procedure as it runs.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog
from prefect import flow, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.context import FlowRunContext
from prefect.states import State
from prefect.utilities.annotations import quote
from pydantic import Field
from typing_extensions import Annotated

from tourniquet.actions.tickets import report_links as ticket_links
from tourniquet.config import load_site
from tourniquet.errors import TourniquetError, TransientError
from tourniquet.flows.approval import prefect_approver, step_timeout
from tourniquet.flows.engine import (
    Approver,
    Invocation,
    ItemOutcome,
    PlaybookRun,
    RunSummary,
    StepTimeout,
    _label_of,
    reject_all,
)
from tourniquet.flows.events import emit_change, emit_incident
from tourniquet.flows.loader import LoadedPlaybook, load_playbook
from tourniquet.flows.locks import account_locks
from tourniquet.flows.playbook import Step
from tourniquet.flows.report import account_rows, render_markdown, write_report
from tourniquet.logs import configure_logging
from tourniquet.site import Site

log = structlog.get_logger("tourniquet")

__all__ = [
    "run_playbook", "respond", "execute_playbook", "PrefectExecutor", "find_playbook", "RunFailed", "artifact_key",
]


class RunFailed(TourniquetError):
    """The playbook run ended failed; raised so that Prefect marks the flow run Failed."""


def _transient_only(task: Any, task_run: TaskRun, state: State) -> bool:
    """Retry only what may work next time: an unreachable or busy system, not a refusal."""
    try:
        state.result()
    except TransientError:
        return True
    except BaseException:
        return False
    return False


def _changed_account(invocation: Invocation) -> str | None:
    """The account a changing call targets (None for reads, plans and calls without a target)."""
    spec = invocation.spec
    if not spec.changes or spec.target is None or invocation.context.dry_run:
        return None
    return _label_of(invocation.arguments.get(spec.target)) or None


@task(name="action", task_run_name="{label}", cache_policy=NO_CACHE, persist_result=False)
def run_action(label: str, invocation: Invocation) -> Any:
    """One call; each change it applies becomes an event."""
    seen = len(invocation.context.changes)  # a retry must not announce earlier attempts' changes again
    try:
        with step_timeout(invocation.step.timeout):
            return invocation()
    finally:
        context = invocation.context
        for change in context.changes[seen:]:
            emit_change(change, context.incident, context.playbook)


class PrefectExecutor:
    """One Prefect task run per action call; for_each items at most ``concurrency`` at a time.

    While a batch of changing calls runs, this run holds the accounts' locks
    (:mod:`tourniquet.flows.locks`): no other run changes those accounts meanwhile.
    """

    def __init__(self) -> None:
        #: called with (step, calls done, calls in the step) after each batch: the progress artifact
        self.on_batch: Callable[[Step, int, int], None] | None = None

    def run(self, step: Step, invocations: Sequence[Invocation]) -> list[ItemOutcome]:
        configured = run_action.with_options(
            retries=step.retries,
            retry_delay_seconds=step.retry_delay,
            retry_condition_fn=_transient_only,
        )
        # Prefect cannot interrupt a blocking call in a thread; each connector has its own network
        # timeout, and the step timeout below stops the run from waiting on a call that never returns.
        deadline = time.monotonic() + step.timeout
        outcomes: list[ItemOutcome] = []
        for start in range(0, len(invocations), step.concurrency):
            batch = invocations[start:start + step.concurrency]
            accounts = [a for a in (_changed_account(i) for i in batch) if a]
            try:
                with account_locks(accounts, timeout_seconds=max(1.0, deadline - time.monotonic())):
                    outcomes.extend(self._run_batch(step, batch, configured, deadline))
            except TransientError as exc:  # the accounts stayed busy: these calls never started
                outcomes.extend(ItemOutcome(i, error=exc) for i in batch[len(outcomes) - start:])
            if self.on_batch is not None:
                self.on_batch(step, len(outcomes), len(invocations))
        return outcomes

    @staticmethod
    def _run_batch(step: Step, batch: Sequence[Invocation], configured: Any, deadline: float) -> list[ItemOutcome]:
        futures = [configured.submit(i.label, quote(i)) for i in batch]
        outcomes: list[ItemOutcome] = []
        for invocation, future in zip(batch, futures):
            try:
                remaining = max(0.0, deadline - time.monotonic())
                outcomes.append(ItemOutcome(invocation, result=future.result(timeout=remaining)))
            except TimeoutError:
                outcomes.append(ItemOutcome(invocation, error=StepTimeout(
                    f"step {step.id} did not finish within {step.timeout:g}s")))
            except Exception as exc:  # the engine decides what a failure means
                outcomes.append(ItemOutcome(invocation, error=exc))
        return outcomes


def find_playbook(name: str) -> Path:
    """A path, or a playbook name looked up in $TOURNIQUET_PLAYBOOKS, ./playbooks, then the repo's playbooks/."""
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") and candidate.exists():
        return candidate
    folders = [os.environ.get("TOURNIQUET_PLAYBOOKS", ""), "playbooks", str(Path(__file__).resolve().parents[2] / "playbooks")]
    for folder in filter(None, folders):
        for suffix in (".yaml", ".yml", ""):
            path = Path(folder) / f"{name}{suffix}"
            if path.is_file():
                return path
    return candidate  # the loader reports it as not found, with the name


def _in_flow_run() -> str:
    context = FlowRunContext.get()
    return str(context.flow_run.id) if context and context.flow_run else ""


def execute_playbook(
    playbook: str,
    inputs: dict[str, Any],
    *,
    dry_run: bool,
    incident: str | None = None,
    site: str | None = None,
    executor: Any = None,
    approver: Approver = reject_all,
) -> RunSummary:
    """Load, run, report: the part shared by the flows and ``tourniquet plan``.

    In a flow run this also publishes the artifacts (report, accounts, progress, links)
    and the incident events.
    """
    configure_logging()
    loaded = load_playbook(find_playbook(playbook))
    runtime = Site(load_site(site))
    run_id = _in_flow_run()
    try:
        run = PlaybookRun(loaded, inputs, runtime, incident=incident, dry_run=dry_run, run_id=run_id,
                          executor=executor, approver=approver)
        if run_id:
            _track_progress(run, executor)
            if not dry_run and not run.journal.path.exists():
                emit_incident("opened", run.incident, loaded.playbook.playbook, inputs=run.inputs, flow_run=run_id)
        summary = run.execute()
        _add_step_approvals(summary, run)
        links = _links(summary, loaded)
        tickets = ticket_links(summary.results)
        shown = {name: target for name, target in links.items() if not (name == "ticket" and tickets)}
        markdown = render_markdown(summary, run.inputs, links={**shown, **tickets})
        write_report(summary, markdown)
        if not dry_run and summary.journal is not None and summary.journal.exists():
            from tourniquet.evidence import seal  # the bundle's manifest, last: it covers the report too

            seal(summary.journal.parent, incident=summary.incident, note=f"{summary.playbook}: {summary.status}")
        if run_id:
            _publish(summary, markdown, links)
            emit_incident(summary.status, summary.incident, summary.playbook, dry_run=summary.dry_run,
                          error=summary.error, flow_run=run_id)
        return summary
    finally:
        runtime.close()


def artifact_key(incident: str, suffix: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    base = re.sub(r"[^a-z0-9-]+", "-", f"tourniquet-{incident}".lower()).strip("-")
    return re.sub(r"-{2,}", "-", f"{base}-{suffix}")


class _Progress:
    """A progress artifact moved forward after each step and each for_each batch."""

    def __init__(self, run: PlaybookRun) -> None:
        self.total = max(1, len(run.playbook.steps))
        self.done = 0
        self.id = create_progress_artifact(
            0.0, key=artifact_key(run.incident, "progress"),
            description=f"{run.playbook.playbook}: steps done out of {self.total}",
        )

    def _set(self, fraction_of_step: float = 0.0) -> None:
        value = min(100.0, 100.0 * (self.done + fraction_of_step) / self.total)
        try:
            update_progress_artifact(self.id, value)  # type: ignore[arg-type]  # sync context: a UUID
        except Exception as exc:  # progress is a courtesy: never fail the containment over it
            log.warning("progress.not_updated", error=str(exc))

    def on_step(self, step: str, status: str) -> None:
        if status != "started":
            self.done += 1
            self._set()

    def on_batch(self, step: Step, finished: int, total: int) -> None:
        if total > 1:
            self._set(finished / total)


def _track_progress(run: PlaybookRun, executor: Any) -> None:
    try:
        progress = _Progress(run)
    except Exception as exc:
        log.warning("progress.not_created", error=str(exc))
        return
    run.on_step = progress.on_step
    if isinstance(executor, PrefectExecutor):
        executor.on_batch = progress.on_batch


def _add_step_approvals(summary: RunSummary, run: PlaybookRun) -> None:
    """Decisions of ``flow.approval`` steps (the engine records the blast-radius ones itself)."""
    known = {(a["step"], a["status"]) for a in summary.approvals}
    for record in run.journal.records():
        if record.get("type") != "approval" or record.get("run") != run.run_id:
            continue
        entry = {"step": record.get("step", ""), "status": record.get("status", ""),
                 "approver": record.get("approver", ""), "comment": record.get("comment", ""),
                 "reason": str(record.get("reason", ""))[:200]}
        if entry["status"] in ("approved", "rejected", "would be required") and (entry["step"], entry["status"]) not in known:
            summary.approvals.append(entry)
            known.add((entry["step"], entry["status"]))


def _links(summary: RunSummary, loaded: LoadedPlaybook) -> dict[str, str]:
    """Where the proof is: the evidence folder, and the ticket when a tickets step returned one."""
    links: dict[str, str] = {}
    if summary.journal is not None and not summary.dry_run:
        links["evidence"] = summary.journal.parent.resolve().as_uri()
    for step in loaded.playbook.steps:
        if not step.action.startswith("tickets."):
            continue
        result = summary.results.get(step.id)
        for candidate in ([result] if isinstance(result, dict) else []):
            url = candidate.get("url") or candidate.get("link") or candidate.get("ticket_url")
            if isinstance(url, str) and url:
                links["ticket"] = url
    return links


def _publish(summary: RunSummary, markdown: str, links: dict[str, str] | None = None) -> None:
    """Prefect artifacts with stable keys, so each incident's latest report is one click away."""
    create_markdown_artifact(markdown, key=artifact_key(summary.incident, "report"),
                             description=f"{summary.playbook}: {summary.status}")
    rows = account_rows(summary)
    if rows:
        create_table_artifact(rows, key=artifact_key(summary.incident, "accounts"), description="Accounts and outcomes")
    for name, target in (links or {}).items():
        create_link_artifact(target, link_text=f"{name} of incident {summary.incident}",
                             key=artifact_key(summary.incident, name), description=f"{name.title()} for {summary.incident}")


def _as_dict(summary: RunSummary) -> dict[str, Any]:
    return {
        "incident": summary.incident, "playbook": summary.playbook, "status": summary.status,
        "dry_run": summary.dry_run, "error": summary.error, "journal": str(summary.journal),
        "report": str(summary.report), "steps": summary.steps, "failures": summary.failures,
        "refused": summary.refused,
    }


@flow(name="tourniquet-playbook", log_prints=False)
def run_playbook(
    playbook: str,
    inputs: dict[str, Any] | None = None,
    dry_run: bool = False,
    incident: str | None = None,
    site: str | None = None,
) -> dict[str, Any]:
    """Run any playbook with its inputs as a mapping.

    Args:
        playbook: Playbook name or path
        inputs: The playbook's inputs, by name
        dry_run: Plan only: list every change, change nothing
        incident: Incident id; empty = derived from the playbook, the inputs and the day
        site: Site configuration file; empty = $TOURNIQUET_SITE
    """
    summary = execute_playbook(playbook, inputs or {}, dry_run=dry_run, incident=incident, site=site,
                               executor=PrefectExecutor(), approver=prefect_approver)
    if summary.status not in ("completed", "planned"):  # failed, rolled back, … with errors
        raise RunFailed(f"{summary.playbook} {summary.status}: {summary.error} (journal: {summary.journal})")
    return _as_dict(summary)


@flow(name="respond", log_prints=False)
def respond(
    accounts: Annotated[list[str], Field(description="uid, RPPS number or e-mail of each suspected account")],
    reason: Annotated[str, Field(description="Why: alert id, ticket, who reported it")] = "",
    since: Annotated[str, Field(description="Start of the exposure window: ISO date or relative, e.g. -30d")] = "-30d",
    dry_run: Annotated[bool, Field(description="Plan only: list every change, change nothing")] = True,
    playbook: Annotated[str, Field(description="Playbook name or path")] = "credential-misuse",
    incident: Annotated[str | None, Field(description="Incident id; empty = derived from the inputs")] = None,
    site: Annotated[str | None, Field(description="Site configuration file; empty = $TOURNIQUET_SITE")] = None,
) -> dict[str, Any]:
    """Contain suspected practitioner accounts with the credential-misuse playbook.

    Prefect's deployment form shows the descriptions from this docstring (it ignores
    ``Annotated[..., Field(description=...)]``), so keep both in step.

    Args:
        accounts: uid, RPPS number or e-mail of each suspected account
        reason: Why: alert id, ticket, who reported it
        since: Start of the exposure window: ISO date or relative, e.g. -30d
        dry_run: Plan only: list every change, change nothing (untick to contain)
        playbook: Playbook name or path
        incident: Incident id; empty = derived from the playbook, the inputs and the day
        site: Site configuration file; empty = $TOURNIQUET_SITE
    """
    inputs = {"accounts": accounts, "since": since, "reason": reason}
    summary = execute_playbook(playbook, inputs, dry_run=dry_run, incident=incident, site=site,
                               executor=PrefectExecutor(), approver=prefect_approver)
    if summary.status not in ("completed", "planned"):  # failed, rolled back, … with errors
        raise RunFailed(f"{summary.playbook} {summary.status}: {summary.error} (journal: {summary.journal})")
    return _as_dict(summary)
