"""The engine at incident scale: many accounts, and several runs of one incident at once.

Scenarios:
- four alerts about the same twelve practitioners start four runs of the same incident within a
  second, in four processes: the journal stays one valid chain, the evidence verifies, and every
  account is locked and flagged exactly once (the other runs find it done: no-ops);
- a 200-account containment on a real Prefect server: every account locked and flagged, no item
  failed waiting for an account slot, the task runs are a bounded number of chunks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import write_site
from tests.helpers import LdapAdmin, require_slapd
from tourniquet.config import load_site
from tourniquet.demo.practitioners import Directory, generate, write_ldif
from tourniquet.demo.slapd import Slapd
from tourniquet.engine.sealing import verify_incident
from tourniquet.journal import read_journal, verify_chain
from tourniquet.site import Site

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOK = str(ROOT / "playbooks" / "credential-misuse.yaml")

RUNNER = textwrap.dedent("""
    import sys, time
    from tourniquet.engine.execute import execute_playbook
    playbook, site, incident, start, *uids = sys.argv[1:]
    while time.time() < float(start):
        time.sleep(0.005)
    summary = execute_playbook(playbook, {"accounts": uids, "reason": "four alerts"}, dry_run=False,
                               incident=incident, site=site)
    print("STATUS", summary.status, summary.error or "")
""")


def _contained(admin: LdapAdmin, dn: str) -> bool:
    state = admin.attributes(dn, ["pwdAccountLockedTime", "pwdReset"])
    return state.get("pwdAccountLockedTime") == ["000001010000Z"] and [v.upper() for v in state.get("pwdReset", [])] == ["TRUE"]


def _applied(records: list[dict[str, object]], operation: str) -> Counter[str]:
    return Counter(str(r["target"]) for r in records
                   if r["type"] == "change" and r["outcome"] == "applied" and r["operation"] == operation)


def test_four_processes_running_one_incident_keep_one_chain_and_change_each_account_once(
    site_file: Path, practitioners: Directory, ldap_admin: LdapAdmin
) -> None:
    people = practitioners.practitioners[10:22]
    incident = "inc-four-alerts"
    start = time.time() + 3.0  # every process imported and waiting before the first one starts
    processes = [
        subprocess.Popen([sys.executable, "-c", RUNNER, PLAYBOOK, str(site_file), incident, str(start),
                          *[p.uid for p in people]], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, env={**os.environ, "TOURNIQUET_LOG_LEVEL": "WARNING"})
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=180)[0] for p in processes]

    statuses = [line for out in outputs for line in out.splitlines() if line.startswith("STATUS")]
    assert len(statuses) == 4 and all(s.startswith("STATUS completed") for s in statuses), outputs
    folder = site_file.parent / "evidence" / incident
    records = list(read_journal(folder / "journal.jsonl"))
    assert verify_chain(folder / "journal.jsonl") == len(records)
    assert sorted(r["seq"] for r in records) == list(range(1, len(records) + 1)), "no sequence number twice"
    site = Site(load_site(site_file))
    try:
        verdict = verify_incident(site, incident)
    finally:
        site.close()
    assert verdict.intact, (verdict.findings, verdict.unsealed)
    assert sorted(verdict.manifests) == [1, 2, 3, 4], "four runs, four seals, numbered one after the other"
    for operation in ("scramble_password", "lock"):  # the scramble sets the reset flag: the reset step is a no-op
        assert _applied(records, operation) == {p.uid: 1 for p in people}, operation
    assert all(_contained(ldap_admin, p.dn) for p in people)


# --------------------------------------------------------------------------- 200 accounts on Prefect

SIZE = 200


@pytest.fixture(scope="module")
def large_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Slapd, Directory]]:
    require_slapd()
    folder = tmp_path_factory.mktemp("slapd-large")
    directory = generate(SIZE + 20, "dc=sante,dc=example")
    server = Slapd("dc=sante,dc=example", "root-secret-for-tests", directory=folder, size_limit=1000)
    server.configure(write_ldif(directory, folder / "data.ldif"))
    server.start()
    yield server, directory
    server.stop()


def test_a_200_account_containment_on_a_real_prefect_server_locks_every_account(
    prefect_harness: None, large_directory: tuple[Slapd, Directory], tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from tourniquet.flows.respond import run_playbook

    server, directory = large_directory
    site = write_site(tmp_path, server, directory, limits={"max_accounts_ceiling": 1000, "protected": []})
    playbook = yaml.safe_load(Path(PLAYBOOK).read_text())
    playbook["limits"]["max_accounts"] = 1000
    path = tmp_path / "credential-misuse.yaml"
    path.write_text(yaml.safe_dump(playbook, sort_keys=False))
    people = directory.practitioners[:SIZE]

    state = run_playbook(str(path), {"accounts": [p.uid for p in people]}, incident="inc-two-hundred",
                         site=str(site), return_state=True)

    result = state.result()
    assert result["status"] == "completed", result
    assert result["failures"] == []
    admin = LdapAdmin(server)
    try:
        contained = [p for p in people if _contained(admin, p.dn)]
        bystander = admin.attributes(directory.practitioners[SIZE + 5].dn, ["pwdAccountLockedTime"])
    finally:
        admin.close()
    assert len(contained) == SIZE
    assert bystander == {}
    records = list(read_journal(tmp_path / "evidence" / "inc-two-hundred" / "journal.jsonl"))
    assert not [r for r in records if r["type"] == "failure"]
    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
    names = Counter(t.name.split("[")[0] for t in tasks)
    assert names["lock"] <= 16 and names["reset"] <= 16, names  # chunks, not one task run per account
