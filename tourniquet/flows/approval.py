"""A person approves or rejects, from the Prefect UI or ``tourniquet approve``.

The run pauses (as :func:`prefect.flow_runs.pause_flow_run` does) with a form
(:class:`ApprovalInput`) whose description is the Markdown of what will change, and a state
message that says, in the runs list and on the run page, what is asked, why, and until when.
Whoever resumes it says approve or reject, their name and a comment. No answer before the
timeout is a rejection: nothing changes. Outside a flow run there is nobody to ask, so the
answer is no (:func:`reject_all`).
"""

from __future__ import annotations

import contextvars
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from uuid import UUID

import structlog
from prefect.input import RunInput
from pydantic import Field

from tourniquet.engine.approvals import ApprovalDecision, ApprovalRequest, reject_all

__all__ = [
    "ApprovalInput",
    "prefect_approver",
    "ask",
    "describe_request",
    "pause_message",
    "resume",
    "step_timeout",
    "waiting_time",
    "in_flow_run",
    "wait_for_decision",
]

log = structlog.get_logger("tourniquet")

#: The timeout of the step being run, set by the Prefect executor around each call, so that an
#: approval step never waits longer than its step allows.
_STEP_TIMEOUT: contextvars.ContextVar[float | None] = contextvars.ContextVar("tourniquet_step_timeout", default=None)


class ApprovalInput(RunInput):
    """The form shown on a paused run (Prefect renders this model's JSON schema)."""

    decision: Literal["approve", "reject"] = Field(
        "reject", description="approve: go on and make the changes listed above; reject: change nothing."
    )
    approver: str = Field(min_length=1, description="Your name, as it will appear in the incident journal.")
    comment: str = Field("", description="Why (ticket, call with the ARS, who confirmed the alert).")


def in_flow_run() -> bool:
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return bool(context and context.flow_run)


@contextmanager
def step_timeout(seconds: float) -> Iterator[None]:
    token = _STEP_TIMEOUT.set(seconds)
    try:
        yield
    finally:
        _STEP_TIMEOUT.reset(token)


def waiting_time(wanted: float) -> int:
    """Seconds to wait: what was asked, but never past the running step's own timeout."""
    limit = _STEP_TIMEOUT.get()
    if limit is not None:
        wanted = min(wanted, max(1.0, limit - 5.0))
    return max(1, int(wanted))


#: What approving means, in each verb's own words (the playbook names the verb).
_APPROVE_TO = {"recover": "give these accounts back to their owners (a one-time password, a new password demanded)",
               "undo": "reverse every change of this incident on these accounts (a false alarm)"}
_CONTAIN = "contain these accounts (password replaced, locked, a new password demanded)"


def describe_request(request: ApprovalRequest) -> str:
    """Markdown shown above the form: what will change if approved, in the verb's own words."""
    shown = request.accounts[:200]
    verb = _APPROVE_TO.get(request.playbook, _CONTAIN)
    if request.step == "investigation":
        why = (f"Incident `{request.incident}` is **still under investigation**: giving back "
               f"**{len(request.accounts)}** account(s) before it is concluded needs a person's approval.")
    else:
        why = (f"Step **{request.step}** would change **{len(request.accounts)}** account(s); "
               f"the limit without approval is **{request.limit}** ({request.reason}).")
    lines = [
        f"## Approval needed: {request.playbook}, incident `{request.incident}`",
        "",
        why,
        "",
        f"Approve only if you mean to {verb}. "
        f"No answer within {int(request.timeout_seconds)} s counts as a rejection: nothing will change.",
        "",
        "| # | account |",
        "|---|---|",
    ]
    lines += [f"| {n} | `{account}` |" for n, account in enumerate(shown, start=1)]
    if len(request.accounts) > len(shown):
        lines.append(f"| … | and {len(request.accounts) - len(shown)} more |")
    return "\n".join(lines) + "\n"


def pause_message(what: str, timeout_seconds: float, now: datetime | None = None) -> str:
    """The paused state's message: what is asked and why, how to answer, and until when."""
    deadline = (now or datetime.now(timezone.utc)) + timedelta(seconds=timeout_seconds)
    return (f"Approval needed: {what}. Resume this run to approve or reject (or `tourniquet approve`); "
            f"no answer by {deadline:%Y-%m-%d %H:%M} UTC counts as a rejection: nothing changes.")


def _headline(description: str) -> str:
    """The first line of a Markdown description, without its Markdown."""
    first = next((line for line in description.splitlines() if line.strip()), "a person's decision")
    return re.sub(r"[#*`_]+", "", first).strip().removeprefix("Approval needed:").strip()


#: The server keeps a pause open this much longer than the run waits, so that the run can take
#: itself back after "no answer" (an expired pause can only end Failed, without the run's own report).
PAUSE_GRACE_SECONDS = 60


