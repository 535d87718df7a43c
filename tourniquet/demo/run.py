"""``tourniquet demo``: a simulated incident on a local demo directory, end to end.

Starts a throwaway slapd seeded with 50 generated practitioners, shows the dry-run
plan, runs ``playbooks/credential-misuse.yaml`` as a Prefect flow on three
"impersonated" accounts (named by uid, RPPS number and e-mail, as alerts name them),
then proves the containment: each account's own password no longer binds.

The demo tells its own story on stdout: the run's events stay in the journal (printed from
WARNING up), Prefect's per-task lines give way to a progress bar on a terminal, and nothing
phones home. ``--keep-running`` leaves the directory up, detached, until ``tourniquet demo
--stop`` (or ``kill``), and prints the lines to use it. ``TOURNIQUET_DEMO_STATE`` moves the
demo's folder (default ``var/demo`` in the checkout), ``TOURNIQUET_DEMO_PORT`` its port.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPException

from tourniquet.demo.access_log import demo_log, write_sqlite
from tourniquet.demo.practitioners import Practitioner, generate, write_ldif
from tourniquet.demo.slapd import Slapd, find_free_port, stop_pid_file

__all__ = ["run_demo", "stop_demo", "demo_state", "REPO", "DEMO_SITE"]

def _checkout() -> Path:
    """The checkout holding ``sites/demo`` and ``playbooks``: the package's own (editable install), else the current
    folder (``pip install .`` in a clone, then ``tourniquet demo`` from it)."""
    source = Path(__file__).resolve().parents[2]
    return source if (source / "sites" / "demo").is_dir() else Path.cwd().resolve()


REPO = _checkout()
DEMO_SITE = REPO / "sites" / "demo" / "tourniquet.yaml"
SUFFIX = "dc=sante,dc=example"
COMPROMISED = (3, 11, 27)  # indexes into the generated practitioners


def demo_state() -> Path:
    """The demo's folder: ``$TOURNIQUET_DEMO_STATE`` (the demo site reads the same variable), else var/demo."""
    return Path(os.environ.get("TOURNIQUET_DEMO_STATE") or REPO / "var" / "demo").resolve()


def _pid_file() -> Path:
    return demo_state() / "slapd" / "slapd.pid"


def stop_demo() -> int:
    """``tourniquet demo --stop``: stop a demo directory left running."""
    pid = stop_pid_file(_pid_file())
    print(f"demo directory stopped (slapd pid {pid})" if pid else "no demo directory is running")
    return 0


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def start_demo_directory(*, detached: bool = False) -> tuple[Slapd, list[Practitioner]]:
    """A fresh demo state folder and slapd (one left running by an earlier demo is stopped first)."""
    state = demo_state()
    os.environ["TOURNIQUET_DEMO_STATE"] = str(state)
    stop_pid_file(_pid_file())
    shutil.rmtree(state, ignore_errors=True)
    (state / "secrets").mkdir(parents=True)
    password = secrets.token_urlsafe(18)
    secret_file = state / "secrets" / "ldap-admin-password"
    secret_file.write_text(password + "\n", encoding="utf-8")
    secret_file.chmod(0o600)
    port = int(os.environ.get("TOURNIQUET_DEMO_PORT", "3890"))
    if not _port_free(port):
        port = find_free_port()
    os.environ["TOURNIQUET_DEMO_LDAP_URL"] = f"ldap://127.0.0.1:{port}"
    directory = generate(50, SUFFIX)
    server = Slapd(SUFFIX, password, directory=state / "slapd", port=port)
    server.path.mkdir(parents=True, exist_ok=True)
    server.configure(write_ldif(directory, state / "directory.ldif"))
    server.start(detached=detached)
    write_demo_access_log(directory.practitioners)
    return server, directory.practitioners


