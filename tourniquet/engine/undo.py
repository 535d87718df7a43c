"""Undo: reverse recorded changes, newest first, through the same guarded actions.

Used by ``on_failure: rollback`` (this run's changes) and by ``tourniquet undo INCIDENT``
(every change of an incident, after a false alarm). Each applied change in the journal
carries the undo call that reverses it; a change already undone is skipped, so undo
can be run again safely.

``undo`` is the false-alarm path: once an incident's investigation was concluded (``conclude``:
it was real), undoing it would re-enable the accounts the attacker used, so it is refused unless a
named person says it was a false alarm after all (journaled before anything is undone).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import structlog

from tourniquet import registry
from tourniquet.actions.context import ActionContext
from tourniquet.engine.guardrails import identity_of
from tourniquet.engine.inputs import check_incident_id
from tourniquet.engine.sealing import seal_incident
from tourniquet.errors import ConnectorError, GuardrailError, NotAnAccount, NotFound, TourniquetError
from tourniquet.evidence import SealFailed
from tourniquet.journal import Journal, read_journal
from tourniquet.site import Site

__all__ = ["undo_records", "undo_incident", "pending_undo", "UndoRefused", "concluded_as_real",
           "false_alarm_after_all", "reopen"]

log = structlog.get_logger("tourniquet")


class UndoRefused(GuardrailError):
    """The incident was concluded as real: undoing it needs a named person's word that it was a false alarm."""


