"""The incident ticket in a real Request Tracker 5 (Debian 12 packages, private copy on loopback).

Open, re-run (same ticket), comment, close; concurrent runs for one incident give one
ticket; and the credential-misuse playbook run while RT is down: containment completes,
the ticket waits in the outbox, and once RT is back one ticket holds every comment in order.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import write_site
from tests.helpers import LdapAdmin, bind_result
from tests.rt import FIELD, RtServer, require_rt
from tourniquet.config import load_site
from tourniquet.connectors.tickets import TicketClient, TicketDraft, TicketsConfig
from tourniquet.connectors.tickets.rt import RequestTracker
from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import Slapd
from tourniquet.engine.execute import execute_playbook
from tourniquet.errors import PermanentError
from tourniquet.outbox import Outbox
from tourniquet.site import Site

PLAYBOOK = str(Path(__file__).resolve().parents[1] / "playbooks" / "credential-misuse.yaml")


@pytest.fixture(scope="session")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RtServer]:
    require_rt()
    server = RtServer(tmp_path_factory.mktemp("rt"))
    server.prepare()
    server.start()
    yield server
    server.stop()


def _config(rt: RtServer, tmp_path: Path, **overrides: object) -> TicketsConfig:
    secret = tmp_path / "rt-password"
    secret.write_text(rt.password + "\n")
    return TicketsConfig.model_validate({"kind": "rt", "url": rt.url, "user": "root",
                                         "password": {"file": str(secret)}, "timeout": 10, **overrides})


def _client(rt: RtServer, tmp_path: Path, state: str = "state", config: TicketsConfig | None = None,
            **overrides: object) -> TicketClient:
    return TicketClient(RequestTracker(config or _config(rt, tmp_path, **overrides)), tmp_path / state)


def test_open_rerun_comment_close(rt: RtServer, tmp_path: Path) -> None:
    key = "inc-rt-lifecycle"
    draft = TicketDraft(title="Credential misuse: 2 accounts contained", body="Locked: jdupont, amartin",
                        severity="high", links={"evidence": "/var/lib/tourniquet/evidence/" + key})
    first = _client(rt, tmp_path)

    opened = first.open(key, draft)
    again = first.open(key, draft)  # a re-run with the same content
    elsewhere = _client(rt, tmp_path, state="other-host").open(key, draft)  # no local record: found by IncidentKey
    first.comment(key, "Data scope: 14 patient records viewed")
    first.comment(key, "Data scope: 14 patient records viewed")  # a re-run's comment is not added twice
    closed = first.resolve(key, "False alarm ruled out; accounts stay locked until reset.")

    assert opened.status == "delivered" and opened.ticket_id
    assert again.status == "noop" and again.ticket_id == opened.ticket_id
    assert elsewhere.ticket_id == opened.ticket_id
    tickets = rt.tickets(key)
    assert [t["id"] for t in tickets] == [opened.ticket_id]
    assert tickets[0]["Status"] == "resolved" and closed.status == "delivered"
    texts = rt.texts(opened.ticket_id)
    assert texts[0].startswith("Locked: jdupont, amartin") and "evidence: /var/lib/tourniquet" in texts[0]
    assert texts.count("Data scope: 14 patient records viewed") == 1
    assert texts[-1].startswith("False alarm ruled out")
    assert opened.url == f"{rt.url}/Ticket/Display.html?id={opened.ticket_id}"


def test_concurrent_runs_make_one_ticket(rt: RtServer, tmp_path: Path) -> None:
    """Six responders open the same incident at once: one machine, one state_dir, one ticket."""
    key = "inc-rt-concurrent"
    draft = TicketDraft(title="Credential misuse", body="same incident, six runs")
    results: list[str | None] = []
    barrier = threading.Barrier(6, timeout=30)
    config = _config(rt, tmp_path)

    def run() -> None:
        client = _client(rt, tmp_path, config=config)
        barrier.wait()
        results.append(client.open(key, draft).ticket_id)
        client.close()

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(rt.tickets(key)) == 1
    assert set(results) == {rt.tickets(key)[0]["id"]}


def test_two_hosts_racing_keep_one_open_ticket(rt: RtServer, tmp_path: Path) -> None:
    """Without a shared state_dir both may create; the newer duplicate is resolved, pointing at the older."""
    key = "inc-rt-two-hosts"
    draft = TicketDraft(title="Credential misuse", body="two hosts")
    barrier = threading.Barrier(2, timeout=30)
    results: list[str | None] = []
    config = _config(rt, tmp_path)

    def run(state: str) -> None:
        client = _client(rt, tmp_path, state=state, config=config)
        barrier.wait()
        results.append(client.open(key, draft).ticket_id)

    threads = [threading.Thread(target=run, args=(f"host-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    open_tickets = rt.tickets(key, open_only=True)
    assert len(open_tickets) == 1
    assert set(results) == {open_tickets[0]["id"]}


def test_missing_custom_field_is_refused_not_silently_dropped(rt: RtServer, tmp_path: Path) -> None:
    """RT ignores an unknown custom field on create; the key would be lost, so the connector refuses."""
    client = _client(rt, tmp_path, custom_field="NoSuchField")
    with pytest.raises(PermanentError, match="custom field"):
        client.open("inc-rt-nofield", TicketDraft(title="x"))


def test_wrong_password_is_a_permanent_error_not_queued(rt: RtServer, tmp_path: Path) -> None:
    secret = tmp_path / "bad"
    secret.write_text("not-the-password\n")
    config = TicketsConfig.model_validate({"kind": "rt", "url": rt.url, "user": "root",
                                           "password": {"file": str(secret)}})
    client = TicketClient(RequestTracker(config), tmp_path / "state")
    with pytest.raises(PermanentError, match="authentication"):
        client.open("inc-rt-badauth", TicketDraft(title="x"))
    assert client.outbox.pending("inc-rt-badauth") == []


def test_ticket_system_down_during_the_playbook(
    rt: RtServer, tmp_path: Path, slapd: Slapd, practitioners: Directory, ldap_admin: LdapAdmin,
) -> None:
    """RT is down while the credential-misuse playbook runs: containment completes, the ticket waits in
    the outbox (a re-run adds nothing twice), and once RT is back one ticket holds every comment in order."""
    secret = tmp_path / "rt-password"
    secret.write_text(rt.password + "\n")
    site_file = write_site(tmp_path, slapd, practitioners, tickets={
        "kind": "rt", "url": rt.url, "user": "root", "password": {"file": str(secret)}, "timeout": 3})
    suspects = [practitioners.practitioners[i] for i in (5, 17)]
    inputs = {"accounts": [p.uid for p in suspects], "reason": "ARS alert 77"}
    try:
        rt.stop()
        summary = execute_playbook(PLAYBOOK, inputs, dry_run=False, site=str(site_file))
        rerun = execute_playbook(PLAYBOOK, inputs, dry_run=False, site=str(site_file))
        site = Site(load_site(site_file))
        scope = site.tickets.comment(summary.incident, "Data scope: 31 patient records viewed since 1 Nov")
        site.close()

        assert summary.status == rerun.status == "completed"
        for person in suspects:
            assert bind_result(slapd, person.dn, person.password) == "invalidCredentials"
        assert summary.results["ticket"]["outcome"] == "queued"
        assert summary.results["ticket_update"]["outcome"] == "queued"
        assert rerun.results["ticket"]["outcome"] == "noop", "the re-run finds the queued ticket"
        assert scope.status == "queued"
        outbox = Outbox(tmp_path / "state", "tickets-rt")
        # the ticket, the run's scope comment, each run's seal (its root hash), the hand-written comment
        assert [e.operation for e in outbox.pending(summary.incident)] == ["open"] + ["comment"] * 4
        verified = subprocess.run([sys.executable, "-m", "tourniquet.cli.main", "evidence", "verify",
                                   summary.incident, "--site", str(site_file)], capture_output=True, text=True)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "waiting in the outbox" in verified.stdout, "a root not yet on the ticket is said so, not hidden"
    finally:
        rt.start()
        ldap_admin.reset_all(practitioners)

    from tourniquet.flows.outbox import deliver_pending

    report = deliver_pending(str(site_file))

    assert report == {"delivered": 5, "pending": 0}
    tickets = rt.tickets(summary.incident)
    assert len(tickets) == 1
    texts = rt.texts(tickets[0]["id"])
    seals = [t for t in texts if t.startswith("Evidence sealed:")]
    texts = [t for t in texts if not t.startswith("Evidence sealed:")]
    assert texts[0].startswith("Reason: ") and "2 of 2 accounts contained" in texts[0], texts[0]
    assert texts[1].startswith(f"Data scope for incident {summary.incident}")
    assert texts[2] == "Data scope: 31 patient records viewed since 1 Nov"
    assert len(texts) == 3
    assert [s.splitlines()[0] for s in seals] == [f"Evidence sealed: incident {summary.incident}, seal 0001",
                                                  f"Evidence sealed: incident {summary.incident}, seal 0002"]
    assert rt.tickets(summary.incident)[0]["Subject"] == "Credential misuse: 2 of 2 accounts contained"
    assert FIELD == "IncidentKey"


def test_ticket_system_goes_down_in_the_middle_of_the_run(
    rt: RtServer, tmp_path: Path, slapd: Slapd, practitioners: Directory, ldap_admin: LdapAdmin,
) -> None:
    """RT answers when the run opens the ticket, then goes down before the run's last comment: the
    run still completes, the comment waits in the outbox, and once RT is back the one ticket holds the
    opening text and the comment, in order."""
    from tourniquet.engine.loader import load_playbook
    from tourniquet.engine.run import PlaybookRun
    from tourniquet.flows.outbox import deliver_pending

    secret = tmp_path / "rt-password"
    secret.write_text(rt.password + "\n")
    site_file = write_site(tmp_path, slapd, practitioners, tickets={
        "kind": "rt", "url": rt.url, "user": "root", "password": {"file": str(secret)}, "timeout": 3})
    suspects = [practitioners.practitioners[i] for i in (6, 18)]
    inputs = {"accounts": [p.uid for p in suspects], "reason": "ARS alert 78"}

    def take_rt_down_after_the_ticket_is_opened(step: str, status: str) -> None:
        if step == "ticket" and status == "completed":
            rt.stop()

    site = Site(load_site(site_file))
    try:
        run = PlaybookRun(load_playbook(PLAYBOOK), inputs, site, on_step=take_rt_down_after_the_ticket_is_opened)
        summary = run.execute()

        assert summary.status == "completed"
        for person in suspects:
            assert bind_result(slapd, person.dn, person.password) == "invalidCredentials"
        assert summary.results["ticket"]["outcome"] == "applied"
        assert summary.results["ticket_update"]["outcome"] == "queued"
        outbox = Outbox(tmp_path / "state", "tickets-rt")
        assert [e.operation for e in outbox.pending(summary.incident)] == ["comment"]
    finally:
        site.close()
        rt.start()
        ldap_admin.reset_all(practitioners)

    assert deliver_pending(str(site_file)) == {"delivered": 1, "pending": 0}
    tickets = rt.tickets(summary.incident)
    assert len(tickets) == 1
    texts = rt.texts(tickets[0]["id"])
    assert texts[0].startswith("Reason: ") and "2 of 2 accounts contained" in texts[0], texts[0]
    assert texts[1].startswith(f"Data scope for incident {summary.incident}")
    assert len(texts) == 2
