"""Contain 1,000 and 10,000 accounts of a 15,000-entry directory, on a real Prefect server, against bare loops,
through each LDAP transport.

    .venv/bin/python bench/bench_contain.py                          # SQLite server, flow run in-process (the CLI path)
    .venv/bin/python bench/bench_contain.py --backend postgresql --workers 2   # PostgreSQL server, 2 process workers
    .venv/bin/python bench/bench_contain.py --transports ldap3       # one transport only

What is timed, on the same slapd in the same run:

- **bare ldap3 loop**: per account, search by uid, read the entry, replace the lock and reset attributes
  (one modify), read them back — the same LDAP work a careful script does, with nothing else.
- **bare python-ldap loop**: the same, through libldap (OpenLDAP's C library).
- **tourniquet**, once per transport (``directory.transport: ldap3``, then ``libldap``; each compared with
  its own library's bare loop): the ``tourniquet-playbook`` flow with the credential-misuse steps ``resolve``, ``snapshot``,
  ``lock``, ``force_password_reset``, ``end_sessions`` (the site has no identity provider), against a real
  ``prefect server start`` — in-process as ``tourniquet run`` does (SQLite backend), or through a deployment
  picked up by process workers (``--workers``; PostgreSQL backend for several workers). It journals every change
  (intent and outcome, fsync'ed), snapshots every entry, reads every change back and seals the evidence.

Printed per size and transport: the times, the ratio to that library's bare loop (the goal: within 1.5x for
ldap3), peak RSS (the measured process; for workers, the flow-run process, sampled from /proc), and failed items. Each account's state is checked afterwards (locked, must change password)
and reset before the next measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import ldap3
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.servers import postgres, prefect_server, prefect_worker  # noqa: E402
from tourniquet.demo.practitioners import generate, write_ldif  # noqa: E402
from tourniquet.demo.slapd import Slapd  # noqa: E402

SUFFIX = "dc=sante,dc=example"
PLAYBOOK = """\
playbook: bench-contain
version: 1
title: "Contain accounts (benchmark): the credential-misuse directory steps"
inputs:
  accounts: {type: "list[str]"}
limits:
  max_accounts: 100000
steps:
  - id: resolve
    action: directory.resolve
    with: {ids: "${{ inputs.accounts }}"}
  - id: snapshot
    action: directory.snapshot
    for_each: "${{ steps.resolve.accounts }}"
    with: {account: "${{ item }}"}
    timeout: 7200
  - id: lock
    action: directory.lock
    for_each: "${{ steps.resolve.accounts }}"
    with: {account: "${{ item }}"}
    retries: 2
    timeout: 7200
  - id: reset
    action: directory.force_password_reset
    for_each: "${{ steps.resolve.accounts }}"
    with: {account: "${{ item }}"}
    retries: 2
    timeout: 7200
  - id: end_sessions
    action: identity.end_sessions
    for_each: "${{ steps.resolve.accounts }}"
    with: {account: "${{ item }}"}
    retries: 2
    on_error: continue
    timeout: 7200
"""

# --------------------------------------------------------------------------- children (measured processes)

BARE = """
import json, resource, sys, time
import ldap3
url, bind, password, base, uids_file = sys.argv[1:6]
uids = open(uids_file).read().split()
connection = ldap3.Connection(ldap3.Server(url), bind, password, auto_bind=True, receive_timeout=30)
from ldap3.utils.conv import escape_filter_chars
started = time.perf_counter()
for uid in uids:
    connection.search(base, f"(&(objectClass=inetOrgPerson)(uid={escape_filter_chars(uid)}))", attributes=["uid"])
    dn = connection.response[0]["dn"]
    connection.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["*", "+"])
    entry = connection.response[0]["attributes"]
    connection.modify(dn, {"pwdAccountLockedTime": [(ldap3.MODIFY_REPLACE, ["000001010000Z"])],
                           "pwdReset": [(ldap3.MODIFY_REPLACE, ["TRUE"])]})
    connection.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["pwdAccountLockedTime", "pwdReset"])
    assert connection.response[0]["attributes"]["pwdReset"]
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

