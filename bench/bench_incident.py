"""The largest known incident, end to end: 1,500 accounts across three regions, alert to verified national summary.

    nice -n 19 .venv/bin/python bench/bench_incident.py generate --events 100000000   # once; resumable; not timed
    .venv/bin/python bench/bench_incident.py run --events 100000000                   # the timed incident
    .venv/bin/python bench/bench_incident.py run --events 1000000 --practitioners 5000 # a small check first

Sizes (``--events`` total, split evenly between the regions; ``--practitioners`` per region):

    regions              hdf, nor, pdl — each its own slapd and its own PostgreSQL database, in its own
                         column names (journal_acces / acces_dossier / audit_trail, patient / usager /
                         dossier_patient), its own local patient ids (numbers, other numbers, text)
    practitioners        50,000 per region (default)
    compromised          600 / 500 / 400 accounts, spread over each directory, attacked 10 to 60 days before
                         the end in the four styles of the attribution benchmark (demo platform)
    access events        100 M in total by default, over 183 days; the compromised accounts' own work and
                         attacks are ~6.7 M of them whatever the size (~4,400 per account), the other
                         practitioners fill the rest (below 6.7 M: the compromised accounts only)
    people               events / 100 per region (1 M at 100 M events), a fifth of each region shared with
                         the previous one: the same NIR under another local id; 7 in 10 with a NIR
    disk                 about 110 bytes per event in PostgreSQL (table + index): ~11 GB at 100 M
    generation           ~2.6 min at 10 M on this machine (busy), ~20 min at 100 M (SQL for the bulk)

The real path, timed from the alert: a ``prefect server start`` on PostgreSQL; the ``respond`` deployment
(from ``tourniquet/flows/respond.py``) with the three sites and its alert trigger; two process workers.
``alert`` posts an ``alert.raised`` event naming the 1,500 qualified accounts (``hdf:uid`` …): the automation
starts the plan (a dry run). Then the live run (the form's Submit, ``since: auto``): each region's part pauses
for its approval (more accounts than the playbook's limit), answered by ``tourniquet approve`` as a
responder would; then containment, scope per region (``since: auto``: each account's window from its first
odd access), tickets, seals, the national summary; then ``tourniquet evidence verify`` over the three
regions and the national folder. ``--served`` measures the live run a second time through the served
responder (``python -m tourniquet.flows.serve``) instead of the workers, on fresh copies of the directories.

Printed: each phase's time (from the journals) and the whole, the ratio of each phase to a bare baseline
run in the same run (bare python-ldap and ldap3 loops over the region's accounts; the bare SQL of the
region's scope — events and distinct people per account over the same lookback; a bare set union of the
regions' national hashes), peak RSS of every process (sampled from /proc), database sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_contain import BARE, BARE_LIBLDAP, _child  # noqa: E402
from bench.incident_data import (  # noqa: E402
    COMPROMISED,
    END,
    REGIONS,
    SCHEMAS,
    SUFFIX,
    Sizes,
    compromised_uids,
    directory_of,
    dsn,
    generate,
    running_postgres,
)
from bench.incident_phases import (  # noqa: E402
    ProcessPeaks,
    bare_scope,
    bare_union,
    database_sizes,
    journal_phases,
    log_rows,
    print_report,
)
from bench.servers import prefect_server, prefect_worker  # noqa: E402

TOURNIQUET = str(Path(sys.executable).with_name("tourniquet"))
PREFECT = str(Path(sys.executable).with_name("prefect"))
POOL = "tourniquet"


def _sites(run: Path, data: Path, sizes: Sizes, pg: tuple[str, int], slapds: dict[str, Any]) -> list[Path]:
    import yaml

    from tourniquet.demo.platform import ACTION_FIELDS, CATEGORIES

    key = run / "national-key"
    key.write_text("bench national-id key\n")
    key.chmod(0o600)
    paths = []
    for region in REGIONS:
        s, server = SCHEMAS[region], slapds[region]
        secret = run / f"secret-{region}"
        secret.write_text(server.root_password)
        secret.chmod(0o600)
        config = {
            "site": region, "state_dir": str(run / region / "state"), "evidence_dir": str(run / region / "evidence"),
            "directory": {"url": server.url, "allow_plaintext": True, "bind_dn": server.root_dn,
                          "bind_password": {"file": str(secret)}, "base_dn": f"ou=people,{SUFFIX}",
                          "default_policy_dn": server.policy_dn, "timeout": 60},
            "tickets": {"kind": "file", "path": str(run / region / "tickets")},
            "limits": {"max_accounts_ceiling": 2000},
            "audit": {"kind": "postgresql", "dsn": dsn(pg, region), "table": s["log"], "timeout": 3600,
                      "columns": {"timestamp": s["ts"], "account": s["account"], "subject": s["subject"],
                                  "action": s["action"], "source_ip": s["ip"]},
                      "action_fields": ACTION_FIELDS, "categories": CATEGORIES,
                      "subjects": {"table": s["people"], "key": s["key"], "fields": s["fields"], "national_id": "nir"},
                      "national_id_key": {"file": str(key)}},
        }
        path = run / f"{region}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        paths.append(path)
    return paths


def _start_slapds(data: Path, run: Path, stack: ExitStack) -> dict[str, Any]:
    from tourniquet.demo.slapd import Slapd

    servers = {}
    for region in REGIONS:
        copy = run / f"slapd-{region}"
        # cp, not copytree: the mdb file is sparse (8 GB of address space, a few hundred MB of data)
        subprocess.run(["cp", "-a", "--sparse=always", str(data / f"slapd-{region}"), str(copy)], check=True)
        server = Slapd(SUFFIX, "bench-root-secret", directory=copy, size_limit=100_000)
        server.start(timeout=60)
        stack.callback(server.stop)
        servers[region] = server
    return servers


def _deploy(env: dict[str, str], sites: list[Path]) -> None:
    environment = {**os.environ, **env}
    subprocess.run([PREFECT, "work-pool", "create", POOL, "--type", "process"], env=environment, check=True,
                   capture_output=True, cwd=str(ROOT))
    sites_json = json.dumps([str(s) for s in sites])
    code = f"""