def concluded_as_real(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The record that concluded the investigation (a real incident), unless someone reopened it since."""
    verdict = None
    for record in records:
        if record.get("type") == "investigation":
            verdict = record if record.get("status") == "concluded" else None
    return verdict


def false_alarm_after_all(records: list[dict[str, Any]], incident: str, decided_by: str, *,
                          command: str) -> dict[str, Any] | None:
    """The conclusion a false-alarm command (undo, reinstate) goes against, if any; refused (nothing written)
    when the investigation concluded it was real and nobody is named as deciding otherwise."""
    concluded = concluded_as_real(records)
    if concluded is not None and not decided_by.strip():
        raise UndoRefused(
            f"incident {incident} was concluded as real by {concluded.get('by')!r} ({concluded.get('finding')!r}): "
            f"{command} would give the accounts back as the attacker left them. Nothing was changed. Give each "
            f"account back with `tourniquet recover {incident} --account ID`, or, if it was a false alarm after "
            f"all, say who decided so: `tourniquet {command} {incident} --false-alarm-after-all --by NAME`")
    return concluded


def reopen(journal: Journal, concluded: dict[str, Any] | None, decided_by: str) -> None:
    """Journal who decided that the incident concluded as real was a false alarm after all (before any change)."""
    if concluded is None:
        return
    journal.write("investigation", status="reopened", verdict="false alarm after all", by=decided_by.strip(),
                  concluded_by=concluded.get("by"), at=datetime.now(timezone.utc).isoformat())
    log.warning("undo.false_alarm_after_all", incident=journal.incident, by=decided_by.strip())


def pending_undo(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Applied changes with an undo call that no later undo record has reversed, oldest first."""
    undone = {r.get("undoes") for r in records if r.get("type") == "undo" and r.get("status") in ("done", "noop")}
    return [
        r for r in records
        if r.get("type") == "change" and r.get("outcome") == "applied" and r.get("undo")
        and r.get("hash") not in undone and not str(r.get("step", "")).startswith("undo:")
    ]


def _changes_an_account(record: dict[str, Any]) -> bool:
    spec = registry.get(record["undo"]["action"])
    return spec is not None and spec.target is not None


def undo_records(records: list[dict[str, Any]], site: Site, journal: Journal, playbook: str) -> list[dict[str, Any]]:
    """Run the undo call of each record, newest first; return what happened to each.

    Account changes are undone first, newest first; the others (closing the ticket with "the
    containment was undone") only once every account undo worked: until then they are
    ``deferred`` and the next undo runs them, so a ticket never says more than what happened.
    """
    ordered = list(reversed(records))
    accounts = [r for r in ordered if _changes_an_account(r)]
    others = [r for r in ordered if not _changes_an_account(r)]
    done = [_undo_one(record, site, journal, playbook) for record in accounts]
    failed = [d for d in done if d["status"] == "failed"]
    for record in others:
        if failed:
            entry = _entry(record)
            reason = f"waiting: {len(failed)} account change(s) could not be undone yet"
            journal.write("undo", **entry, status="deferred", error=reason)
            done.append({**entry, "status": "deferred", "error": reason})
        else:
            done.append(_undo_one(record, site, journal, playbook))
    return done


def _entry(record: dict[str, Any]) -> dict[str, Any]:
    return {"undoes": record["hash"], "action": record["undo"]["action"], "target": record.get("target"),
            "operation": record.get("operation")}


def _undo_one(record: dict[str, Any], site: Site, journal: Journal, playbook: str) -> dict[str, Any]:
    call = record["undo"]
    spec = registry.get(call["action"])
    entry = _entry(record)
    if spec is None:
        journal.write("undo", **entry, status="failed", error=f"unknown undo action {call['action']}")
        return {**entry, "status": "failed"}
    context = ActionContext(
        incident=journal.incident, playbook=playbook, step=f"undo:{record.get('step')}", action=spec.name,
        dry_run=False, site=site, journal=journal,
    )
    try:
        arguments = spec.validate_arguments(call.get("arguments", {}))
        _check_target(site, spec, arguments)
        spec.function(context, **{n: getattr(arguments, n) for n in type(arguments).model_fields})
    except (TourniquetError, ValueError) as exc:
        journal.write("undo", **entry, status="failed", error=str(exc))
        log.error("undo.failed", target=record.get("target"), error=str(exc))
        return {**entry, "status": "failed", "error": str(exc)}
    status = "done" if any(c.outcome == "applied" for c in context.changes) else "noop"
    journal.write("undo", **entry, status=status)
    return {**entry, "status": status}


def _check_target(site: Site, spec: registry.ActionSpec, arguments: Any) -> None:
    """The account an undo call changes is re-read and must still be a person's account (the journal's undo
    call is only as trustworthy as the journal): an OU, a group or a policy is refused, nothing sent."""
    if spec.target is None or not spec.name.startswith("directory."):
        return  # an identity provider's user is found by uid there, not by this DN
    dn = identity_of(getattr(arguments, spec.target, None))["dn"]
    if not dn:
        return
    try:
        site.directory.resolve(dn)
    except NotFound as exc:
        raise NotAnAccount(f"refusing to {spec.name} {dn}: not a person's account ({exc.detail})",
                           system="directory") from None
    except ConnectorError:
        return  # the action meets the same error and says so


def undo_incident(incident: str, site: Site, *, run: str = "undo",
                  false_alarm_by: str = "") -> list[dict[str, Any]]:
    """Reverse every change an incident made, newest first; then seal the bundle again.

    Refused (:class:`UndoRefused`, nothing written) when the investigation was concluded as real,
    unless ``false_alarm_by`` names who decided it was a false alarm after all.
    """
    check_incident_id(incident)
    path = site.incident_dir(incident) / "journal.jsonl"
    if not path.exists():
        raise TourniquetError(f"no journal for incident {incident!r} in {site.config.evidence_dir}")
    records = list(read_journal(path))
    playbook = next((r.get("playbook") for r in records if r.get("type") == "run" and r.get("playbook")), "")
    concluded = false_alarm_after_all(records, incident, false_alarm_by, command="undo")
    journal = Journal(path, incident=incident, run=run)
    reopen(journal, concluded, false_alarm_by)
    journal.write("run", status="undo started", playbook=playbook)
    result = undo_records(pending_undo(records), site, journal, playbook or "")
    done, failed = sum(1 for r in result if r["status"] == "done"), sum(1 for r in result if r["status"] == "failed")
    journal.write("run", status="undo finished", undone=done, failed=failed)
    try:
        seal_incident(site, incident, note=f"undo: {done} reversed, {failed} failed")
    except SealFailed as exc:  # the undo happened: say so, and that its evidence could not be sealed
        log.error("evidence.not_sealed", incident=incident, error=str(exc))
        result.append({"undoes": None, "action": "evidence.seal", "target": "evidence", "operation": "seal",
                       "status": "failed", "error": str(exc)})
    return result
