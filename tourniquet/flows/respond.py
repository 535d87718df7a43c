"""Prefect flows: run a playbook (``run_playbook``) and the responder's form (``respond``).

Each step of the playbook is a Prefect task run named after the step (``lock[jdupont]``
for a for_each item), so the Prefect UI shows the incident procedure as it runs.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.context import FlowRunContext
from pydantic import Field
from typing_extensions import Annotated

from tourniquet.engine.execute import execute_playbook, find_playbook, progress
from tourniquet.engine.loader import load_playbook
from tourniquet.engine.run import RunSummary
from tourniquet.errors import TourniquetError
from tourniquet.flows.approval import prefect_approver
from tourniquet.flows.artifacts import PrefectObserver
from tourniquet.flows.executor import PrefectExecutor
from tourniquet.secrets import mask

__all__ = ["run_playbook", "respond", "in_flow_run_id", "RunFailed", "execute_in_flow"]


class RunFailed(TourniquetError):
    """The playbook run ended failed; raised so that Prefect marks the flow run Failed.

    Its message becomes the flow run's state message (and the event Prefect emits for it):
    masked, since it quotes the first failure, which may quote an outside system.
    """

    def __init__(self, message: str) -> None:
        super().__init__(mask(message))


def in_flow_run_id() -> str:
    context = FlowRunContext.get()
    return str(context.flow_run.id) if context and context.flow_run else ""


def execute_in_flow(playbook: str, inputs: dict[str, Any], *, dry_run: bool, incident: str | None = None,
                    site: str | None = None) -> RunSummary:
    """The engine's run with Prefect's executor, approver and observer (artifacts, events, progress)."""
    run_id = in_flow_run_id()
    executor = PrefectExecutor()
    return execute_playbook(playbook, inputs, dry_run=dry_run, incident=incident, site=site, executor=executor,
                            approver=prefect_approver, observer=PrefectObserver(run_id, executor) if run_id else None,
                            run_id=run_id)


def _failed(summary: RunSummary, playbook: str) -> RunFailed:
    """The flow's failure: what failed, then what was done and what was not (the state message in Prefect)."""
    try:
        steps = [step.id for step in load_playbook(find_playbook(playbook)).playbook.steps]
    except TourniquetError:
        steps = list(summary.steps)
    done = progress(summary, steps, in_flow_run_id())
    return RunFailed(f"{summary.playbook} {summary.status}: {summary.error} (journal: {summary.journal}); {done}")


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
    summary = execute_in_flow(playbook, inputs or {}, dry_run=dry_run, incident=incident, site=site)
    if summary.status not in ("completed", "planned"):  # failed, rolled back, … with errors
        raise _failed(summary, playbook)
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
    summary = execute_in_flow(playbook, inputs, dry_run=dry_run, incident=incident, site=site)
    if summary.status not in ("completed", "planned"):  # failed, rolled back, … with errors
        raise _failed(summary, playbook)
    return _as_dict(summary)
