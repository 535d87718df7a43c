"""``tickets.*`` actions: open, comment and close the incident's one ticket.

The ticket is found by the incident key (``incident.id`` unless given), so re-runs and
concurrent runs of one incident keep one ticket. When the ticket system is down the
write waits in the outbox (outcome ``queued``) and the run goes on; dry-runs send and
queue nothing (``planned``). Links to the incident's evidence are added to every ticket.
"""

from __future__ import annotations

import dataclasses
import re
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
from tourniquet.errors import ConnectorError
from tourniquet.registry import action
from tourniquet.secrets import mask

SYSTEM = "tickets"
#: The longest title a draft takes (a headline naming many refused ids is cut; the body names them all).
TITLE_MAX = 250

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
    title = " ".join(mask(title).split())  # one line, and short enough for every ticket system (the body has it all)
    draft = TicketDraft(title=title if len(title) <= TITLE_MAX else title[:TITLE_MAX - 1] + "…", body=mask(body), severity=severity, labels=[mask(x) for x in labels],
                        links={mask(k): mask(v) for k, v in {**evidence_links(ctx), **links}.items()})
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
    closed_ok: Annotated[bool, Field(description="Also on the incident's last ticket when it was closed (a "
                                                 "recover after an undo closed it): the comment is added, the "
                                                 "ticket stays closed.")] = False,
) -> TicketResult:
    """Add an update to the incident's ticket (the same text twice is added once)."""
    key, client, state = _prepare(ctx, incident_key)
    if links:
        text = text.rstrip() + "\n\n" + "\n".join(f"- {name}: {target}" for name, target in links.items())
    text = mask(text)
    known = comment_digest(text) in state.comments
    return _run(ctx, key, "comment_ticket", {"comment": "present" if known else "absent"}, {"comment": "present"},
                lambda c: c.comment(key, text, closed_ok=closed_ok), state)


@action("tickets.close", changes=True)
def close(
    ctx: ActionContext,
    comment: Annotated[str, Field(description="Closing note (why, what remains to do).")] = "",
    incident_key: KeyArg = None,
) -> TicketResult:
    """Close the incident's ticket, with a closing note."""
    key, client, state = _prepare(ctx, incident_key)
    before = {"ticket": "closed" if state.closed or not (state.ticket_id or state.queued_open) else "open"}
    note = mask(comment)
    return _run(ctx, key, "close_ticket", before, {"ticket": "closed"}, lambda c: c.resolve(key, note), state)


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


# -- the seal anchor: each seal's root hash on the incident's ticket


def seal_comment(manifest: dict[str, Any]) -> str:
    """The comment that puts one seal's root on the ticket, built from the manifest alone (verify rebuilds it)."""
    journal = manifest.get("journal") or {}
    incident = manifest["incident"]
    return mask(
        f"Evidence sealed: incident {incident}, seal {int(manifest['sequence']):04d}\n"
        f"root: {manifest['root']}\n"
        f"journal: {journal.get('records')} records, sealed at {manifest.get('sealed_at')}\n"
        f"note: {manifest.get('note') or '-'}\n"
        f"Check: `tourniquet evidence verify {incident}` prints the newest root; it must be the last one on this "
        "ticket. A later root differing from the folder means the evidence was rewritten."
    )


def anchor_seal(client: TicketClient, incident: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """Comment the seal's root on the incident's ticket (queued in the outbox when the system is down).

    No ticket for the incident (a playbook without ``tickets.open``): nothing is sent, and the
    answer says so. Never raises: a seal is not undone because the ticket system refused a comment.
    """
    key = check_key(incident)
    state = client.state(key)
    if not (state.ticket_id or state.queued_open):
        return {"system": client.system, "ticket": None, "status": "no ticket"}
    try:
        delivery = client.comment(key, seal_comment(manifest), closed_ok=True)
    except ConnectorError as exc:
        return {"system": client.system, "ticket": state.ticket_id, "status": "failed", "error": mask(str(exc))}
    return {"system": client.system, "ticket": delivery.ticket_id or state.ticket_id,
            "status": "delivered" if delivery.status == "noop" else delivery.status}


def seal_on_ticket(client: TicketClient, incident: str, manifest: dict[str, Any],
                   anchored: dict[str, Any]) -> tuple[str, str]:
    """Is this seal's root on the ticket now? ``(state, text)``: state is ``on ticket``, ``pending``,
    ``missing`` or ``unknown`` (a ticket system Tourniquet cannot read back)."""
    ticket = anchored.get("ticket")
    status = anchored.get("status")
    label = f"{client.system} ticket {ticket}" if ticket else f"{client.system} ticket"
    if status == "no ticket":
        return "unknown", "no ticket for the incident when it was sealed: only the anchor log pins it"
    if status == "failed":
        return "missing", f"could not be put on the {label}: {anchored.get('error', '')}"
    text = seal_comment(manifest)
    digest = comment_digest(text)
    if any(e.operation == "comment" and comment_digest(str(e.payload.get("text", ""))) == digest
           for e in client.outbox.pending(check_key(incident))):
        return "pending", f"waiting in the outbox for the {label} (the ticket system was unreachable)"
    comments = _ticket_comments(client, str(ticket)) if ticket else None
    if comments is not None:
        if any(manifest["root"] in comment for comment in comments):
            return "on ticket", f"on the {label}"
        return "missing", f"the {label} does not carry this root (its roots: {', '.join(_roots(comments)) or 'none'})"
    if digest in client.state(check_key(incident)).comments:
        return "on ticket", f"delivered to the {label} (as recorded when it was sent)"
    return "unknown", f"sent to the {label}; check there that it carries root {manifest['root']}"


def _ticket_comments(client: TicketClient, ticket: str) -> list[str] | None:
    """The ticket's comments, for a ticket system that can be read back here (the file store)."""
    from tourniquet.connectors.tickets.file import FileStore

    if not isinstance(client.backend, FileStore):
        return None
    try:
        record = client.backend.read(ticket)
    except ConnectorError:
        return []
    return [str(c.get("text", "")) for c in record.get("comments", []) if isinstance(c, dict)]


_SEAL = re.compile(r"^Evidence sealed: incident (?P<incident>\S+), seal (?P<seq>\d+)\nroot: (?P<root>[0-9a-f]{64})$",
                   re.MULTILINE)


def _roots(comments: list[str]) -> list[str]:
    return [m.group("root") for c in comments for m in _SEAL.finditer(c)]


def roots_on_ticket(client: TicketClient, incident: str) -> list[tuple[str, int, str]] | None:
    """Every seal root the incident's tickets carry, as ``(ticket, sequence, root)``; None when the ticket
    system cannot be read back here (only the file store can)."""
    return roots_of_seals(client, incident, incident)


def roots_of_seals(client: TicketClient, key: str, sealed: str) -> list[tuple[str, int, str]] | None:
    """The roots of bundle ``sealed``'s seals on the tickets of incident ``key`` (the national summary's
    seals go on each region's ticket of the incident); None when the system cannot be read back here."""
    from tourniquet.connectors.tickets.file import FileStore

    if not isinstance(client.backend, FileStore):
        return None
    found = []
    for record in client.backend.tickets(check_key(key)):
        for comment in record.get("comments", []):
            text = str(comment.get("text", "")) if isinstance(comment, dict) else ""
            found += [(str(record["id"]), int(m.group("seq")), m.group("root")) for m in _SEAL.finditer(text)
                      if m.group("incident") == sealed]
    return found
