"""A thousand accounts contained from a terminal: the bar, the summary, nothing else — and every account in an event.

Scenario: a responder types ``tourniquet run`` for 1,000 compromised practitioners (a directory of
1,020), on a terminal, at the default level, with a Prefect server already running (its
``PREFECT_API_URL`` given). Afterwards:

- the terminal holds the progress bar and the run's summary, nothing else: no Prefect warning about
  related resources it had to drop ("Attaching only 0 of the 3 related resources …"), no
  "EventsWorker - Still processing items" at exit, no traceback; the summary names the server used;
- the server holds the grouped ``tourniquet.accounts.locked`` events of the incident, each within
  Prefect's maximum of related resources, and between them they name every one of the 1,000 accounts;
- every account is locked in the directory, the bystanders are not.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import write_site
from tests.helpers import LdapAdmin, require_slapd
from tests.test_cli_output import _run_on_a_terminal
from tourniquet.demo.practitioners import Directory, generate, write_ldif
from tourniquet.demo.slapd import Slapd

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TOURNIQUET = str(Path(sys.executable).parent / "tourniquet")
SIZE = 1000
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


@pytest.fixture(scope="module")
def thousand(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Slapd, Directory]]:
    require_slapd()
    folder = tmp_path_factory.mktemp("slapd-thousand")
    directory = generate(SIZE + 20, "dc=sante,dc=example")
    server = Slapd("dc=sante,dc=example", "root-secret-for-tests", directory=folder, size_limit=5000)
    server.configure(write_ldif(directory, folder / "data.ldif"))
    server.start()
    yield server, directory
    server.stop()


def _playbook(tmp_path: Path) -> Path:
    playbook = yaml.safe_load((ROOT / "playbooks" / "credential-misuse.yaml").read_text())
    playbook["limits"]["max_accounts"] = 2 * SIZE
    path = tmp_path / "credential-misuse.yaml"
    path.write_text(yaml.safe_dump(playbook, sort_keys=False))
    return path


def _named_accounts(incident: str) -> tuple[set[str], list[Any]]:
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    events: list[Any] = []
    with get_client(sync_client=True) as client:
        page: Any = client.read_events(EventFilter(
            event=EventNameFilter(name=["tourniquet.accounts.locked"]),
            resource=EventResourceFilter(id=[f"tourniquet.incident.{incident}"])), limit=50)
        events += page.events
        while page.next_page:
            page = client.read_events_page(page.next_page)
            events += page.events
    named = {r["prefect.resource.name"] for e in events for r in e.related if r.get("prefect.resource.role") == "account"}
    return named, events


def _left_over(output: str, title: str) -> list[str]:
    """Every line that is neither a frame of the progress bar nor a line of the summary (its first line
    ``RUN: …``, then its indented lines: the outcome, the journal, the report, the seal, the server)."""
    lines = [line for line in re.split(r"\r\n|\r|\n", ANSI.sub("", output)) if line.strip()]
    first = next((n for n, line in enumerate(lines) if line.startswith("RUN: ")), len(lines))
    bar = [line for line in lines[:first] if "━" not in line and not line.startswith(title)]
    summary = [line for line in lines[first + 1:] if not line.startswith("  ")]
    return bar + summary


def test_a_1000_account_run_on_a_terminal_prints_the_bar_and_the_summary_only_and_its_events_name_every_account(
    prefect_harness: None, thousand: tuple[Slapd, Directory], tmp_path: Path
) -> None:
    from prefect.settings import PREFECT_API_URL

    from tests.test_prefect_observability import _eventually

    server, directory = thousand
    site = write_site(tmp_path, server, directory, limits={"max_accounts_ceiling": 2 * SIZE, "protected": []})
    playbook = _playbook(tmp_path)
    people = directory.practitioners[:SIZE]
    incident = "inc-thousand-quiet"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TOURNIQUET_"))}
    env.update({"PREFECT_API_URL": str(PREFECT_API_URL.value()), "PREFECT_HOME": str(tmp_path / "prefect-home"),
                "COLUMNS": "400"})

    code, output = _run_on_a_terminal(
        [TOURNIQUET, "run", str(playbook), "--site", str(site), "--incident", incident,
         "-i", "accounts=" + ",".join(p.uid for p in people), "-i", "reason=a thousand accounts"], env, timeout=900)

    assert code == 0, output[-3000:]
    assert "related resources" not in output, output[-3000:]
    assert "Still processing" not in output and "Traceback" not in output, output[-3000:]
    assert f"RUN: credential-misuse incident {incident}: " in output, output[-3000:]
    assert f"prefect: {PREFECT_API_URL.value()} (PREFECT_API_URL)" in output
    assert _left_over(output, f"run {playbook}") == [], output[-3000:]

    uids = {p.uid for p in people}
    named, events = _eventually(lambda: _named_accounts(incident), lambda found: found[0] >= uids, deadline=60)
    assert named == uids
    assert all(len(e.related) <= 100 for e in events)
    admin = LdapAdmin(server)
    try:
        locked = [p for p in people[::50] if admin.attributes(p.dn, ["pwdAccountLockedTime"])]
        bystander = admin.attributes(directory.practitioners[SIZE + 5].dn, ["pwdAccountLockedTime"])
    finally:
        admin.close()
    assert len(locked) == len(people[::50])
    assert bystander == {}
