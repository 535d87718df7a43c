"""``notify.send``: tell a role (soc, dpo, practitioner) what the incident's journal says, from a playbook step.

Never fails the run because a channel is down: the message waits in the outbox (status ``queued``)
and the run goes on. In a dry run nothing is sent; the plan lists what would be (``planned``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from tourniquet.actions.context import ActionContext
from tourniquet.connectors.notify import Message
from tourniquet.model import Account
from tourniquet.notices import compose, dispatch
from tourniquet.notices.facts import run_facts
from tourniquet.registry import action

__all__ = ["NotifyResult", "send"]

Template = Literal["outcome", "scope-frozen", "account-contained", "custom"]


class NotifyResult(BaseModel):
    role: str
    template: str
    messages: int = Field(0, description="Messages composed (one per referent for practitioners).")
    sent: int = 0
    queued: int = Field(0, description="Not delivered now: waiting in the outbox.")
    planned: int = Field(0, description="Dry run: would be sent.")
    status: str = Field("", description="sent, queued, planned, nothing to say or no channel")


@action("notify.send")
def send(
    ctx: ActionContext,
    role: Annotated[Literal["soc", "dpo", "practitioner"], Field(description="Who is told.")],
    template: Annotated[Template, Field(description="outcome (SOC: contained / partially / failed so far), "
                                                    "scope-frozen (DPO: figures, drafts, Art. 33 deadline), "
                                                    "account-contained (practitioner, through the referent), "
                                                    "custom (the text below).")],
    accounts: Annotated[list[Account], Field(description="Resolved accounts (account-contained).")] = [],  # noqa: B006
    subject: Annotated[str, Field(description="Subject of a custom message.")] = "",
    text: Annotated[str, Field(description="Body of a custom message.")] = "",
) -> NotifyResult:
    """Tell a role what the journal says so far; a channel that is down leaves the message in the outbox."""
    if not ctx.site.notify.configured:  # the site tells nobody: nothing to compose, nothing to read
        return NotifyResult(role=role, template=template, status="no channel")
    evidence = str(ctx.site.incident_dir(ctx.incident))
    link = compose.run_link(ctx.site.notify.config, ctx.journal.run, evidence)
    messages: list[Message]
    if template == "scope-frozen":
        found = dispatch.scope_message(ctx.site, ctx.journal, link=link)
        messages = [found] if found is not None else []
    elif template == "account-contained":
        messages = dispatch.practitioner_messages(ctx.site, ctx.journal, [a.model_dump() for a in accounts])
    elif template == "outcome":
        messages = [compose.outcome(run_facts(ctx.journal.records(), ctx.journal.run), ctx.site.notify.config, link)]
    else:
        messages = [compose.custom(role, ctx.incident, subject, text)]
    messages = [m if m.role == role or template == "custom" else _as_role(m, role) for m in messages]
    result = NotifyResult(role=role, template=template, messages=len(messages))
    for message in messages:
        report = ctx.site.notify.send(message, ctx.journal, dry_run=ctx.dry_run)
        result.sent += len(report.sent)
        result.queued += len(report.queued)
        result.planned += len(report.planned)
    result.status = ("queued" if result.queued else "planned" if result.planned else "sent" if result.sent
                     else "nothing to say" if not messages else "no channel")
    return result


def _as_role(message: Message, role: str) -> Message:
    from dataclasses import replace

    return replace(message, role=role, targets=() if role != "practitioner" else message.targets)