BARE_LIBLDAP = """
import json, resource, sys, time
import ldap
from ldap.filter import escape_filter_chars
url, bind, password, base, uids_file = sys.argv[1:6]
uids = open(uids_file).read().split()
connection = ldap.initialize(url)
connection.simple_bind_s(bind, password)
started = time.perf_counter()
for uid in uids:
    dn = connection.search_s(base, ldap.SCOPE_SUBTREE, f"(&(objectClass=inetOrgPerson)(uid={escape_filter_chars(uid)}))", ["uid"])[0][0]
    entry = connection.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)", ["*", "+"])[0][1]
    connection.modify_s(dn, [(ldap.MOD_REPLACE, "pwdAccountLockedTime", [b"000001010000Z"]),
                             (ldap.MOD_REPLACE, "pwdReset", [b"TRUE"])])
    assert connection.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)", ["pwdAccountLockedTime", "pwdReset"])[0][1]["pwdReset"]
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

FLOW = """
import json, resource, sys, time
started = time.perf_counter()
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from tourniquet.flows.respond import run_playbook
playbook, site, incident, uids_file = sys.argv[1:5]
uids = open(uids_file).read().split()
imported = time.perf_counter()
with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
    state = run_playbook(playbook, {"accounts": uids}, incident=incident, site=site, return_state=True)
seconds = time.perf_counter() - imported
try:
    result = state.result()
    status, failures, error = result["status"], len(result["failures"]), None
except Exception as exc:
    status, failures, error = "failed", -1, str(exc)[:2000]
print(json.dumps({"seconds": seconds, "imports": imported - started, "status": status, "failures": failures,
                  "error": error, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _child(code: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=str(ROOT),
                          env={**os.environ, **(env or {})})
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"child failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    return json.loads(lines[-1])  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- directory state


def _admin(server: Slapd) -> ldap3.Connection:
    return ldap3.Connection(ldap3.Server(server.url), server.root_dn, server.root_password, auto_bind=True,
                            receive_timeout=60)


def contained(server: Slapd, base: str) -> int:
    """Entries both locked and flagged must-change-password."""
    connection = _admin(server)
    entries = connection.extend.standard.paged_search(base, "(&(pwdAccountLockedTime=*)(pwdReset=TRUE))",
                                                      attributes=["1.1"], paged_size=1000, generator=False)
    connection.unbind()
    return sum(1 for e in entries if e.get("type") == "searchResEntry")


def release(server: Slapd, dns: list[str]) -> None:
    connection = _admin(server)
    for dn in dns:
        connection.modify(dn, {"pwdAccountLockedTime": [(ldap3.MODIFY_REPLACE, [])],
                               "pwdReset": [(ldap3.MODIFY_REPLACE, [])]})
    connection.unbind()


# --------------------------------------------------------------------------- the worker path


class PeakRss:
    """Peak RSS (VmHWM) of the flow-run processes the workers spawn, sampled from /proc."""

    def __init__(self, roots: list[int]) -> None:
        self.roots, self.peak_kb, self._stop = roots, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _children(self) -> list[int]:
        found, frontier = [], list(self.roots)
        while frontier:
            pid = frontier.pop()
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            found += [int(c) for c in children]
            frontier += [int(c) for c in children]
        return found

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            for pid in self._children():
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                except OSError:
                    continue

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_through_workers(env: dict[str, str], playbook: str, site: str, incident: str, uids: list[str],
                        worker_pids: list[int], evidence: Path) -> dict[str, Any]:
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    os.environ.update(env)
    started = time.perf_counter()
    # Prefect read its settings when this process imported it: point this client at the benchmark's server.
    with temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]}), PeakRss(worker_pids) as rss:
        flow_run = run_deployment("tourniquet-playbook/bench-contain", timeout=None, parameters={
            "playbook": playbook, "inputs": {"accounts": uids}, "incident": incident, "site": site})
    wall = time.perf_counter() - started
    state = flow_run.state
    seconds = (flow_run.end_time - flow_run.start_time).total_seconds() if flow_run.end_time and flow_run.start_time else wall
    # A worker's flow run keeps no result on the server: its state says how it ended, its journal what failed.
    status = state.type.value.lower() if state is not None else "unknown"
    journal = evidence / incident / "journal.jsonl"
    records = [json.loads(line) for line in journal.read_text().splitlines()] if journal.exists() else []
    failures = sum(1 for r in records if r.get("type") == "failure")  # one per failed item, as the summary lists them
    error = None if status == "completed" else (state.message if state is not None else "no state")
    return {"seconds": seconds, "wall": wall, "status": status, "failures": failures, "error": error,
            "rss_mb": rss.peak_kb / 1024}


