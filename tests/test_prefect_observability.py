"""What a responder sees in Prefect after a run: artifacts, events, the run's logs, no secret.

Scenario: one practitioner account is contained by a flow run. Afterwards, through the Prefect
API (as the UI reads it): the run is named after its incident and tagged ``live``; the report,
accounts table, progress, evidence and ticket artifacts exist under stable keys — the evidence
named by its folder and the root hash ``tourniquet evidence verify`` prints, the file store's
ticket shown as its own Markdown; a ``tourniquet.account.locked`` event names the account; the
run's logs carry each of our events once, as a readable line bound with incident, step and
account; and a secret registered for masking never reaches the server's log store, whoever
logged it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import structlog
from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from prefect.logging.handlers import APILogHandler

from tests.helpers import bind_result
from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import Slapd
from tourniquet.evidence import verify
from tourniquet.flows.artifacts import artifact_key
from tourniquet.flows.respond import run_playbook
from tourniquet.logs import configure_logging
from tourniquet.secrets import register_secret

T = TypeVar("T")
PLAYBOOK = str(Path(__file__).resolve().parents[1] / "playbooks" / "credential-misuse.yaml")


def _eventually(read: Callable[[], T], ok: Callable[[T], bool], deadline: float = 20) -> T:
    """Logs and events reach the server in batches: poll until they are there."""
    end = time.monotonic() + deadline
    while True:
        value = read()
        if ok(value) or time.monotonic() > end:
            return value
        time.sleep(0.3)


def _logs(flow_run_id: UUID) -> list[str]:
    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [log.message for log in logs]


def test_a_contained_account_leaves_artifacts_events_and_bound_logs(
    prefect_harness: None, site_file: Path, slapd: Slapd, practitioners: Directory
) -> None:
    suspect = practitioners.practitioners[20]
    incident = "INC_Observed.1"  # not a valid artifact key as it is: keys must be made safe

    state = run_playbook(PLAYBOOK, {"accounts": [suspect.uid]}, incident=incident, site=str(site_file),
                         return_state=True)
    result = state.result()
    flow_run_id = state.state_details.flow_run_id

    assert result["status"] == "completed"
    assert bind_result(slapd, suspect.dn, suspect.password) == "invalidCredentials"

    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
        assert flow_run.name == f"{incident}-credential-misuse" and "live" in flow_run.tags
        keys = {kind: artifact_key(incident, kind) for kind in ("report", "accounts", "progress", "evidence", "ticket")}
        artifacts = {a.key: a for a in client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=list(keys.values()))),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))}
    assert keys["report"] == "tourniquet-inc-observed-1-report"
    assert set(artifacts) == set(keys.values())
    assert suspect.uid in str(artifacts[keys["report"]].data)
    assert artifacts[keys["progress"]].data == 100.0
    facts = verify(Path(result["journal"]).parent, incident=incident).facts
    evidence = artifacts[keys["evidence"]]
    assert evidence.type == "markdown" and "file://" not in evidence.data
    assert f"`{Path(result['journal']).parent}`" in evidence.data and f"`{facts['root']}`" in evidence.data
    ticket = artifacts[keys["ticket"]]
    assert ticket.type == "markdown" and suspect.uid in ticket.data and "# Credential misuse" in ticket.data
    rows = json.loads(artifacts[keys["accounts"]].data)
    no_idp = "skipped — no identity provider configured"
    assert rows == [{"account": suspect.uid, "outcome": "contained", "scramble": "applied", "lock": "applied",
                     "reset": "already so — set by scramble_password", "end_sessions": no_idp, "idp_disable": no_idp}]

    def locked_events() -> list[Any]:
        with get_client(sync_client=True) as client:
            return client.read_events(EventFilter(
                event=EventNameFilter(name=["tourniquet.account.locked"]),
                resource=EventResourceFilter(id=[f"tourniquet.account.{suspect.uid}"])), limit=50).events

    # the session's Prefect server also holds other tests' runs on this practitioner: count this incident's
    events = [e for e in _eventually(locked_events, bool) if e.payload.get("incident") == incident]
    assert len(events) == 1
    assert any(r.id == f"tourniquet.incident.{incident}" for r in events[0].related)

    def incident_events() -> list[str]:
        with get_client(sync_client=True) as client:
            page = client.read_events(EventFilter(resource=EventResourceFilter(id=[f"tourniquet.incident.{incident}"])),
                                      limit=50)
        return sorted(e.event for e in page.events)

    assert _eventually(incident_events, lambda names: len(names) == 2) == [
        "tourniquet.incident.completed", "tourniquet.incident.opened"]

    messages = _eventually(lambda: _logs(flow_run_id), lambda m: sum("change.applied" in x for x in m) >= 4)
    applied = [m.split(" change.applied")[0] for m in messages if "change.applied" in m and "ticket:" not in m]
    assert sorted(applied) == [f"[{incident} lock {suspect.uid}]", f"[{incident} scramble {suspect.uid}]"], messages


def test_secrets_are_masked_before_they_reach_the_prefect_run_logs(prefect_harness: None) -> None:
    secret = "hunter2-ldap-bind-password"
    register_secret(secret)

    @flow(name="leaky")
    def leaky() -> None:
        configure_logging()
        structlog.get_logger("tourniquet").warning("bind.retry", password=secret, url=f"ldap://x?pw={secret}")
        get_run_logger().warning("prefect's own logger sees %s too", secret)
        try:
            raise RuntimeError(f"server said: bad password {secret}")
        except RuntimeError:
            get_run_logger().exception("a traceback with the secret in it")

    state = leaky(return_state=True)
    messages = _eventually(lambda: _logs(state.state_details.flow_run_id),
                           lambda m: sum("***" in x for x in m) >= 3)

    assert sum("***" in x for x in messages) >= 3, messages
    assert not [m for m in messages if secret in m]


def test_a_chunk_of_250_locked_accounts_sends_events_prefect_accepts_naming_every_account(prefect_harness: None) -> None:
    """Prefect keeps at most 100 related resources per event, the run's own included: a big chunk is told in
    several events of at most 50 accounts."""
    from tourniquet.actions.context import PlannedChange
    from tourniquet.flows.events import ACCOUNTS_PER_EVENT, emit_changes

    incident = f"inc-events-{time.time_ns()}"
    accounts = [f"u{n:04d}" for n in range(250)]
    emit_changes([PlannedChange("lock", "directory.lock", "directory", f"uid={a},ou=people", "lock", {}, {},
                                "applied", account=a) for a in accounts], incident, "credential-misuse")

    def grouped() -> list[Any]:
        with get_client(sync_client=True) as client:
            return client.read_events(EventFilter(
                event=EventNameFilter(name=["tourniquet.accounts.locked"]),
                resource=EventResourceFilter(id=[f"tourniquet.incident.{incident}"])), limit=50).events

    events = _eventually(grouped, lambda found: sum(e.payload["count"] for e in found) == 250)
    assert sorted(a for e in events for a in e.payload["accounts"]) == accounts
    assert len(events) == 5 and all(len(e.related) <= ACCOUNTS_PER_EVENT + 1 for e in events)
