"""How fast a small incident is contained: trigger → first account locked, and the whole 10-account run.

    .venv/bin/python bench/bench_latency.py [--trials 3]

Four paths, each on a real ``prefect server start`` (SQLite) and a real slapd:

- **deployment + worker** — the ``respond`` deployment (the form's Submit, or an alert's trigger), picked
  up by a process worker started with ``PREFECT_WORKER_QUERY_SECONDS=1`` (the default 10 s polling would
  dominate). Measured from the ``run_deployment`` call: until the first account is locked in the
  directory (polled every 50 ms), and until the flow run is final.
- **served responder** — ``python -m tourniquet.flows.serve``: the same ``respond`` flow, already imported
  by one long-lived process that starts each run in a child of its own (no ``python -m prefect.engine``).
- **``tourniquet run`` with a long-lived server** — ``tourniquet server start`` once; the CLI finds it.
- **``tourniquet run`` with no server** — Prefect starts a temporary one for the run.

The playbook is the shipped ``credential-misuse`` (scramble, lock, reset, end sessions, ticket, data scope)
on 10 accounts named by uid.

``--plan`` measures the plan → approval → apply path instead, on the worker and the served responder:
from the trigger (what an ``alert.raised`` trigger or the form's Submit does: ``run_deployment`` with the
default dry run) until the run waits, suspended, on its approval with the plan on the form; then from
the approval (``tourniquet approve``'s API call) until the first account is locked by the same run,
and until it is final. The baseline, in the same run: the direct containment (``dry_run=false``) from
trigger to first lock.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import ldap3
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.servers import prefect_server, prefect_worker  # noqa: E402
from tourniquet.demo.practitioners import generate, write_ldif  # noqa: E402
from tourniquet.demo.slapd import Slapd  # noqa: E402

SUFFIX = "dc=sante,dc=example"
TOURNIQUET = str(Path(sys.executable).with_name("tourniquet"))


def _admin(server: Slapd) -> ldap3.Connection:
    return ldap3.Connection(ldap3.Server(server.url), server.root_dn, server.root_password, auto_bind=True)


def _locked(connection: ldap3.Connection, dns: list[str]) -> int:
    count = 0
    for dn in dns:
        connection.search(dn, "(pwdAccountLockedTime=*)", ldap3.BASE, attributes=["1.1"])
        count += bool(connection.response)
    return count


def _release(server: Slapd, people: list) -> None:
    connection = _admin(server)
    for person in people:
        connection.modify(person.dn, {"pwdAccountLockedTime": [(ldap3.MODIFY_REPLACE, [])],
                                      "pwdReset": [(ldap3.MODIFY_REPLACE, [])],
                                      "userPassword": [(ldap3.MODIFY_REPLACE, [person.password])]})
    connection.unbind()


def _deployment_trial(env: dict[str, str], site: Path, server: Slapd, people: list,
                      deployment: str = "respond/respond") -> tuple[float, float]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    os.environ.update(env)
    with temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]}):  # read when Prefect was imported
        return _deployment_run(server, people, site, deployment)


def _deployment_run(server: Slapd, people: list, site: Path, deployment: str = "respond/respond") -> tuple[float, float]:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    connection = _admin(server)
    dns = [p.dn for p in people]
    started = time.perf_counter()
    flow_run = run_deployment(deployment, timeout=0, parameters={
        "accounts": " ".join(p.uid for p in people), "dry_run": False, "site": str(site), "reason": "bench"})
    first = None
    while True:
        if first is None and _locked(connection, dns) > 0:
            first = time.perf_counter() - started
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(flow_run.id).state
        if state is not None and state.is_final():
            break
        time.sleep(0.05)
    total = time.perf_counter() - started
    connection.unbind()
    if not state.is_completed():
        raise SystemExit(f"the run ended {state.name}: {state.message}")
    return first if first is not None else total, total


def _plan_trial(env: dict[str, str], site: Path, server: Slapd, people: list,
                deployment: str) -> tuple[float, float, float]:
    """(trigger → paused on the plan, approval → first account locked, approval → run final)."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tourniquet.flows.approval import resume

    os.environ.update(env)
    with temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]}):
        connection = _admin(server)
        dns = [p.dn for p in people]
        started = time.perf_counter()
        flow_run: Any = run_deployment(deployment, timeout=0, parameters={
            "accounts": " ".join(p.uid for p in people), "site": str(site), "reason": "bench alert"})
        while True:
            with get_client(sync_client=True) as client:
                state = client.read_flow_run(flow_run.id).state
            if state is not None and state.is_paused():
                break
            if state is not None and state.is_final():
                raise SystemExit(f"the plan run ended {state.name}: {state.message}")
            time.sleep(0.05)
        paused = time.perf_counter() - started
        approved = time.perf_counter()
        resume(flow_run.id, "bench approver")
        first = None
        while True:
            if first is None and _locked(connection, dns) > 0:
                first = time.perf_counter() - approved
            with get_client(sync_client=True) as client:
                state = client.read_flow_run(flow_run.id).state
            if state is not None and state.is_final():
                break
            time.sleep(0.05)
        total = time.perf_counter() - approved
        connection.unbind()
    if not state.is_completed():
        raise SystemExit(f"the approved plan ended {state.name}: {state.message}")
    return paused, first if first is not None else total, total