from prefect import flow
from prefect.events import DeploymentEventTrigger
trigger = DeploymentEventTrigger(enabled=True, match={{"prefect.resource.id": "alert.*"}}, expect=["alert.raised"],
    parameters={{"accounts": {{"__prefect_kind": "jinja", "template": "{{{{ event.payload.accounts | default(none) | tojson }}}}"}},
                "reason": "{{{{ event.resource.id }}}}: {{{{ event.payload.reason }}}}", "dry_run": True,
                "site": {sites_json}, "since": "auto", "alert_time": "{{{{ event.occurred | string }}}}"}})
flow.from_source(source={str(ROOT)!r}, entrypoint="tourniquet/flows/respond.py:respond").deploy(
    name="respond", work_pool_name={POOL!r}, triggers=[trigger], concurrency_limit=4)
"""
    subprocess.run([sys.executable, "-c", code], env=environment, check=True, capture_output=True, cwd=str(ROOT))


def _runs(client: Any, **filters: Any) -> list[Any]:
    from prefect.client.schemas.filters import FlowRunFilter

    return list(client.read_flow_runs(flow_run_filter=FlowRunFilter(**filters), limit=200))


def _wait_plan(since: float, timeout: float = 3600) -> Any:
    """The dry run the alert's automation started: until it is final."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilterTags

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = [r for r in _runs(client, tags=FlowRunFilterTags(all_=["dry-run"]))
                    if r.parent_task_run_id is None and r.created and r.created.timestamp() >= since - 5]
            if runs and runs[0].state is not None and runs[0].state.is_final():
                return runs[0]
            time.sleep(0.5)
    raise SystemExit("the alert's plan did not finish in time")


def _approve_until_final(parent: Any, env: dict[str, str], timeout: float = 7200) -> Any:
    """Answer each region's approval as a responder would (``tourniquet approve``) until the run is final."""
    from prefect.client.orchestration import get_client

    answered: set[str] = set()
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            run = client.read_flow_run(parent.id)
            if run.state is not None and run.state.is_final():
                return run
            for candidate in _runs(client):
                if candidate.state is not None and candidate.state.is_paused() and str(candidate.id) not in answered:
                    done = subprocess.run([TOURNIQUET, "approve", str(candidate.id), "--approver", "bench-responder",
                                           "--comment", "1,500 accounts: the incident"], env={**os.environ, **env},
                                          capture_output=True, text=True, cwd=str(ROOT))
                    if done.returncode == 0:
                        answered.add(str(candidate.id))
            time.sleep(0.5)
    raise SystemExit("the live run did not finish in time")


