"""``tickets.*`` actions: open, comment and close the incident's one ticket.

The ticket is found by the incident key (``incident.id`` unless given), so re-runs and
concurrent runs of one incident keep one ticket. When the ticket system is down the
write waits in the outbox (outcome ``queued``) and the run goes on; dry-runs send and
queue nothing (``planned``). Links to the incident's evidence are added to every ticket.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, Field

from tourniquet.actions.context import ActionContext
from tourniquet.connectors.tickets import (
    Delivery,
    Severity,
    TicketClient,
    TicketDraft,
    TicketState,
    check_key,
    comment_digest,
)
from tourniquet.registry import action

SYSTEM = "tickets"

KeyArg = Annotated[
    str | None, Field(description="Incident key the ticket is found by (default: the incident id).")
]
LinksArg = Annotated[
    dict[str, str], Field(description="Extra links (name → URL or path); the evidence folder is always linked.")
]


class TicketResult(BaseModel):
    incident_key: str
    system: str
    outcome: str = Field(description="applied, noop, planned (dry-run) or queued (system down: in the outbox)")
    ticket_id: str | None = None
    url: str | None = None
    pending: int = Field(0, description="Writes for this incident still waiting in the outbox.")


def evidence_links(ctx: ActionContext) -> dict[str, str]:
    folder = ctx.site.incident_dir(ctx.incident)
    return {"evidence": str(folder), "journal": str(folder / "journal.jsonl")}


def _run(
    ctx: ActionContext, key: str, operation: str, before: dict[str, Any], after: dict[str, Any],
    send: Callable[[TicketClient], Delivery], state: TicketState, undo: dict[str, Any] | None = None,
) -> TicketResult:
    client: TicketClient = ctx.site.tickets
    box: dict[str, Delivery] = {}
    outcome = ctx.change(
        system=f"{SYSTEM}:{client.system}", target=f"ticket:{key}", operation=operation, before=before,
        after=after, apply=lambda: box.update(delivery=send(client)), undo=undo,
    )
    delivery = box.get("delivery")
    ticket_id, url, pending = state.ticket_id, state.url, state.pending
    if delivery is not None:
        ticket_id, url, pending = delivery.ticket_id or ticket_id, delivery.url or url, delivery.pending
        if delivery.status in ("queued", "noop"):  # noop: a concurrent run of the incident already did it
            outcome = delivery.status  # type: ignore[assignment]
            ctx.changes[-1] = dataclasses.replace(ctx.changes[-1], outcome=delivery.status)
        ctx.journal.write("ticket", step=ctx.step, operation=operation, key=key, system=client.system,
                          status=delivery.status, ticket=ticket_id, url=url, pending=pending, error=delivery.error)
    return TicketResult(incident_key=key, system=client.system, outcome=outcome, ticket_id=ticket_id, url=url,
                        pending=pending)


def _prepare(ctx: ActionContext, incident_key: str | None) -> tuple[str, TicketClient, TicketState]:
    key = check_key(incident_key or ctx.incident)
    client: TicketClient = ctx.site.tickets
    if not ctx.dry_run:  # the next run delivers what an earlier one had to leave in the outbox
        client.sweep()
        client.deliver(key)
    return key, client, client.state(key)


@action("tickets.open", changes=True, undo="tickets.close")
def open_ticket(
    ctx: ActionContext,
    title: Annotated[str, Field(description="One line: what happened and how many accounts.")],
    body: Annotated[str, Field(description="What was done (the containment summary).")] = "",
    severity: Annotated[Severity, Field(description="low, medium, high or critical.")] = "high",
    labels: Annotated[list[str], Field(description="Labels / tags for the ticket system.")] = [],  # noqa: B006
    links: LinksArg = {},  # noqa: B006
    incident_key: KeyArg = None,
) -> TicketResult:
    """Open the incident's ticket, or find the one already open for this incident and update it."""
    key, client, state = _prepare(ctx, incident_key)
    draft = TicketDraft(title=title, body=body, severity=severity, labels=list(labels),
                        links={**evidence_links(ctx), **links})
    present = bool(state.ticket_id or state.queued_open) and not state.closed
    before = {"ticket": "open" if present else "none", "content": state.fingerprint if present else None}
    after = {"ticket": "open", "content": draft.fingerprint()}
    undo = ctx.undo_call({"incident_key": key, "comment": "False alarm: the containment was undone."})
    return _run(ctx, key, "open_ticket", before, after, lambda c: c.open(key, draft), state, undo)


@action("tickets.comment", changes=True)
def comment(
    ctx: ActionContext,
    text: Annotated[str, Field(min_length=1, description="The update, e.g. the data-scope summary.")],
    links: LinksArg = {},  # noqa: B006
    incident_key: KeyArg = None,
) -> TicketResult:
    """Add an update to the incident's ticket (the same text twice is added once)."""
    key, client, state = _prepare(ctx, incident_key)
    if links:
        text = text.rstrip() + "\n\n" + "\n".join(f"- {name}: {target}" for name, target in links.items())
    known = comment_digest(text) in state.comments
    return _run(ctx, key, "comment_ticket", {"comment": "present" if known else "absent"}, {"comment": "present"},
                lambda c: c.comment(key, text), state)


@action("tickets.close", changes=True)
def close(
    ctx: ActionContext,
    comment: Annotated[str, Field(description="Closing note (why, what remains to do).")] = "",
    incident_key: KeyArg = None,
) -> TicketResult:
    """Close the incident's ticket, with a closing note."""
    key, client, state = _prepare(ctx, incident_key)
    before = {"ticket": "closed" if state.closed or not (state.ticket_id or state.queued_open) else "open"}
    return _run(ctx, key, "close_ticket", before, {"ticket": "closed"}, lambda c: c.resolve(key, comment), state)


def report_links(results: dict[str, Any]) -> dict[str, str]:
    """Ticket lines for the run report's evidence section, from the ticket steps' results."""
    links: dict[str, str] = {}
    for step, result in results.items():
        if not (isinstance(result, dict) and "incident_key" in result and "outcome" in result):
            continue
        if result.get("ticket_id"):
            where = f"{result['system']} ticket {result['ticket_id']}" + (f" {result['url']}" if result.get("url") else "")
        else:
            where = f"{result['system']} ticket for {result['incident_key']}"
        note = {"queued": " (waiting in the outbox: the ticket system was unreachable)",
                "planned": " (dry-run: nothing sent)"}.get(str(result["outcome"]), "")
        if where + note not in links.values():  # the comment steps name the same ticket again
            links[f"ticket ({step})"] = where + note
    return links
