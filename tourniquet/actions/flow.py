"""``flow.*`` actions: steps about the run itself rather than an outside system."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from tourniquet.actions.context import ActionContext
from tourniquet.durations import parse_duration
from tourniquet.errors import ApprovalRejected
from tourniquet.registry import action


class NoteResult(BaseModel):
    message: str


@action("flow.note")
def note(ctx: ActionContext, message: Annotated[str, Field(description="Text to record in the journal.")]) -> NoteResult:
    """Write a line in the journal (and the run log), e.g. why the playbook was started."""
    ctx.journal.write("note", step=ctx.step, message=message)
    return NoteResult(message=message)


class ApprovalResult(BaseModel):
    approved: bool
    approver: str
    comment: str
    status: str


@action("flow.approval")
def approval(
    ctx: ActionContext,
    summary: Annotated[str, Field(description="Markdown shown to the approver: what the next steps will change.")],
    timeout: Annotated[
        str, Field(pattern=r"^\d+[smhdw]$", description="How long to wait (bounded by the step's timeout); "
                   "no answer = rejected.")
    ] = "1h",
) -> ApprovalResult:
    """Pause the run until a person approves (Prefect UI or `tourniquet approve`); rejected = the run fails."""
    header = f"## Approval step `{ctx.step}`: {ctx.playbook}, incident `{ctx.incident}`\n\n"
    if ctx.dry_run:
        ctx.journal.write("approval", step=ctx.step, status="would be required", reason=summary)
        return ApprovalResult(approved=True, approver="", comment="dry run: not asked", status="would be required")
    ctx.journal.write("approval", step=ctx.step, status="requested", reason=summary)
    ctx.journal.commit()  # the request is on record before anyone is asked
    decision = ctx.approve(header + summary, parse_duration(timeout).total_seconds())
    status = "approved" if decision.approved else "rejected"
    ctx.journal.write("approval", step=ctx.step, status=status, approver=decision.approver,
                      comment=decision.comment, reason=summary)
    if not decision.approved:
        who = decision.approver or "nobody"
        raise ApprovalRejected(f"{who} rejected: {decision.comment}" if decision.approver else decision.comment)
    return ApprovalResult(approved=True, approver=decision.approver, comment=decision.comment, status=status)