def _event_trial(env: dict[str, str], site: Path, people: list) -> float:
    """``alert.raised`` posted to the server → the run its trigger started waits on its plan (seconds)."""
    import httpx

    api = env["PREFECT_API_URL"]
    alert = f"alert.bench.{time.monotonic_ns()}"
    started = time.perf_counter()
    event = {"id": str(uuid.uuid4()), "occurred": datetime.now(timezone.utc).isoformat(), "event": "alert.raised",
             "resource": {"prefect.resource.id": alert}, "payload": {"accounts": [p.uid for p in people],
                                                                    "reason": "bench"}}
    httpx.post(f"{api}/events", json=[event], timeout=30).raise_for_status()
    while True:
        runs = httpx.post(f"{api}/flow_runs/filter", json={"limit": 50}, timeout=30).json()
        mine = [r for r in runs if alert in str(r["parameters"].get("reason", ""))]
        if mine and mine[0]["state_type"] == "PAUSED":
            return time.perf_counter() - started
        if mine and mine[0]["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            raise SystemExit(f"the alert's run ended {mine[0]['state_type']}: {mine[0]['state'].get('message')}")
        if time.perf_counter() - started > 180:
            raise SystemExit("the alert started no run that waits on its plan within 180 s")
        time.sleep(0.1)


def _plan_paths(args: argparse.Namespace, directory: Any, server: Slapd, site: Path, folder: Path) -> None:
    """``--plan``: the alert → plan → approval → apply path on the worker and the served responder."""
    rows: list[tuple[str, float, float, float]] = []
    with prefect_server(folder / "prefect") as env:
        environment = {**os.environ, **env}
        subprocess.run([str(Path(sys.executable).with_name("prefect")), "work-pool", "create", "tourniquet",
                        "--type", "process"], env=environment, check=True, capture_output=True, cwd=str(ROOT))
        code = (f"from prefect import flow\nflow.from_source(source={str(ROOT)!r}, "
                f"entrypoint='tourniquet/flows/respond.py:respond').deploy(name='respond', "
                f"work_pool_name='tourniquet')")
        subprocess.run([sys.executable, "-c", code], env=environment, check=True, capture_output=True, cwd=str(ROOT))
        paths = [("deployment + process worker (poll 1 s)", "respond/respond", 0),
                 ("served responder (poll 1 s)", "respond/served", 100)]
        with prefect_worker(env, "tourniquet", folder / "worker.log", extra={"TOURNIQUET_SITE": str(site)}):
            time.sleep(3)
            with _served(env, site, folder / "served.log"):
                for label, deployment, offset in paths:
                    for trial in range(args.trials):
                        people = directory.practitioners[offset + trial * 20:offset + trial * 20 + 10]
                        direct, _ = _deployment_trial(env, site, server, people, deployment)
                        _release(server, people)
                        people = directory.practitioners[offset + trial * 20 + 10:offset + trial * 20 + 20]
                        paused, first, total = _plan_trial(env, site, server, people, deployment)
                        rows.append((label, paused, first, total))
                        rows.append((label + " — baseline: direct containment", float("nan"), direct, float("nan")))
                        _release(server, people)
            # The shipped prefect.yaml's trigger: an alert.raised event → an automation → the worker's run.
            subprocess.run([str(Path(sys.executable).with_name("prefect")), "--no-prompt", "deploy", "--name",
                            "respond"], env={**environment, "TOURNIQUET_SITE": str(site), "TOURNIQUET_HOME": str(ROOT)}, check=True,
                           capture_output=True, cwd=str(ROOT))
            for trial in range(args.trials):
                people = directory.practitioners[150 + trial * 10:150 + (trial + 1) * 10]
                rows.append(("alert.raised event → trigger → process worker", _event_trial(env, site, people),
                             float("nan"), float("nan")))
    print("\n10-account credential-misuse, plan → approval → apply in one flow run, 2 cores:")
    print("| path | trigger → suspended on the plan | approval → first account locked | approval → run final |")
    print("|---|---|---|---|")
    for label, paused, first, total in rows:
        def shown(value: float) -> str:
            return "—" if value != value else f"{value:.1f} s"
        print(f"| {label} | {shown(paused)} | {shown(first)} | {shown(total)} |")


@contextmanager
def _served(env: dict[str, str], site: Path, log: Path) -> Iterator[None]:
    """``python -m tourniquet.flows.serve`` until its deployments are on the server, then for the trials."""
    import httpx

    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "tourniquet.flows.serve"], cwd=str(ROOT),
                                   env={**os.environ, **env, "TOURNIQUET_SITE": str(site)}, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
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