def write_demo_access_log(practitioners: list[Practitioner]) -> Path:
    """The platform's access log: four months of care, and the compromised accounts scraping patients."""
    from datetime import datetime, timezone

    path = demo_state() / "access-log.sqlite"
    path.unlink(missing_ok=True)
    log = demo_log([p.uid for p in practitioners], [practitioners[i].uid for i in COMPROMISED],
                   end=datetime.now(timezone.utc))
    write_sqlite(log, path)
    return path


def print_notifications(folder: Path, since: float) -> None:
    """What the SOC, the DPO and the referents were told (the demo site's channels are folders on disk)."""
    print(f"\n5. Who was told (the demo's channels are folders under {folder}; a real site sends e-mail, chat, SMS):")
    files = sorted((p for p in folder.rglob("*.txt") if p.stat().st_mtime >= since), key=lambda p: p.name)
    for path in files:
        head = dict(line.split(": ", 1) for line in path.read_text(encoding="utf-8").splitlines()[:4] if ": " in line)
        to = f" -> {head['To']}" if head.get("To") else ""
        print(f"   {path.parent.name:10}{to}: {head.get('Subject', '')}")
    if not files:
        print("   nobody (the site has no notify section)")


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
    for row in scope["accounts"]:
        print(f"   {row['account']:12} window from {row['since'][:16]} (first odd access {str(row['attack_start'])[:16]}): "
              f"{row['anomalous']['events']} accesses do not fit the owner's history")
    print(f"   Art. 33 draft:  {folders[-1].parent / 'notification.md'}")
    print(f"   CERT Santé:     {folders[-1].parent / 'declaration-cert-sante.md'}")
    print(f"   Art. 34 export: {folders[-1].parent / 'people-to-warn.csv'}")
    timeline = folders[-1].parent / "timeline.png"
    if timeline.exists():
        print(f"   Timeline:       {timeline}")
    else:  # the journal's scope record says why (e.g. the plots extra is not installed)
        from tourniquet.journal import read_journal

        notes = [w for r in read_journal(journal) if r.get("type") == "scope" for w in r.get("warnings", [])
                 if w.startswith("timeline.png")]
        print(f"   Timeline:       {notes[-1] if notes else 'not drawn (no access to draw)'}")
    site = Site(load_site())
    try:
        verdict = verify_incident(site, journal.parent.name)
    finally:
        site.close()
    state = {0: "intact", 1: "TAMPERED", 3: "NOT SEALED"}.get(verdict.exit_code, "?")
    print(f"   Evidence: {state}, root hash {verdict.facts['root']}")
    print(f"   anchored in {verdict.facts['anchor_log']} and on {verdict.facts.get('ticket') or 'the ticket'}")


def bind_result(url: str, dn: str, password: str) -> str:
    """What the directory answers a bind with this password: "success", "invalidCredentials", …"""
    server = ldap3.Server(url, get_info=ldap3.NONE, connect_timeout=5)
    connection = ldap3.Connection(server, dn, password, receive_timeout=5)
    try:
        connection.bind()
        return "success" if connection.result["result"] == 0 else str(connection.result["description"])
    except LDAPException as exc:
        return type(exc).__name__
    finally:
        connection.unbind()


