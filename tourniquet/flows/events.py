"""Prefect events for what a run did, so automations (and a SIEM) can react.

Resources: ``tourniquet.account.<account>`` for a change to an account,
``tourniquet.incident.<id>`` for the incident. Names say what happened, in the past tense:
``tourniquet.account.locked``, ``tourniquet.account.sessions-ended``,
``tourniquet.incident.opened``, ``tourniquet.incident.completed`` … Only changes actually
applied produce account events (not plans, not no-ops). Emitting never fails a run.
"""

from __future__ import annotations

import json
import re
from typing import Any

import structlog

from tourniquet.actions.context import PlannedChange
from tourniquet.secrets import mask_data

__all__ = ["account_event_name", "emit_change", "emit_changes", "emit_incident", "accounts_per_event",
           "ACCOUNT_EVENTS", "ACCOUNTS_PER_EVENT"]

log = structlog.get_logger("tourniquet")

#: operation (as actions journal it) → event name. Unknown operations get ``tourniquet.account.<operation>``.
ACCOUNT_EVENTS = {
    "lock": "tourniquet.account.locked",
    "unlock": "tourniquet.account.unlocked",
    "force_password_reset": "tourniquet.account.password-reset-forced",
    "clear_password_reset": "tourniquet.account.password-reset-cleared",
    "end_sessions": "tourniquet.account.sessions-ended",
    "logout": "tourniquet.account.sessions-ended",
    "revoke_sessions": "tourniquet.account.sessions-ended",
    "revoke_tokens": "tourniquet.account.tokens-revoked",
    "disable": "tourniquet.account.disabled",
    "enable": "tourniquet.account.enabled",
}


#: At most this many accounts per grouped event. Prefect keeps at most 100 related resources per event
#: (``PREFECT_SERVER_EVENTS_MAXIMUM_RELATED_RESOURCES``), and its events worker adds the run's own — flow
#: run, task run, flow, deployment, work queue, work pool and one per tag — *after* the event is built:
#: past the maximum it drops them with a warning per event. The incident, 50 accounts and the run's
#: resources stay well under it (:func:`accounts_per_event` leaves room for every tag as well).
ACCOUNTS_PER_EVENT = 50

#: The run-context resources Prefect's events worker may add besides tags (see above).
RUN_CONTEXT_RESOURCES = 6


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.@-]+", "-", text.lower()).strip("-") or "unknown"


def accounts_per_event() -> int:
    """How many accounts one grouped event can name and still take every resource of the run's context."""
    maximum, tags = 100, set()
    try:
        from prefect.context import FlowRunContext, TaskRunContext
        from prefect.settings import get_current_settings

        maximum = int(get_current_settings().server.events.maximum_related_resources)
        flow_context, task_context = FlowRunContext.get(), TaskRunContext.get()
        if flow_context and flow_context.flow_run:
            tags |= set(flow_context.flow_run.tags)
        if task_context and task_context.task_run:
            tags |= set(task_context.task_run.tags)
    except Exception:  # outside a run, or another Prefect: the fixed bound alone
        pass
    room = maximum - 1 - RUN_CONTEXT_RESOURCES - 2 * len(tags)  # tags twice: the deployment's may differ
    return max(1, min(ACCOUNTS_PER_EVENT, room))


def account_event_name(operation: str) -> str:
    return ACCOUNT_EVENTS.get(operation, f"tourniquet.account.{_slug(operation)}")


def _incident_resource(incident: str, playbook: str) -> dict[str, str]:
    return {"prefect.resource.id": f"tourniquet.incident.{incident}", "prefect.resource.name": incident,
            "prefect.resource.role": "incident", "tourniquet.playbook": playbook}


def _emit(event: str, resource: dict[str, str], related: list[dict[str, str]], payload: dict[str, Any]) -> None:
    try:
        from prefect.events import emit_event

        masked = mask_data(json.loads(json.dumps(payload, default=str)))
        emit_event(event=event, resource=mask_data(resource), related=mask_data(related), payload=masked)
    except Exception as exc:  # an event is a notification: losing one must not stop a containment
        log.warning("event.not_emitted", event_name=event, error=str(exc))


def emit_change(change: PlannedChange, incident: str, playbook: str) -> None:
    """One event per change applied to an account (a ticket is not an account: no event for it)."""
    if change.outcome != "applied" or not change.account:
        return
    resource = {"prefect.resource.id": f"tourniquet.account.{change.account}",
                "prefect.resource.name": change.account, "tourniquet.system": change.system}
    payload = {"incident": incident, "step": change.step, "action": change.action, "operation": change.operation,
               "before": change.before, "after": change.after}
    _emit(account_event_name(change.operation), resource, [_incident_resource(incident, playbook)], payload)


def emit_changes(changes: list[PlannedChange], incident: str, playbook: str) -> None:
    """The changes of one chunk: an event per account for a chunk of one (a small run), else one per operation.

    A 10,000-account containment would send 20,000 events, each of which the Prefect server stores
    and matches against every automation (measured: about 2 ms of server CPU each, on the same cores
    as the containment). A chunk of many accounts sends ``tourniquet.accounts.<done>`` instead (e.g.
    ``tourniquet.accounts.locked``): the incident as its resource, each account a related resource
    (role ``account``), the accounts in the payload too — at most :func:`accounts_per_event` per event,
    so that Prefect never has to drop the run's own resources from it.
    """
    applied = [c for c in changes if c.outcome == "applied" and c.account]
    if len({c.account for c in applied}) <= 1:
        for change in applied:
            emit_change(change, incident, playbook)
        return
    by_operation: dict[str, list[PlannedChange]] = {}
    for change in applied:
        by_operation.setdefault(change.operation, []).append(change)
    size = accounts_per_event()
    for operation, group in by_operation.items():
        every = sorted({str(c.account) for c in group})
        for start in range(0, len(every), size):
            accounts = every[start:start + size]
            related = [_incident_resource(incident, playbook)] + [
                {"prefect.resource.id": f"tourniquet.account.{a}", "prefect.resource.name": a,
                 "prefect.resource.role": "account"} for a in accounts]
            resource = {k: v for k, v in _incident_resource(incident, playbook).items()
                        if k != "prefect.resource.role"}
            payload = {"incident": incident, "step": group[0].step, "action": group[0].action,
                       "operation": operation, "accounts": accounts, "count": len(accounts)}
            _emit(account_event_name(operation).replace("tourniquet.account.", "tourniquet.accounts.", 1), resource,
                  related, payload)


def emit_incident(what: str, incident: str, playbook: str, **payload: Any) -> None:
    """``tourniquet.incident.<what>``: opened, completed, failed, planned, rolled-back."""
    resource = {k: v for k, v in _incident_resource(incident, playbook).items() if k != "prefect.resource.role"}
    _emit(f"tourniquet.incident.{_slug(what)}", resource, [], {"incident": incident, "playbook": playbook, **payload})
