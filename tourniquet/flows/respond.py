"""Prefect flows: run a playbook (``run_playbook``) and the responder's form (``respond``).

Each step of the playbook is a Prefect task run named after the step (``lock[jdupont]``
for a for_each item), so the Prefect UI shows the incident procedure as it runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
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
from tourniquet.flows.engine import Approver, Invocation, ItemOutcome, PlaybookRun, RunSummary, reject_all
from tourniquet.flows.loader import load_playbook
from tourniquet.flows.playbook import Step
from tourniquet.flows.report import account_rows, render_markdown, write_report
from tourniquet.logs import configure_logging
from tourniquet.site import Site

__all__ = ["run_playbook", "respond", "execute_playbook", "PrefectExecutor", "find_playbook", "RunFailed"]


class StepTimeout(TourniquetError):
    """A step ran past its timeout; what it had done so far is in the journal."""


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


@task(name="action", task_run_name="{label}", cache_policy=NO_CACHE, persist_result=False)
def run_action(label: str, invocation: Invocation) -> Any:
    return invocation()


class PrefectExecutor:
    """One Prefect task run per action call; for_each items at most ``concurrency`` at a time."""

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
            futures = [configured.submit(i.label, quote(i)) for i in batch]
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
    """Load, run, report: the part shared by the flows and ``tourniquet plan``."""
    configure_logging()
    loaded = load_playbook(find_playbook(playbook))
    runtime = Site(load_site(site))
    run_id = _in_flow_run()
    try:
        run = PlaybookRun(loaded, inputs, runtime, incident=incident, dry_run=dry_run, run_id=run_id,
                          executor=executor, approver=approver)
        summary = run.execute()
        markdown = render_markdown(summary, run.inputs, links=ticket_links(summary.results))
        write_report(summary, markdown)
        if not dry_run and summary.journal is not None and summary.journal.exists():
            from tourniquet.evidence import seal  # the bundle's manifest, last: it covers the report too

            seal(summary.journal.parent, incident=summary.incident, note=f"{summary.playbook}: {summary.status}")
        if run_id:
            _publish(summary, markdown)
        return summary
    finally:
        runtime.close()


def _publish(summary: RunSummary, markdown: str) -> None:
    """Prefect artifacts with stable keys, so each incident's latest report is one click away."""
    key = "tourniquet-" + summary.incident.lower().replace("_", "-")
    create_markdown_artifact(markdown, key=f"{key}-report", description=f"{summary.playbook}: {summary.status}")
    rows = account_rows(summary)
    if rows:
        create_table_artifact(rows, key=f"{key}-accounts", description="Accounts and outcomes")


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
    """Run any playbook with its inputs as a mapping."""
    summary = execute_playbook(playbook, inputs or {}, dry_run=dry_run, incident=incident, site=site,
                               executor=PrefectExecutor())
    if summary.status in ("failed", "rolled back"):
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
    """Contain suspected practitioner accounts with the credential-misuse playbook."""
    inputs = {"accounts": accounts, "since": since, "reason": reason}
    summary = execute_playbook(playbook, inputs, dry_run=dry_run, incident=incident, site=site,
                               executor=PrefectExecutor())
    if summary.status in ("failed", "rolled back"):
        raise RunFailed(f"{summary.playbook} {summary.status}: {summary.error} (journal: {summary.journal})")
    return _as_dict(summary)
