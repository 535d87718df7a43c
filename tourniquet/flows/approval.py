"""A person approves or rejects, from the Prefect UI or ``tourniquet approve``.

The run pauses with :func:`prefect.flow_runs.pause_flow_run` and a form (:class:`ApprovalInput`)
whose description is the Markdown of what will change. Whoever resumes it says approve or
reject, their name and a comment. No answer before the timeout is a rejection: nothing changes.
Outside a flow run there is nobody to ask, so the answer is no (:func:`reject_all`).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
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
    "resume",
    "step_timeout",
    "waiting_time",
    "in_flow_run",
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


def describe_request(request: ApprovalRequest) -> str:
    """Markdown shown above the form: what will change if approved."""
    shown = request.accounts[:200]
    lines = [
        f"## Approval needed: {request.playbook}, incident `{request.incident}`",
        "",
        f"Step **{request.step}** would change **{len(request.accounts)}** accounts; "
        f"the limit without approval is **{request.limit}** ({request.reason}).",
        "",
        "Approve only if these accounts really are the ones to contain. "
        f"No answer within {int(request.timeout_seconds)} s counts as a rejection: nothing will change.",
        "",
        "| # | account |",
        "|---|---|",
    ]
    lines += [f"| {n} | `{account}` |" for n, account in enumerate(shown, start=1)]
    if len(request.accounts) > len(shown):
        lines.append(f"| … | and {len(request.accounts) - len(shown)} more |")
    return "\n".join(lines) + "\n"


def ask(description: str, timeout_seconds: float, key: str | None = None) -> ApprovalDecision:
    """Pause this flow run until a person answers; a timeout is a rejection."""
    from prefect.exceptions import FlowPauseTimeout
    from prefect.flow_runs import pause_flow_run

    timeout = waiting_time(timeout_seconds)
    log.warning("approval.waiting", timeout_seconds=timeout)
    try:
        answer: Any = pause_flow_run(
            wait_for_input=ApprovalInput.with_initial_data(description=description),
            timeout=timeout,
            poll_interval=max(1, min(5, timeout // 20)),
            key=key,
        )
    except FlowPauseTimeout:
        log.warning("approval.timed_out", timeout_seconds=timeout)
        return ApprovalDecision(False, "", f"no answer within {timeout} s (a timeout is a rejection)")
    decision = ApprovalDecision(answer.decision == "approve", answer.approver.strip(), answer.comment)
    log.warning("approval.answered", approved=decision.approved, approver=decision.approver)
    return decision


def prefect_approver(request: ApprovalRequest) -> ApprovalDecision:
    """The engine's approver inside a Prefect flow run: a blast radius over the limit, or an approval step."""
    if not in_flow_run():
        return reject_all(request)
    return ask(request.description or describe_request(request), request.timeout_seconds)


def resume(flow_run_id: str | UUID, approver: str, *, approve: bool = True, comment: str = "") -> None:
    """Answer a paused run through the Prefect API (Prefect has no CLI command for it)."""
    from prefect.flow_runs import resume_flow_run

    resume_flow_run(
        UUID(str(flow_run_id)),
        run_input={"decision": "approve" if approve else "reject", "approver": approver, "comment": comment},
    )
