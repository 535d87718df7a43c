"""Reinstate: after a false alarm, put an incident's accounts back as their snapshots recorded them.

For every account the incident snapshotted, ``directory.reinstate`` restores the lock and reset
state and the groups, and refuses (changing nothing) when the entry changed in a way the
snapshot and the journal cannot explain. The directory changes it covers are then marked
undone in the journal, so ``tourniquet undo`` will not replay them. Directory changes of
accounts without a snapshot are reversed by their own undo calls (:mod:`tourniquet.engine.undo`).
Identity provider changes (a disabled user) are reversed by their own undo calls too.
A scrambled password cannot come back (it was never read): the result says so, and
``tourniquet recover`` gives the owner a one-time password instead.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import structlog

from tourniquet import registry
from tourniquet.actions.context import ActionContext
from tourniquet.engine.inputs import check_incident_id
from tourniquet.engine.sealing import seal_incident
from tourniquet.engine.undo import false_alarm_after_all, pending_undo, reopen, undo_records
from tourniquet.errors import TourniquetError
from tourniquet.journal import Journal, read_journal
from tourniquet.model import Account
from tourniquet.site import Site

__all__ = ["reinstate_incident", "Runner"]

log = structlog.get_logger("tourniquet")
Runner = Callable[[str, Callable[[], Any]], Any]


def _direct(label: str, call: Callable[[], Any]) -> Any:
    return call()


def reinstate_incident(incident: str, site: Site, *, run: str = "reinstate", runner: Runner = _direct,
                       false_alarm_by: str = "") -> list[dict[str, Any]]:
    """Reinstate every snapshotted account of ``incident``; return one entry per account or undone change.

    Like ``undo``, refused for an incident concluded as real unless ``false_alarm_by`` names who decided otherwise.
    """
    check_incident_id(incident)
    folder = site.incident_dir(incident)
    path = folder / "journal.jsonl"
    if not path.exists():
        raise TourniquetError(f"no journal for incident {incident!r} in {site.config.evidence_dir}")
    records = list(read_journal(path))
    playbook = next((r.get("playbook") for r in records if r.get("type") == "run" and r.get("playbook")), "") or ""
    everything = pending_undo(records)
    pending = [r for r in everything if r.get("system") == "directory"]
    concluded = false_alarm_after_all(records, incident, false_alarm_by, command="reinstate")
    journal = Journal(path, incident=incident, run=run)
    reopen(journal, concluded, false_alarm_by)
    journal.write("run", status="reinstate started", playbook=playbook)
    spec = registry.get("directory.reinstate")
    assert spec is not None
    results: list[dict[str, Any]] = []
    handled: set[str] = set()
    for snapshot in sorted((folder / "snapshots").glob("*.json")):
        recorded = json.loads(snapshot.read_text(encoding="utf-8"))
        account = Account(dn=recorded["dn"], uid=recorded.get("uid"))
        label = account.uid or account.dn
        handled.add(label)
        context = ActionContext(incident=incident, playbook=playbook, step="reinstate", action=spec.name,
                                dry_run=False, site=site, journal=journal)
        entry: dict[str, Any] = {"target": label, "action": spec.name, "operation": "reinstate"}
        try:
            result = runner(label, functools.partial(spec.function, context, account=account, snapshot=str(snapshot)))
        except TourniquetError as exc:
            journal.write("reinstate", account=label, status="failed", error=str(exc))
            log.error("reinstate.failed", account=label, error=str(exc))
            results.append({**entry, "status": "failed", "error": str(exc)})
            continue
        status = "done" if result.outcome == "applied" else "noop"
        for record in pending:
            if record.get("target") == label:
                journal.write("undo", undoes=record["hash"], action=spec.name, target=label,
                              operation=record.get("operation"), status=status)
        results.append({**entry, "status": status, "password_replaced": result.password_replaced,
                        "groups_added": result.groups_added})
    # directory changes of accounts without a snapshot, and the identity provider's (a disabled IdP user)
    others = [r for r in pending if r.get("target") not in handled] + [
        r for r in everything if r.get("system") == "identity"]
    results.extend(undo_records(others, site, journal, playbook))
    failed = sum(1 for r in results if r["status"] == "failed")
    journal.write("run", status="reinstate finished", reinstated=len(results) - failed, failed=failed)
    seal_incident(site, incident, note=f"reinstate: {len(results) - failed} reinstated, {failed} refused or failed")
    return results