def _pause(description: str, message: str, timeout: int, poll_interval: int, key: str | None) -> Any:
    """Pause this flow run with the approval form until it is resumed; ``None`` after the timeout.

    What :func:`prefect.flow_runs.pause_flow_run` does for a form, except that the Paused state
    carries ``message`` (Prefect's has none, so the UI showed a bare "Paused"), and that a pause
    nobody answered gives the run back to the engine (Running), which then fails it saying why.
    """
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext
    from prefect.input import keyset_from_paused_state
    from prefect.states import Paused, Running
    from prefect.utilities.engine import propose_state_sync

    context = FlowRunContext.get()
    if not (context and context.flow_run):
        raise RuntimeError("only a flow run can be paused for an approval")
    form = ApprovalInput.with_initial_data(description=description)
    proposed: Any = Paused(timeout_seconds=timeout + PAUSE_GRACE_SECONDS, reschedule=False, message=message,
                      pause_key=key or f"tourniquet-approval-{uuid.uuid4().hex[:12]}")
    keyset = keyset_from_paused_state(proposed)
    proposed.state_details.run_input_keyset = keyset
    with get_client(sync_client=True) as client:
        state = propose_state_sync(client=client, state=proposed, flow_run_id=context.flow_run.id)
        if state.is_running():  # this pause was answered before (same key): its answer stands
            return form.load(keyset)
        if not state.is_paused():
            raise RuntimeError(f"the flow run could not be paused: the server answered {state.type.value}")
        form.save(keyset)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(max(0.2, min(poll_interval, deadline - time.monotonic())))
            flow_run = client.read_flow_run(context.flow_run.id)
            if flow_run.state and flow_run.state.is_running():
                return form.load(keyset)
        propose_state_sync(client=client, state=Running(message="approval not answered in time: rejected"),
                           flow_run_id=context.flow_run.id)
    try:  # answered in the last instant, between the last look and taking the run back
        return form.load(keyset)
    except Exception:
        return None


#: A suspended run stays open this much longer than its plan: Prefect's own sweep would fail it at the
#: pause's timeout with a generic message, while ``expire-plans`` (every 10 minutes) ends it saying the
#: plan expired; an answer in between starts the run again, which sees the plan expired.
SUSPEND_GRACE_SECONDS = 900


def wait_for_decision(description: str, *, message: str, timeout: int, key: str) -> Any:
    """The form's answer (``None``: none in time), holding no worker slot where Prefect allows it.

    A run of a deployment (a worker's or the served responder's) is *suspended*: its process exits,
    and answering the form schedules it again, from the top — the caller must find its own earlier
    work again (the same ``key`` returns the answer at once). Any other run (a flow called in a
    process) is *paused*: the process waits.
    """
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context and context.flow_run and context.flow_run.deployment_id and not context.flow_run.parent_task_run_id:
        return _suspend(description, message, timeout + SUSPEND_GRACE_SECONDS, key)
    return _pause(description, message, timeout, poll_interval=max(1, min(5, timeout // 20)), key=key)


def _suspend(description: str, message: str, timeout: int, key: str) -> Any:
    """What :func:`prefect.flow_runs.suspend_flow_run` does for a form, with ``message`` on the Suspended state."""
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext
    from prefect.exceptions import Pause
    from prefect.input import keyset_from_paused_state
    from prefect.states import Suspended
    from prefect.utilities.engine import propose_state_sync

    context = FlowRunContext.get()
    assert context is not None and context.flow_run is not None
    form = ApprovalInput.with_initial_data(description=description)
    proposed: Any = Suspended(timeout_seconds=timeout, pause_key=key, message=message)
    keyset = keyset_from_paused_state(proposed)
    proposed.state_details.run_input_keyset = keyset
    with get_client(sync_client=True) as client:
        state = propose_state_sync(client=client, state=proposed, flow_run_id=context.flow_run.id)
        if state.is_running():  # resumed: this is the run again, from the top; the answer is stored
            return form.load(keyset)
        if not state.is_paused():
            raise RuntimeError(f"the flow run could not be suspended: the server answered {state.type.value}")
        form.save(keyset)
    try:
        from prefect._flow_run_suspension import mark_flow_run_suspension_requested

        mark_flow_run_suspension_requested(context.flow_run.id, state)
    except ImportError:  # an older Prefect: raising Pause is enough
        pass
    log.warning("approval.suspended", timeout_seconds=timeout, asked=message)
    raise Pause(state=state)


def ask(description: str, timeout_seconds: float, key: str | None = None, *, message: str = "") -> ApprovalDecision:
    """Pause this flow run until a person answers; a timeout is a rejection."""
    timeout = waiting_time(timeout_seconds)
    message = message or pause_message(_headline(description), timeout)
    log.warning("approval.waiting", timeout_seconds=timeout, asked=message)
    answer: Any = _pause(description, message, timeout, poll_interval=max(1, min(5, timeout // 20)), key=key)
    if answer is None:
        log.warning("approval.timed_out", timeout_seconds=timeout)
        return ApprovalDecision(False, "", f"no answer within {timeout} s (a timeout is a rejection)")
    decision = ApprovalDecision(answer.decision == "approve", answer.approver.strip(), answer.comment)
    log.warning("approval.answered", approved=decision.approved, approver=decision.approver)
    return decision


def prefect_approver(request: ApprovalRequest) -> ApprovalDecision:
    """The engine's approver inside a Prefect flow run: a blast radius over the limit, or an approval step."""
    if not in_flow_run():
        return reject_all(request)
    if request.description:  # an approval step: its own summary says what is asked
        what = f"approval step {request.step}: {request.reason}"
        return ask(request.description, request.timeout_seconds,
                   message=pause_message(what, waiting_time(request.timeout_seconds)))
    if request.step == "investigation":
        what = (f"giving back {len(request.accounts)} account(s) while incident {request.incident} is still "
                "under investigation")
    else:
        what = (f"step {request.step} would change {len(request.accounts)} accounts, above the limit of "
                f"{request.limit} without a person's approval")
    return ask(describe_request(request), request.timeout_seconds,
               message=pause_message(what, waiting_time(request.timeout_seconds)))


def resume(flow_run_id: str | UUID, approver: str, *, approve: bool = True, comment: str = "") -> None:
    """Answer a paused run through the Prefect API (Prefect has no CLI command for it)."""
    from prefect.flow_runs import resume_flow_run

    resume_flow_run(
        UUID(str(flow_run_id)),
        run_input={"decision": "approve" if approve else "reject", "approver": approver, "comment": comment},
    )