def _incident(env: dict[str, str], sites: list[Path], ids: list[str], incident: str, deployment: str) -> dict[str, Any]:
    """Alert → plan → live run → approvals → containment, scope, national, seals → evidence verify."""
    from prefect.deployments import run_deployment
    from prefect.events import emit_event
    from prefect.events.worker import EventsWorker

    marks: dict[str, float] = {"alert": time.time()}
    if deployment == "respond/respond":
        emit_event(event="alert.raised", resource={"prefect.resource.id": f"alert.{incident}"},
                   payload={"accounts": ids, "reason": "1,500 accounts of a vendor's platform"})
        EventsWorker.drain_all(timeout=60)
        plan = _wait_plan(marks["alert"])
        marks["planned"] = time.time()
        plan_status = plan.state.name if plan.state else "?"
    else:
        marks["planned"], plan_status = marks["alert"], "not measured (served responder: live run only)"
    parent = run_deployment(deployment, timeout=0, parameters={
        "accounts": ids, "dry_run": False, "site": [str(s) for s in sites], "since": "auto",
        "incident": incident, "reason": "1,500 accounts of a vendor's platform",
        "alert_time": datetime.fromtimestamp(marks["alert"], timezone.utc).isoformat()})
    final = _approve_until_final(parent, env)
    marks["run_final"] = time.time()
    verify = subprocess.run([TOURNIQUET, "evidence", "verify", incident, *(a for s in sites for a in ("--site", str(s)))],
                            env={**os.environ, **env}, capture_output=True, text=True, cwd=str(ROOT))
    marks["verified"] = time.time()
    return {"marks": marks, "plan": plan_status, "state": final.state.name if final.state else "?",
            "message": final.state.message if final.state else "", "verify": verify.stdout + verify.stderr,
            "verify_code": verify.returncode}