def deploy(env: dict[str, str], pool: str) -> None:
    environment = {**os.environ, **env}
    subprocess.run([str(Path(sys.executable).with_name("prefect")), "work-pool", "create", pool, "--type", "process"],
                   env=environment, check=True, capture_output=True, cwd=str(ROOT))
    code = f"""
from prefect import flow
flow.from_source(source={str(ROOT)!r}, entrypoint="tourniquet/flows/respond.py:run_playbook").deploy(
    name="bench-contain", work_pool_name={pool!r}, job_variables={{"env": {{"PREFECT_LOGGING_EXTRA_LOGGERS": "tourniquet"}}}})
"""
    subprocess.run([sys.executable, "-c", code], env=environment, check=True, capture_output=True, cwd=str(ROOT))


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--directory", type=int, default=15000, help="entries in the directory")
    parser.add_argument("--sizes", default="1000,10000", help="accounts to contain, comma-separated")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--workers", type=int, default=0, help="run through a deployment and N process workers")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, evidence)")
    parser.add_argument("--transports", default="ldap3,libldap", help="LDAP transports to run, comma-separated")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    transports = [t for t in args.transports.split(",") if t]

    directory = generate(args.directory, SUFFIX)
    folder = Path(tempfile.mkdtemp(prefix="bench-contain-"))
    server = Slapd(SUFFIX, "bench-root-secret", directory=folder / "slapd", size_limit=100000)
    server.configure(write_ldif(directory, folder / "data.ldif"))
    server.start()
    (folder / "secret").write_text(server.root_password)
    site = folder / "tourniquet.yaml"
    site.write_text(yaml.safe_dump({
        "site": "bench", "state_dir": str(folder / "state"), "evidence_dir": str(folder / "evidence"),
        "directory": {"url": server.url, "allow_plaintext": True, "bind_dn": server.root_dn,
                      "bind_password": {"file": str(folder / "secret")}, "base_dn": directory.people_dn,
                      "default_policy_dn": server.policy_dn, "timeout": 60},
        "tickets": {"kind": "file", "path": str(folder / "tickets")},
        "limits": {"max_accounts_ceiling": 100000},
    }))
    playbook = folder / "bench-contain.yaml"
    playbook.write_text(PLAYBOOK)
    sites = {}
    for transport in transports:
        sites[transport] = folder / f"tourniquet-{transport}.yaml"
        config = yaml.safe_load(site.read_text())
        config["directory"]["transport"] = transport
        sites[transport].write_text(yaml.safe_dump(config))
    bare_loops = {"ldap3": BARE, "libldap": BARE_LIBLDAP}
    rows: list[dict[str, Any]] = []
    try:
        with _database(args.backend) as database_url:
            with prefect_server(folder / "prefect", database_url=database_url) as env, ExitStack() as workers:
                if args.workers:
                    deploy(env, "bench")
                    for n in range(args.workers):
                        workers.enter_context(prefect_worker(env, "bench", folder / f"worker-{n}.log"))
                for size in sizes:
                    people = directory.practitioners[:size]
                    uids_file = folder / f"uids-{size}.txt"
                    uids_file.write_text("\n".join(p.uid for p in people))
                    dns = [p.dn for p in people]
                    for transport in transports:
                        bare = _child(bare_loops[transport], server.url, server.root_dn, server.root_password,
                                      directory.people_dn, str(uids_file))
                        assert contained(server, directory.people_dn) == size
                        release(server, dns)
                        incident = f"bench-{size}-{transport}-{int(time.time())}"
                        if args.workers:
                            result = run_through_workers(env, str(playbook), str(sites[transport]), incident,
                                                         [p.uid for p in people], _worker_pids(), folder / "evidence")
                        else:
                            result = _child(FLOW, str(playbook), str(sites[transport]), incident, str(uids_file),
                                            env=env)
                        done = contained(server, directory.people_dn)
                        release(server, dns)
                        rows.append({"size": size, "transport": transport, "bare": bare, "flow": result,
                                     "contained": done})
                        _print_row(rows[-1], args)
    finally:
        server.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"work folder kept: {folder}")
    _print_summary(rows, args)


