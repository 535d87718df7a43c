"""Prefect flows: run a playbook (``run_playbook``) and the responder's form (``respond``).

Each step of the playbook is a Prefect task run named after the step (``lock[jdupont]``
for a for_each item), so the Prefect UI shows the incident procedure as it runs. Each flow
run is named after its incident and mode (``inc-…-contain``, ``inc-…-DRY-RUN``) and tagged
``live`` or ``dry-run``, so a plan and a containment never look alike in the runs list.

A run that fails for an expected reason (an unknown account, a refusal, a system down, a bad
input) ends in a Failed state whose message is that reason: no traceback, and the same words
in the UI, the CLI and the incident's events.
"""

from __future__ import annotations

from typing import Any

import structlog
from prefect import flow
from prefect.context import FlowRunContext
from prefect.runtime import flow_run as current_run
from prefect.states import Failed, State
from pydantic import Field, WithJsonSchema
from typing_extensions import Annotated

from tourniquet.engine.execute import execute_playbook, find_playbook, planned_incident, progress
from tourniquet.engine.loader import load_playbook
from tourniquet.engine.run import INCIDENT_ID, RunSummary
from tourniquet.errors import TourniquetError
from tourniquet.flows.approval import prefect_approver
from tourniquet.flows.artifacts import PrefectObserver
from tourniquet.flows.executor import PrefectExecutor
from tourniquet.flows.form import AccountsError, mode_tag, parse_accounts, run_name
from tourniquet.secrets import mask

__all__ = ["run_playbook", "respond", "in_flow_run_id", "RunFailed", "execute_in_flow"]

log = structlog.get_logger("tourniquet")

#: The form offers the accounts as one block of text (the default: paste from a mail or an alert) or
#: as a list; each option is titled, where the UI would otherwise show "string" and "array".
AccountsText = Annotated[str, WithJsonSchema({"type": "string", "title": "one block of text"})]
AccountsList = Annotated[list[str], WithJsonSchema({"type": "array", "items": {"type": "string"}, "title": "list"})]


class RunFailed(TourniquetError):
    """The playbook run ended failed; the flow run's Failed state carries it.

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


def _as_dict(summary: RunSummary) -> dict[str, Any]:
    return {
        "incident": summary.incident, "playbook": summary.playbook, "status": summary.status,
        "dry_run": summary.dry_run, "error": summary.error, "journal": str(summary.journal),
        "report": str(summary.report), "steps": summary.steps, "failures": summary.failures,
        "refused": summary.refused,
    }


def _failed(message: str, detail: str = "") -> State[Any]:
    """A Failed state that says why (masked); ``state.result()`` raises :class:`RunFailed` with the detail."""
    return Failed(message=mask(message), data=RunFailed(f"{message}{detail}"))


def _not_started(message: str) -> State[Any]:
    """Nothing ran (a bad input, site or playbook): the engine logged nothing, so this says it."""
    log.error("run.not_started", reason=message)
    return _failed(message)


def _outcome(summary: RunSummary, playbook: str) -> dict[str, Any] | State[Any]:
    if summary.status in ("completed", "planned"):
        return _as_dict(summary)
    # failed, rolled back, completed with errors: the flow run is Failed, its message says why, then what
    # was done and what was not
    try:
        steps = [step.id for step in load_playbook(find_playbook(playbook)).playbook.steps]
    except TourniquetError:
        steps = list(summary.steps)
    done = progress(summary, steps, in_flow_run_id())
    return _failed(f"{summary.playbook} {summary.status}: {summary.error}", f" (journal: {summary.journal}); {done}")


def _tag_run(dry_run: bool) -> None:
    """Add ``dry-run`` or ``live`` to this flow run's tags (the deployment's tags stay)."""
    context = FlowRunContext.get()
    if not (context and context.flow_run):
        return
    tags = sorted({*context.flow_run.tags, mode_tag(dry_run)})
    try:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            client.update_flow_run(context.flow_run.id, tags=tags)
    except Exception as exc:  # a tag is a courtesy: never fail the containment over it
        log.warning("run.not_tagged", error=str(exc))


def _name_from_parameters(live_word: str | None) -> str:
    """The flow run's name, from its parameters, before anything runs (``flow_run_name``)."""
    parameters = current_run.parameters
    dry_run = bool(parameters.get("dry_run", False))
    playbook = str(parameters.get("playbook") or "credential-misuse")
    try:
        inputs = dict(parameters.get("inputs") or {})
        if "accounts" in parameters:
            inputs["accounts"] = parse_accounts(parameters["accounts"])
        incident = planned_incident(playbook, inputs, str(parameters.get("incident") or "") or None)
        if not INCIDENT_ID.match(incident):  # refused by the run; not a name for the runs list either
            incident = "invalid-input"
    except Exception:  # the flow itself reports what is wrong with the input; the name only says so
        incident = "invalid-input"
    return run_name(incident, dry_run, live_word or playbook.rsplit("/", 1)[-1].removesuffix(".yaml"))


