"""Reinstate: after a false alarm, put an incident's accounts back as their snapshots recorded them.

For every account the incident snapshotted, ``directory.reinstate`` restores the lock and reset
state and the groups, and refuses (changing nothing) when the entry changed in a way the
snapshot and the journal cannot explain. The directory changes it covers are then marked
undone in the journal, so ``tourniquet undo`` will not replay them. Directory changes of
accounts without a snapshot are reversed by their own undo calls (:mod:`tourniquet.flows.undo`).
A scrambled password cannot come back (it was never read): the result says so.
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable
from typing import Any

import structlog
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.utilities.annotations import quote

from tourniquet import registry
from tourniquet.config import load_site
from tourniquet.connectors.directory import Account
from tourniquet.errors import TourniquetError
from tourniquet.flows.context import ActionContext
from tourniquet.flows.undo import pending_undo, undo_records
from tourniquet.journal import Journal, read_journal
from tourniquet.logs import configure_logging
from tourniquet.site import Site

__all__ = ["reinstate", "reinstate_incident", "add_parser"]

log = structlog.get_logger("tourniquet")
Runner = Callable[[str, Callable[[], Any]], Any]


def _direct(label: str, call: Callable[[], Any]) -> Any:
    return call()


def reinstate_incident(incident: str, site: Site, *, run: str = "reinstate", runner: Runner = _direct) -> list[dict[str, Any]]:
    """Reinstate every snapshotted account of ``incident``; return one entry per account or undone change."""
    folder = site.incident_dir(incident)
    path = folder / "journal.jsonl"
    if not path.exists():
        raise TourniquetError(f"no journal for incident {incident!r} in {site.config.evidence_dir}")
    records = list(read_journal(path))
    playbook = next((r.get("playbook") for r in records if r.get("type") == "run" and r.get("playbook")), "") or ""
    pending = [r for r in pending_undo(records) if r.get("system") == "directory"]
    journal = Journal(path, incident=incident, run=run)
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
    others = [r for r in pending if r.get("target") not in handled]
    results.extend(undo_records(others, site, journal, playbook))
    failed = sum(1 for r in results if r["status"] == "failed")
    journal.write("run", status="reinstate finished", reinstated=len(results) - failed, failed=failed)
    return results


@task(name="reinstate-account", task_run_name="reinstate[{label}]", cache_policy=NO_CACHE, persist_result=False)
def _reinstate_account(label: str, call: Any) -> Any:
    return call()


def _prefect_runner(label: str, call: Callable[[], Any]) -> Any:
    return _reinstate_account(label, quote(call))


@flow(name="reinstate", log_prints=False)
def reinstate(incident: str, site: str | None = None) -> list[dict[str, Any]]:
    """Undo an incident's directory changes: each account back as its snapshot recorded it."""
    configure_logging()
    context = FlowRunContext.get()
    run_id = str(context.flow_run.id) if context and context.flow_run else "reinstate"
    runtime = Site(load_site(site))
    try:
        results = reinstate_incident(incident, runtime, run=run_id, runner=_prefect_runner)
    finally:
        runtime.close()
    failed = [r for r in results if r["status"] == "failed"]
    if failed:
        raise TourniquetError(f"reinstate {incident}: {len(failed)} failed: " + "; ".join(
            f"{r['target']}: {r.get('error', '')}" for r in failed))
    return results


def _command(args: argparse.Namespace) -> int:
    configure_logging()
    runtime = Site(load_site(args.site))
    try:
        results = reinstate_incident(args.incident, runtime)
    finally:
        runtime.close()
    for entry in results:
        extra = " (password was replaced: the practitioner needs a reset)" if entry.get("password_replaced") else ""
        print(f"  {entry['status']:6} {entry['target']}: {entry['operation']}{extra} {entry.get('error', '')}".rstrip())
    failed = sum(1 for r in results if r["status"] == "failed")
    print(f"reinstate {args.incident}: {len(results) - failed} reinstated or already as recorded, {failed} refused/failed")
    return 1 if failed else 0


def add_parser(sub: Any) -> None:
    """``tourniquet reinstate INCIDENT``: the same, without a Prefect server."""
    command = sub.add_parser("reinstate", help="put an incident's accounts back as their snapshots recorded them")
    command.add_argument("incident")
    command.add_argument("--site")
    command.set_defaults(func=_command)
