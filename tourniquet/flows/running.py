"""A playbook run inside a Prefect flow run: the engine with Prefect's parts, and how the run ends.

Shared by the flows that run playbooks (:mod:`tourniquet.flows.respond`, one site;
:mod:`tourniquet.flows.regions`, a subflow per site): the engine's run with Prefect's executor,
approver and observer; a Failed state that says why (masked, no traceback); the ``live`` /
``dry-run`` tag; the flow run's name from its parameters, before anything runs.
"""

from __future__ import annotations

from typing import Any

import structlog
from prefect.context import FlowRunContext
from prefect.runtime import flow_run as current_run
from prefect.states import Failed, State

from tourniquet.engine.execute import execute_playbook, planned_incident
from tourniquet.engine.run import INCIDENT_ID, RunSummary
from tourniquet.errors import TourniquetError
from tourniquet.exit_codes import ExitCode
from tourniquet.flows.approval import prefect_approver
from tourniquet.flows.artifacts import PrefectObserver
from tourniquet.flows.executor import PrefectExecutor
from tourniquet.flows.form import mode_tag, parse_accounts, run_name
from tourniquet.secrets import mask

__all__ = ["RunFailed", "in_flow_run_id", "execute_in_flow", "summary_dict", "failed", "not_started", "tag_run",
           "name_from_parameters"]

log = structlog.get_logger("tourniquet")


class RunFailed(TourniquetError):
    """The playbook run ended failed; the flow run's Failed state carries it.

    Its message becomes the flow run's state message (and the event Prefect emits for it):
    masked, since it quotes the first failure, which may quote an outside system. ``exit_code`` is
    what the command exits with (:class:`~tourniquet.outcomes.ExitCode`: nothing contained, or a
    run stopped part-way).
    """

    def __init__(self, message: str, exit_code: int = int(ExitCode.NONE)) -> None:
        super().__init__(mask(message))
        self.exit_code = exit_code

    def __reduce__(self) -> tuple[Any, ...]:  # a persisted result keeps the exit code
        return (type(self), (str(self), self.exit_code))


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


def summary_dict(summary: RunSummary) -> dict[str, Any]:
    """The flow's result: the run's figures and its outcome (headline, lines, exit code) as the journal says."""
    return summary.as_result()


def failed(message: str, detail: str = "", exit_code: int = int(ExitCode.NONE)) -> State[Any]:
    """A Failed state that says why (masked); ``state.result()`` raises :class:`RunFailed` with the detail."""
    return Failed(message=mask(message), data=RunFailed(f"{message}{detail}", exit_code))


def not_started(message: str) -> State[Any]:
    """Nothing ran (a bad input, site or playbook): the engine logged nothing, so this says it."""
    log.error("run.not_started", reason=message)
    return failed(message)


def tag_run(dry_run: bool, *extra: str) -> None:
    """Add ``dry-run`` or ``live`` (and ``extra``) to this flow run's tags (the deployment's tags stay)."""
    context = FlowRunContext.get()
    if not (context and context.flow_run):
        return
    tags = sorted({*context.flow_run.tags, mode_tag(dry_run), *extra})
    try:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            client.update_flow_run(context.flow_run.id, tags=tags)
    except Exception as exc:  # a tag is a courtesy: never fail the containment over it
        log.warning("run.not_tagged", error=str(exc))


def name_from_parameters(live_word: str | None) -> str:
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