def _baselines(sites: list[Path], slapds: dict[str, Any], uids: dict[str, list[str]], pg: tuple[str, int],
               run: Path, incident: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for region in REGIONS:
        server = slapds[region]
        uids_file = run / f"uids-{region}.txt"
        uids_file.write_text("\n".join(uids[region]))
        args = (server.url, server.root_dn, server.root_password, f"ou=people,{SUFFIX}", str(uids_file))
        found[f"ldap3 {region}"] = _child(BARE, *args)
        found[f"python-ldap {region}"] = _child(BARE_LIBLDAP, *args)
        found[f"sql {region}"] = bare_scope(dsn(pg, region), SCHEMAS[region], uids[region], END)
    found["union"] = bare_union([s.parent / s.stem / "evidence" / incident for s in sites])
    return found


def _measure(label: str, deployment: str, run: Path, data: Path, sizes: Sizes, pg: tuple[str, int],
             env: dict[str, str], ids: list[str], uids: dict[str, list[str]]) -> dict[str, Any]:
    """One incident on fresh copies of the directories: the timeline, the phases, the peaks, the baselines."""
    run.mkdir(parents=True)
    with ExitStack() as stack:
        slapds = _start_slapds(data, run, stack)
        sites = _sites(run, data, sizes, pg, slapds)
        peaks = stack.enter_context(ProcessPeaks(os.getpid()))
        if deployment == "respond/served":
            stack.enter_context(_served(env, run / "served.log"))
        incident = f"inc-bench-{label}-{int(time.time())}"
        found: dict[str, Any] = {"label": label, "timeline": _incident(env, sites, ids, incident, deployment)}
        found["phases"] = {r: journal_phases(run / r / "evidence" / incident / "journal.jsonl") for r in REGIONS}
        found["national_phases"] = journal_phases(next((run / REGIONS[0] / "evidence").glob("*-national"),
                                                       run / "none") / "journal.jsonl")
        found["peaks"] = peaks.snapshot()
        found["baselines"] = _baselines(sites, slapds, uids, pg, run, incident)
    return found


@contextmanager
def _served(env: dict[str, str], log: Path) -> Iterator[None]:
    """``python -m tourniquet.flows.serve`` until its ``respond/served`` deployment is on the server."""
    import signal

    import httpx

    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "tourniquet.flows.serve"], cwd=str(ROOT),
                                   env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            found = httpx.post(f"{env['PREFECT_API_URL']}/deployments/filter", json={}, timeout=10).json()
            if any(d["name"] == "served" for d in found):
                break
            if process.poll() is not None:
                raise SystemExit(f"the served responder exited:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        time.sleep(2)  # its first poll
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def cmd_run(args: argparse.Namespace) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    sizes = Sizes(args.events, args.practitioners)
    data = Path(args.data) / f"incident-{args.events}-{args.practitioners}"
    if not (data / "done" / f"index-{REGIONS[-1]}").exists():
        raise SystemExit(f"no data at {data}: run `bench_incident.py generate --events {args.events}` first")
    run = Path(args.data) / f"run-{time.strftime('%Y%m%dT%H%M%S')}"
    run.mkdir(parents=True)
    uids = {r: compromised_uids(r, directory_of(r, sizes)) for r in REGIONS}
    ids = [f"{r}:{u}" for r in REGIONS for u in uids[r]]
    results: dict[str, Any] = {"sizes": vars(sizes), "accounts": len(ids), "measures": []}
    with ExitStack() as stack:
        pg = stack.enter_context(running_postgres(data))
        _reset_prefect_database(pg)
        env = stack.enter_context(prefect_server(run / "prefect", database_url=(
            f"postgresql+asyncpg://postgres@127.0.0.1:{pg[1]}/prefect")))
        stack.enter_context(temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]}))
        os.environ.update(env)
        with ExitStack() as workers:
            _deploy(env, [run / "workers" / f"{r}.yaml" for r in REGIONS])
            for n in range(2):
                workers.enter_context(prefect_worker(env, POOL, run / f"worker-{n}.log",
                                                     extra={"TOURNIQUET_HOME": str(ROOT)}))
            time.sleep(3)  # the workers' first poll
            results["measures"].append(_measure("workers", "respond/respond", run / "workers", data, sizes, pg, env,
                                                ids, uids))
            _save(run, results)
            print_report(results["measures"][-1], results, "2 process workers")
        if args.served:
            results["measures"].append(_measure("served", "respond/served", run / "served", data, sizes, pg, env,
                                                ids, uids))
            print_report(results["measures"][-1], results, "the served responder")
        results["databases"] = database_sizes(pg, [*REGIONS, "prefect"])
        results["log_rows"] = log_rows(pg, {r: SCHEMAS[r]["log"] for r in REGIONS})
    _save(run, results)
    rows = results["log_rows"]
    print(f"\naccess events really in the logs: {sum(rows.values()):,} "
          f"({', '.join(f'{r} {n:,}' for r, n in rows.items())})")
    print("\n| database | size |")
    print("|---|---|")
    for name, gb in results["databases"].items():
        print(f"| {name} | {gb:.2f} GB |")


def _save(run: Path, results: dict[str, Any]) -> None:
    (run / "results.json").write_text(json.dumps(results, indent=1, default=str))


def _reset_prefect_database(pg: tuple[str, int]) -> None:
    import psycopg

    with psycopg.connect(dsn(pg, "postgres"), autocommit=True) as connection:
        connection.execute("DROP DATABASE IF EXISTS prefect WITH (FORCE)")
        connection.execute("CREATE DATABASE prefect")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("generate", "run"))
    parser.add_argument("--events", type=int, default=100_000_000, help="access events in total (default 100 M)")
    parser.add_argument("--practitioners", type=int, default=50_000, help="practitioners per region (default 50,000)")
    parser.add_argument("--data", default=str(ROOT / "var" / "bench"), help="where the data and the runs go")
    parser.add_argument("--served", action="store_true", help="then measure the live run a second time through the "
                                                              "served responder, on fresh copies of the directories")
    args = parser.parse_args()
    assert sum(COMPROMISED.values()) == 1500
    if args.command == "generate":
        started = time.monotonic()
        generate(Path(args.data) / f"incident-{args.events}-{args.practitioners}", Sizes(args.events, args.practitioners),
                 say=lambda line: print(line, flush=True))
        print(f"data ready in {time.monotonic() - started:.0f} s")
        return
    cmd_run(args)


if __name__ == "__main__":
    main()