def _cli_trial(env: dict[str, str], site: Path, people: list, incident: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([TOURNIQUET, "run", "credential-misuse", "--site", str(site), "--incident", incident,
                           "-i", "accounts=" + ",".join(p.uid for p in people)],
                          env=env, capture_output=True, text=True, cwd=str(ROOT))
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"tourniquet run failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--plan", action="store_true",
                        help="the alert → plan → approval → apply path (worker and served) instead")
    args = parser.parse_args()
    directory = generate(200, SUFFIX)
    folder = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    server = Slapd(SUFFIX, "bench-root-secret", directory=folder / "slapd")
    server.configure(write_ldif(directory, folder / "data.ldif"))
    server.start()
    (folder / "secret").write_text(server.root_password)
    site = folder / "tourniquet.yaml"
    site.write_text(yaml.safe_dump({
        "site": "bench", "state_dir": str(folder / "state"), "evidence_dir": str(folder / "evidence"),
        "directory": {"url": server.url, "allow_plaintext": True, "bind_dn": server.root_dn,
                      "bind_password": {"file": str(folder / "secret")}, "base_dn": directory.people_dn,
                      "default_policy_dn": server.policy_dn, "timeout": 10},
        "tickets": {"kind": "file", "path": str(folder / "tickets")},
    }))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    rows: list[tuple[str, float, float]] = []
    if args.plan:
        try:
            _plan_paths(args, directory, server, site, folder)
        finally:
            server.stop()
        return
    try:
        with prefect_server(folder / "prefect") as env:
            environment = {**os.environ, **env}
            subprocess.run([str(Path(sys.executable).with_name("prefect")), "work-pool", "create", "tourniquet",
                            "--type", "process"], env=environment, check=True, capture_output=True, cwd=str(ROOT))
            code = (f"from prefect import flow\nflow.from_source(source={str(ROOT)!r}, "
                    f"entrypoint='tourniquet/flows/respond.py:respond').deploy(name='respond', "
                    f"work_pool_name='tourniquet')")
            subprocess.run([sys.executable, "-c", code], env=environment, check=True, capture_output=True,
                           cwd=str(ROOT))
            with prefect_worker(env, "tourniquet", folder / "worker.log", extra={"TOURNIQUET_SITE": str(site)}):
                time.sleep(3)  # the worker's first poll
                for trial in range(args.trials):
                    people = directory.practitioners[trial * 10:(trial + 1) * 10]
                    first, total = _deployment_trial(env, site, server, people)
                    rows.append(("deployment + process worker (poll 1 s)", first, total))
                    _release(server, people)
            with _served(env, site, folder / "served.log"):
                for trial in range(args.trials):
                    people = directory.practitioners[50 + trial * 10:50 + (trial + 1) * 10]
                    first, total = _deployment_trial(env, site, server, people, "respond/served")
                    rows.append(("served responder (`python -m tourniquet.flows.serve`, poll 1 s)", first, total))
                    _release(server, people)
        with prefect_server(folder / "prefect-cli") as env:  # what `tourniquet server start` leaves running
            for trial in range(args.trials):
                people = directory.practitioners[100 + trial * 10:100 + (trial + 1) * 10]
                total = _cli_trial({**base_env, **env}, site, people, f"inc-cli-server-{trial}")
                rows.append(("tourniquet run, server running", float("nan"), total))
                _release(server, people)
        for trial in range(min(2, args.trials)):
            people = directory.practitioners[150 + trial * 10:150 + (trial + 1) * 10]
            total = _cli_trial({**base_env, "PREFECT_HOME": str(folder / f"home-{trial}")}, site, people,
                               f"inc-cli-temp-{trial}")
            rows.append(("tourniquet run, temporary server", float("nan"), total))
            _release(server, people)
    finally:
        server.stop()
    print("\n10-account credential-misuse run, 2 cores:")
    print("| path | trigger → first account locked | whole run |")
    print("|---|---|---|")
    for label, first, total in rows:
        shown = "—" if first != first else f"{first:.1f} s"
        print(f"| {label} | {shown} | {total:.1f} s |")


if __name__ == "__main__":
    main()