def _worker_pids() -> list[int]:
    """The worker processes started by this benchmark (children of this process running 'worker start')."""
    me = os.getpid()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me and "worker start" in command:
            pids.append(int(entry.name))
    return pids


class _NoDatabase:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _database(backend: str) -> Any:
    if backend == "sqlite":
        return _NoDatabase()

    class _Pg:
        def __enter__(self) -> str:
            self.context = postgres()
            host, port = self.context.__enter__()
            return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"

        def __exit__(self, *exc: object) -> None:
            self.context.__exit__(None, None, None)

    return _Pg()


def _print_row(row: dict[str, Any], args: argparse.Namespace) -> None:
    bare, flow = row["bare"], row["flow"]
    print(f"{row['size']:>6} accounts [{row['transport']}]: bare {bare['seconds']:7.2f} s ({bare['rss_mb']:.0f} MB) | "
          f"tourniquet {flow['seconds']:7.2f} s ({flow['rss_mb']:.0f} MB) {flow['status']}, failed items "
          f"{flow['failures']} | ratio {flow['seconds'] / bare['seconds']:.2f}x | contained {row['contained']}/"
          f"{row['size']}", flush=True)
    if flow.get("error"):
        print(f"    error: {flow['error']}")


def _print_summary(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    how = f"{args.backend} server, " + (f"{args.workers} process workers" if args.workers else "flow in-process (CLI path)")
    print(f"\ncontain on a {args.directory:,}-entry directory, {how}, 2 cores:")
    print("| accounts | transport | bare loop (same library) | tourniquet flow | ratio | peak RSS flow / bare loop "
          "| failed items | contained |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        bare, flow = row["bare"], row["flow"]
        print(f"| {row['size']:,} | {row['transport']} | {bare['seconds']:.2f} s | {flow['seconds']:.2f} s | "
              f"{flow['seconds'] / bare['seconds']:.2f}x | {flow['rss_mb']:.0f} MB / {bare['rss_mb']:.0f} MB | "
              f"{flow['failures']} | {row['contained']:,} |")
    by_size: dict[int, dict[str, dict[str, Any]]] = {}
    for row in rows:
        by_size.setdefault(row["size"], {})[row["transport"]] = row
    for size, pair in by_size.items():
        if {"ldap3", "libldap"} <= set(pair):
            print(f"{size:,} accounts: tourniquet through ldap3 took "
                  f"{pair['ldap3']['flow']['seconds'] / pair['libldap']['flow']['seconds']:.2f}x its time through "
                  f"libldap; bare loops {pair['ldap3']['bare']['seconds'] / pair['libldap']['bare']['seconds']:.2f}x")


if __name__ == "__main__":
    main()
