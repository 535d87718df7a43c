"""Undo: reverse recorded changes, newest first, through the same guarded actions.

Used by ``on_failure: rollback`` (this run's changes) and by ``tourniquet undo INCIDENT``
(every change of an incident, after a false alarm). Each applied change in the journal
carries the undo call that reverses it; a change already undone is skipped, so undo
can be run again safely.
"""

from __future__ import annotations

from typing import Any

import structlog

from tourniquet import registry
from tourniquet.errors import TourniquetError
from tourniquet.flows.context import ActionContext
from tourniquet.journal import Journal, read_journal
from tourniquet.site import Site

__all__ = ["undo_records", "undo_incident", "pending_undo"]

log = structlog.get_logger("tourniquet")


def pending_undo(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Applied changes with an undo call that no later undo record has reversed, oldest first."""
    undone = {r.get("undoes") for r in records if r.get("type") == "undo" and r.get("status") in ("done", "noop")}
    return [
        r for r in records
        if r.get("type") == "change" and r.get("outcome") == "applied" and r.get("undo")
        and r.get("hash") not in undone and not str(r.get("step", "")).startswith("undo:")
    ]


def undo_records(records: list[dict[str, Any]], site: Site, journal: Journal, playbook: str) -> list[dict[str, Any]]:
    """Run the undo call of each record, newest first; return what happened to each."""
    done: list[dict[str, Any]] = []
    for record in reversed(records):
        call = record["undo"]
        spec = registry.get(call["action"])
        entry = {"undoes": record["hash"], "action": call["action"], "target": record.get("target"),
                 "operation": record.get("operation")}
        if spec is None:
            journal.write("undo", **entry, status="failed", error=f"unknown undo action {call['action']}")
            done.append({**entry, "status": "failed"})
            continue
        context = ActionContext(
            incident=journal.incident, playbook=playbook, step=f"undo:{record.get('step')}", action=spec.name,
            dry_run=False, site=site, journal=journal,
        )
        try:
            arguments = spec.validate_arguments(call.get("arguments", {}))
            spec.function(context, **{n: getattr(arguments, n) for n in type(arguments).model_fields})
        except (TourniquetError, ValueError) as exc:
            journal.write("undo", **entry, status="failed", error=str(exc))
            log.error("undo.failed", target=record.get("target"), error=str(exc))
            done.append({**entry, "status": "failed", "error": str(exc)})
            continue
        status = "done" if any(c.outcome == "applied" for c in context.changes) else "noop"
        journal.write("undo", **entry, status=status)
        done.append({**entry, "status": status})
    return done


def undo_incident(incident: str, site: Site, *, run: str = "undo") -> list[dict[str, Any]]:
    """Reverse every change an incident made, newest first."""
    path = site.incident_dir(incident) / "journal.jsonl"
    if not path.exists():
        raise TourniquetError(f"no journal for incident {incident!r} in {site.config.evidence_dir}")
    records = list(read_journal(path))
    playbook = next((r.get("playbook") for r in records if r.get("type") == "run" and r.get("playbook")), "")
    journal = Journal(path, incident=incident, run=run)
    journal.write("run", status="undo started", playbook=playbook)
    result = undo_records(pending_undo(records), site, journal, playbook or "")
    journal.write("run", status="undo finished", undone=sum(1 for r in result if r["status"] == "done"),
                  failed=sum(1 for r in result if r["status"] == "failed"))
    return result