def _quiet_defaults() -> None:
    """The demo narrates: the run's events go to the journal, only warnings are printed (Prefect's too)."""
    os.environ.setdefault("TOURNIQUET_LOG_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ["TOURNIQUET_SITE"] = str(DEMO_SITE)


def _print_kept(server: Slapd, pid: int, incident: str) -> None:
    state = demo_state()
    exports = f"TOURNIQUET_SITE={DEMO_SITE.relative_to(REPO)} TOURNIQUET_DEMO_LDAP_URL={server.url}"
    if state != (REPO / "var" / "demo").resolve():
        exports += f" TOURNIQUET_DEMO_STATE={state}"
    print(f"\nThe demo directory stays up on {server.url} (slapd pid {pid}), for example:")
    print(f"   export {exports}")
    print(f"   .venv/bin/tourniquet undo {incident}        # give the accounts back (false alarm)")
    print(f"   .venv/bin/tourniquet evidence verify {incident}")
    print("Stop it with: .venv/bin/tourniquet demo --stop   (or: kill " + str(pid) + ")")


def run_demo(keep_running: bool = False, accounts: list[str] | None = None) -> int:
    if not DEMO_SITE.is_file():
        print(f"tourniquet demo: no sites/demo/tourniquet.yaml in {REPO}: run it from a checkout of the repository",
              file=sys.stderr)
        return 2
    _quiet_defaults()  # before Prefect is imported: it reads its settings then
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from tourniquet.cli.common import hide_temporary_server_notes
    from tourniquet.cli.progress import TerminalProgress, quiet_prefect_console
    from tourniquet.engine.execute import execute_playbook
    from tourniquet.engine.report import describe_change
    from tourniquet.flows.artifacts import progress_listener
    from tourniquet.flows.respond import RunFailed, run_playbook
    from tourniquet.logs import configure_logging

    server, practitioners = start_demo_directory(detached=keep_running)
    incident = ""
    told = False  # kept running only once the demo got to its end: a crash leaves nothing behind
    try:
        chosen = [practitioners[i] for i in COMPROMISED]
        ids = accounts or [chosen[0].uid, chosen[1].rpps, chosen[2].mail]
        targets = [p for p in practitioners if p.uid in ids or p.rpps in ids or p.mail in ids]
        print(f"Demo directory: {server.url} ({len(practitioners)} practitioners, suffix {SUFFIX})")
        print(f"Simulated alert: accounts {', '.join(ids)} used by someone else\n")
        for person in targets:
            print(f"  before: bind as {person.uid} -> {bind_result(server.url, person.dn, person.password)}")
        inputs: dict[str, Any] = {"accounts": ids,
                                  "reason": "demo: impersonated practitioners scraping patient identities"}

        started = time.time()
        plan = execute_playbook("credential-misuse", inputs, dry_run=True)
        planned = sum(c.outcome == "planned" for c in plan.changes)
        print(f"\n1. Dry-run plan: {plan.outcome().headline()} ({planned} changes planned, "
              f"directory reached through {plan.directory_transport})")
        for change in plan.changes:
            if change.outcome == "planned":
                print(f"   would {change.operation:22} {change.target}: {describe_change(change.before, change.after)}")
        scope = plan.results.get("scope") or {}
        if scope.get("people"):
            print(f"   would freeze the data scope: {scope['people']} patients, {scope['records']} accesses")

        print("\n2. Running the playbook as a Prefect flow (a temporary local Prefect server) …")
        configure_logging()
        hide_temporary_server_notes()
        progress = TerminalProgress("   credential-misuse")
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}), quiet_prefect_console(), \
                progress, progress_listener(progress.update):
            state = run_playbook("credential-misuse", inputs, return_state=True)
            result = state.result(raise_on_failure=False)
            progress.update(100.0, result["outcome"]["headline"] if isinstance(result, dict) else "failed")
        if not isinstance(result, dict):
            print(f"   FAILED: {result if isinstance(result, RunFailed) else state.message}", file=sys.stderr)
            told = True
            return 1
        incident = result["incident"]
        print(f"   flow run {state.state_details.flow_run_id}: incident {result['incident']}: "
              f"{result['outcome']['headline']}")
        for step, status in result["steps"].items():
            print(f"   step {step:14} {status}")

        print("\n3. Proof: each contained account's own password no longer opens a session")
        contained = True
        for person in targets:
            outcome = bind_result(server.url, person.dn, person.password)
            contained &= outcome == "invalidCredentials"
            print(f"   after: bind as {person.uid} -> {outcome}")
        print_scope(Path(result["journal"]))
        print_notifications(demo_state() / "notifications", started)
        print(f"\nJournal: {result['journal']}\nReport:  {result['report']}")
        print("CONTAINED" if contained else "NOT CONTAINED: see the report")
        told = True
        return 0 if contained else 1
    finally:
        if keep_running and told:
            _print_kept(server, server.detach(), incident or "INCIDENT")
        else:
            server.stop()
