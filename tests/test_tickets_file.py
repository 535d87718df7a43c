"""The embedded ticket store: one Markdown + JSON file per ticket, one ticket per incident.

Responders re-run playbooks and two of them may start the same incident at once: the
incident still has one ticket. Dry-runs write nothing anywhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tourniquet.connectors.tickets import TicketClient, TicketDraft
from tourniquet.connectors.tickets.file import FileStore
from tourniquet.demo.practitioners import Directory
from tourniquet.engine.execute import execute_playbook

PLAYBOOK = str(Path(__file__).resolve().parents[1] / "playbooks" / "credential-misuse.yaml")


def _client(tmp_path: Path, state: str = "state") -> TicketClient:
    return TicketClient(FileStore(tmp_path / "tickets"), tmp_path / state)


def test_open_rerun_comment_close(tmp_path: Path) -> None:
    client = _client(tmp_path)
    draft = TicketDraft(title="Credential misuse: 1 account contained", body="Locked: jdupont",
                        labels=["credential-misuse"], links={"evidence": "/evidence/inc-1"})

    opened = client.open("inc-1", draft)
    again = _client(tmp_path).open("inc-1", draft)
    client.comment("inc-1", "Data scope: 3 patients")
    client.resolve("inc-1", "Closed after review")

    assert again.ticket_id == opened.ticket_id and again.status == "noop"
    files = sorted(p.name for p in (tmp_path / "tickets").iterdir() if not p.name.startswith("."))
    assert files == ["inc-1-1.json", "inc-1-1.md"]
    record = json.loads((tmp_path / "tickets" / "inc-1-1.json").read_text())
    assert record["key"] == "inc-1" and record["status"] == "closed"
    assert [c["text"] for c in record["comments"]] == ["Data scope: 3 patients", "Closed after review"]
    markdown = (tmp_path / "tickets" / "inc-1-1.md").read_text()
    assert "- evidence: /evidence/inc-1" in markdown and "Data scope: 3 patients" in markdown


def test_changed_content_updates_the_same_ticket(tmp_path: Path) -> None:
    client = _client(tmp_path)
    first = client.open("inc-2", TicketDraft(title="Credential misuse", body="Locked: a"))
    second = client.open("inc-2", TicketDraft(title="Credential misuse", body="Locked: a, b"))

    assert second.status == "delivered" and second.ticket_id == first.ticket_id
    assert FileStore(tmp_path / "tickets").read(str(first.ticket_id))["body"] == "Locked: a, b"


_RACER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from tourniquet.connectors.tickets.file import FileStore
    from tourniquet.connectors.tickets import TicketClient, TicketDraft
    folder, state = Path(sys.argv[1]), Path(sys.argv[2])
    client = TicketClient(FileStore(folder), state)
    print(client.open("inc-race", TicketDraft(title="same incident", body="race")).ticket_id)
""")


def test_concurrent_processes_make_one_ticket(tmp_path: Path) -> None:
    """Four processes, each with its own state_dir (so only the store's own lock can save us)."""
    racers = [
        subprocess.Popen([sys.executable, "-c", _RACER, str(tmp_path / "tickets"), str(tmp_path / f"state-{n}")],
                         stdout=subprocess.PIPE, text=True)
        for n in range(4)
    ]
    ids = {racer.communicate(timeout=60)[0].strip().splitlines()[-1] for racer in racers}

    assert ids == {"inc-race-1"}
    assert [t["id"] for t in FileStore(tmp_path / "tickets").tickets("inc-race")] == ["inc-race-1"]


def test_plan_sends_and_queues_nothing(site_file: Path, practitioners: Directory) -> None:
    suspects = [practitioners.practitioners[i] for i in (2, 8)]

    summary = execute_playbook(PLAYBOOK, {"accounts": [p.uid for p in suspects]}, dry_run=True, site=str(site_file))

    assert summary.status == "planned"
    assert summary.results["ticket"]["outcome"] == "planned"
    assert summary.results["ticket_update"]["outcome"] == "planned"
    assert not (site_file.parent / "tickets").exists()
    assert not (site_file.parent / "state" / "outbox").exists()


def test_containment_opens_the_ticket_and_reruns_keep_it(site_file: Path, practitioners: Directory) -> None:
    suspects = [practitioners.practitioners[i] for i in (1, 9)]
    inputs = {"accounts": [p.uid for p in suspects], "reason": "ARS alert 12"}

    first = execute_playbook(PLAYBOOK, inputs, dry_run=False, site=str(site_file))
    second = execute_playbook(PLAYBOOK, inputs, dry_run=False, site=str(site_file))

    store = FileStore(site_file.parent / "tickets")
    tickets = store.tickets(first.incident)
    assert len(tickets) == 1
    ticket = tickets[0]
    assert first.results["ticket"]["ticket_id"] == ticket["id"] == second.results["ticket"]["ticket_id"]
    assert second.results["ticket"]["outcome"] == "noop"
    assert ticket["title"] == "Credential misuse: 2 of 2 accounts contained"
    names = ", ".join(sorted(p.uid for p in suspects))
    assert f"lock (directory.lock): applied 2 ({names})" in ticket["body"]
    assert ticket["links"]["journal"] == str(first.journal)
    updates = [c["text"] for c in ticket["comments"] if not c["text"].startswith("Evidence sealed:")]
    seals = [c["text"] for c in ticket["comments"] if c["text"].startswith("Evidence sealed:")]
    assert len(updates) == 1
    assert updates[0].startswith(f"Data scope for incident {first.incident} (no audit source)")
    assert [s.splitlines()[0] for s in seals] == [f"Evidence sealed: incident {first.incident}, seal 0001",
                                                  f"Evidence sealed: incident {first.incident}, seal 0002"]
    assert f"ticket (ticket): file ticket {ticket['id']}" in Path(str(first.report)).read_text()


def test_losing_the_create_race_updates_the_winner(tmp_path: Path) -> None:
    """A run that looked before another created (no shared state_dir) finds the winner under the store's lock."""
    store = FileStore(tmp_path / "tickets")
    winner = store.create("inc-3", TicketDraft(title="first"))

    loser = store.create("inc-3", TicketDraft(title="second"))

    assert loser.id == winner.id
    assert [t["title"] for t in store.tickets("inc-3")] == ["second"]


def test_undo_of_a_false_alarm_closes_the_ticket(site_file: Path, practitioners: Directory) -> None:
    from tourniquet.config import load_site
    from tourniquet.engine.undo import undo_incident
    from tourniquet.site import Site

    summary = execute_playbook(PLAYBOOK, {"accounts": [practitioners.practitioners[6].uid]}, dry_run=False,
                               site=str(site_file))
    site = Site(load_site(site_file))
    try:
        undone = undo_incident(summary.incident, site)
    finally:
        site.close()

    [ticket] = FileStore(site_file.parent / "tickets").tickets(summary.incident)
    assert ticket["status"] == "closed"
    texts = [c["text"] for c in ticket["comments"]]
    assert texts[-2] == "False alarm: the containment was undone."
    assert texts[-1].startswith(f"Evidence sealed: incident {summary.incident}, seal 0002"), "the undo is sealed too"
    assert {u["action"] for u in undone if u["status"] == "done"} >= {"tickets.close", "directory.unlock"}
