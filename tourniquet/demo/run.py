"""``tourniquet demo``: a simulated incident on a local demo directory, end to end.

Starts a throwaway slapd seeded with 50 generated practitioners, shows the dry-run
plan, runs ``playbooks/credential-misuse.yaml`` as a Prefect flow on three
"impersonated" accounts (named by uid, RPPS number and e-mail, as alerts name them),
then proves the containment: each account's own password no longer binds.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from pathlib import Path

import ldap3

from tourniquet.demo.access_log import demo_log, write_sqlite
from tourniquet.demo.practitioners import Practitioner, generate, write_ldif
from tourniquet.demo.slapd import Slapd, find_free_port

__all__ = ["run_demo", "REPO", "DEMO_SITE", "DEMO_STATE"]

REPO = Path(__file__).resolve().parents[2]
DEMO_SITE = REPO / "sites" / "demo" / "tourniquet.yaml"
DEMO_STATE = REPO / "var" / "demo"
SUFFIX = "dc=sante,dc=example"
COMPROMISED = (3, 11, 27)  # indexes into the generated practitioners


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def start_demo_directory() -> tuple[Slapd, list]:
    """A fresh demo state folder and slapd; returns the server and the practitioners."""
    shutil.rmtree(DEMO_STATE, ignore_errors=True)
    (DEMO_STATE / "secrets").mkdir(parents=True)
    password = secrets.token_urlsafe(18)
    secret_file = DEMO_STATE / "secrets" / "ldap-admin-password"
    secret_file.write_text(password + "\n", encoding="utf-8")
    secret_file.chmod(0o600)
    port = int(os.environ.get("TOURNIQUET_DEMO_PORT", "3890"))
    if not _port_free(port):
        port = find_free_port()
    os.environ["TOURNIQUET_DEMO_LDAP_URL"] = f"ldap://127.0.0.1:{port}"
    directory = generate(50, SUFFIX)
    server = Slapd(SUFFIX, password, directory=DEMO_STATE / "slapd", port=port)
    server.path.mkdir(parents=True, exist_ok=True)
    server.configure(write_ldif(directory, DEMO_STATE / "directory.ldif"))
    server.start()
    write_demo_access_log(directory.practitioners)
    return server, directory.practitioners


def write_demo_access_log(practitioners: list[Practitioner]) -> Path:
    """The platform's access log: 30 days of care, and the compromised accounts scraping patients."""
    from datetime import datetime, timezone

    path = DEMO_STATE / "access-log.sqlite"
    path.unlink(missing_ok=True)
    log = demo_log([p.uid for p in practitioners], [practitioners[i].uid for i in COMPROMISED],
                   end=datetime.now(timezone.utc))
    write_sqlite(log, path)
    return path


def print_scope(journal: Path) -> None:
    """The data scope frozen by the run, and whether the evidence bundle verifies."""
    import json

    from tourniquet.config import load_site
    from tourniquet.engine.sealing import verify_incident
    from tourniquet.site import Site

    folders = sorted((journal.parent / "scope").glob("*/scope.json"))
    if not folders:
        print("\n4. Data scope: not computed (no audit section in the site)")
        return
    scope = json.loads(folders[-1].read_text(encoding="utf-8"))
    total = scope["total"]
    print(f"\n4. Data scope frozen from the access log ({scope['since'][:10]} .. {scope['until'][:10]}):")
    for row in scope["accounts"]:
        print(f"   {row['account']:12} {row['events']:5} events {row['subjects']:5} patients  "
              f"IPs {', '.join(row['source_ips'])}")
    categories = ", ".join(f"{k} {v}" for k, v in total["subjects_by_category"].items())
    print(f"   TOTAL        {total['events']:5} events {total['subjects']:5} patients (each counted once): {categories}")
    print(f"   Art. 33 draft:  {folders[-1].parent / 'notification.md'}")
    print(f"   Art. 34 export: {folders[-1].parent / 'people-to-warn.csv'}")
    site = Site(load_site())
    try:
        verdict = verify_incident(site, journal.parent.name)
    finally:
        site.close()
    state = {0: "intact", 1: "TAMPERED", 3: "NOT SEALED"}.get(verdict.exit_code, "?")
    print(f"   Evidence: {state}, root hash {verdict.facts['root']}")
    print(f"   anchored in {verdict.facts['anchor_log']} and on {verdict.facts.get('ticket') or 'the ticket'}")


def bind_result(url: str, dn: str, password: str) -> str:
    connection = ldap3.Connection(ldap3.Server(url, connect_timeout=5), dn, password, receive_timeout=5)
    connection.bind()
    description = connection.result.get("description", "")
    connection.unbind()
    return str(description)


def run_demo(keep_running: bool = False, accounts: list[str] | None = None) -> int:
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from tourniquet.engine.execute import execute_playbook
    from tourniquet.flows.respond import run_playbook

    os.environ["TOURNIQUET_SITE"] = str(DEMO_SITE)
    server, practitioners = start_demo_directory()
    try:
        chosen = [practitioners[i] for i in COMPROMISED]
        ids = accounts or [chosen[0].uid, chosen[1].rpps, chosen[2].mail]
        targets = [p for p in practitioners if p.uid in ids or p.rpps in ids or p.mail in ids]
        print(f"Demo directory: {server.url} ({len(practitioners)} practitioners, suffix {SUFFIX})")
        print(f"Simulated alert: accounts {', '.join(ids)} used by someone else\n")
        for person in targets:
            print(f"  before: bind as {person.uid} -> {bind_result(server.url, person.dn, person.password)}")
        inputs = {"accounts": ids, "reason": "demo: impersonated practitioners scraping patient identities"}

        plan = execute_playbook("credential-misuse", inputs, dry_run=True)
        print(f"\n1. Dry-run plan ({plan.status}): {sum(c.outcome == 'planned' for c in plan.changes)} changes planned")
        for change in plan.changes:
            if change.outcome == "planned":
                print(f"   would {change.operation:22} {change.target}: {change.before} -> {change.after}")
        scope = plan.results.get("scope") or {}
        if scope.get("people"):
            print(f"   would freeze the data scope: {scope['people']} patients, {scope['records']} accesses")

        print("\n2. Running the playbook as a Prefect flow …")
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            result = run_playbook("credential-misuse", inputs)
        print(f"   incident {result['incident']}: {result['status']}")
        for step, status in result["steps"].items():
            print(f"   step {step:10} {status}")

        print("\n3. Proof: each contained account's own password no longer opens a session")
        contained = True
        for person in targets:
            outcome = bind_result(server.url, person.dn, person.password)
            contained &= outcome == "invalidCredentials"
            print(f"   after: bind as {person.uid} -> {outcome}")
        print_scope(Path(result["journal"]))
        print(f"\nJournal: {result['journal']}\nReport:  {result['report']}")
        print("CONTAINED" if contained else "NOT CONTAINED: see the report")
        if keep_running:
            print(f"\nDemo slapd left running on {server.url} (pid {server.process.pid if server.process else '?'})")
        return 0 if contained else 1
    finally:
        if not keep_running:
            server.stop()