def _respond_run_name() -> str:
    return _name_from_parameters("contain")


def _playbook_run_name() -> str:
    return _name_from_parameters(None)


def _run(playbook: str, inputs: dict[str, Any], *, dry_run: bool, incident: str, site: str) -> dict[str, Any] | State[Any]:
    _tag_run(dry_run)
    try:
        summary = execute_in_flow(playbook, inputs, dry_run=dry_run, incident=incident or None, site=site or None)
    except TourniquetError as exc:  # the site, the playbook or an input: nothing ran
        return _not_started(f"{playbook}: not started: {exc}")
    return _outcome(summary, playbook)


@flow(name="tourniquet-playbook", log_prints=False, flow_run_name=_playbook_run_name)
def run_playbook(
    playbook: str,
    inputs: dict[str, Any] | None = None,
    dry_run: bool = False,
    incident: str = "",
    site: str = "",
) -> dict[str, Any] | State[Any]:  # a Failed state says why it did not complete
    """Run any playbook with its inputs as a mapping.

    Args:
        playbook: Playbook name or path
        inputs: The playbook's inputs, by name
        dry_run: Plan only: list every change, change nothing
        incident: Incident id; empty = derived from the playbook, the inputs and the day
        site: Site configuration file; empty = $TOURNIQUET_SITE
    """
    return _run(playbook, dict(inputs or {}), dry_run=dry_run, incident=incident or "", site=site or "")


@flow(name="respond", log_prints=False, flow_run_name=_respond_run_name)
def respond(
    accounts: Annotated[AccountsText | AccountsList, Field(description="uid, RPPS number or e-mail of each account")],
    reason: Annotated[str, Field(description="Why: alert id, ticket, who reported it")] = "",
    since: Annotated[str, Field(description="Start of the exposure window: ISO date or relative, e.g. -30d")] = "-30d",
    dry_run: Annotated[bool, Field(description="Plan only: list every change, change nothing")] = True,
    playbook: Annotated[str, Field(description="Playbook name or path")] = "credential-misuse",
    incident: Annotated[str, Field(description="Incident id; empty = derived from the inputs")] = "",
    site: Annotated[str, Field(description="Site configuration file; empty = $TOURNIQUET_SITE")] = "",
) -> dict[str, Any] | State[Any]:  # a Failed state says why it did not complete
    """Contain suspected practitioner accounts with the credential-misuse playbook.

    Prefect's deployment form shows the descriptions from this docstring (it ignores
    ``Annotated[..., Field(description=...)]``), so keep both in step.

    Args:
        accounts: uid, RPPS number or e-mail of each suspected account: one per line, or separated by commas or spaces
        reason: Why: alert id, ticket, who reported it
        since: Start of the exposure window: ISO date or relative, e.g. -30d
        dry_run: Plan only: list every change, change nothing (untick to contain)
        playbook: Playbook name or path
        incident: Incident id; empty = derived from the playbook, the accounts and the day
        site: Site configuration file; empty = $TOURNIQUET_SITE
    """
    try:
        ids = parse_accounts(accounts)
    except AccountsError as exc:  # a malformed alert or form: a failed run that says so, not silence
        _tag_run(dry_run)
        return _not_started(f"respond: not started: {exc}")
    return _run(playbook, {"accounts": ids, "since": since, "reason": reason}, dry_run=dry_run,
                incident=incident or "", site=site or "")
