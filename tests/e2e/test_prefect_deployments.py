"""End to end, the way responders run it: a real Prefect server, deployments, a process worker.

One ``prefect server start`` on a free loopback port for the whole module (its own PREFECT_HOME),
``prefect --no-prompt deploy --all`` from the repository's prefect.yaml, one
``prefect worker start --pool tourniquet`` whose flow runs talk to the test slapd. Then:

- a responder starts ``respond`` with ``prefect deployment run … --param …``: the account is locked in
  the directory, the run is named ``<incident>-contain`` and tagged ``live``, and the report,
  accounts and progress artifacts are on the server;
- a SIEM emits ``alert.raised`` for ``alert.siem.*``: the deployment trigger starts a dry-run of
  ``respond`` with the alert's accounts (``<incident>-DRY-RUN``, tagged ``dry-run``), which plans
  and changes nothing; an alert without accounts starts a run too, which fails saying so;
- a run over the account limit pauses, and ``tourniquet approve <run name>`` answers it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import write_site
from tests.helpers import LdapAdmin, bind_result
from tourniquet.clock import parse_time
from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import Slapd, find_free_port
from tourniquet.flows.artifacts import artifact_key
from tourniquet.flows.form import parse_accounts

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).parent / "prefect")
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@dataclass
class Stack:
    api: str
    env: dict[str, str]
    folder: Path
    site: Path
    http: httpx.Client

    def prefect(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run([PREFECT, *args], env=self.env, cwd=REPO, capture_output=True, text=True,
                              timeout=timeout)
        assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.post(f"{self.api}{path}", json=body or {})
        response.raise_for_status()
        return response.json()

    def wait_for_run(self, run_id: str, deadline: float = 120) -> dict[str, Any]:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            run = self.http.get(f"{self.api}/flow_runs/{run_id}").json()
            if run["state_type"] in TERMINAL:
                return run
            time.sleep(0.5)
        raise AssertionError(f"flow run {run_id} did not finish: {self.logs(run_id)}")

    def logs(self, run_id: str) -> str:
        logs = self.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200,
                                          "sort": "TIMESTAMP_ASC"})
        return "\n".join(log["message"] for log in logs)


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(args, env=env, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # our own process group (start_new_session above)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _wait_healthy(api: str, server: subprocess.Popen[bytes], log: Path, deadline: float = 90) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if server.poll() is not None:
            raise AssertionError(f"prefect server exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"prefect server not healthy after {deadline}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, slapd: Slapd, practitioners: Directory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("prefect-e2e")
    port = find_free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
        "PREFECT_HOME": str(folder / "prefect-home"),
        "PREFECT_API_URL": api,
        "PREFECT_UI_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "TOURNIQUET_HOME": str(REPO),
    }
    site = write_site(folder, slapd, practitioners)
    env["TOURNIQUET_SITE"] = str(site)
    server = _start([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env,
                    folder / "server.log")
    worker: subprocess.Popen[bytes] | None = None
    http = httpx.Client(timeout=30)
    try:
        _wait_healthy(api, server, folder / "server.log")
        stack = Stack(api, env, folder, site, http)
        stack.prefect("work-pool", "create", "tourniquet", "--type", "process")
        stack.prefect("--no-prompt", "deploy", "--all")
        worker = _start([PREFECT, "worker", "start", "--pool", "tourniquet"], env, folder / "worker.log")
        yield stack
    finally:
        http.close()
        if worker is not None:
            _stop(worker)
        _stop(server)
        admin = LdapAdmin(slapd)
        admin.reset_all(practitioners)
        admin.close()


def _run_id(output: str) -> str:
    match = re.search(r"UUID:\s*([0-9a-f-]{36})", output)
    assert match, output
    return match.group(1)


def test_deploy_creates_the_deployments_with_a_described_form(stack: Stack) -> None:
    deployments = {d["name"]: d for d in stack.post("/deployments/filter", {})}

    assert set(deployments) >= {"respond", "hygiene", "reinstate"}
    form = deployments["respond"]["parameter_openapi_schema"]["properties"]
    assert set(form) == {"accounts", "reason", "since", "dry_run", "playbook", "incident", "site", "alert_time"}
    assert all(field.get("description") for field in form.values()), form
    assert [(o["type"], o["title"]) for o in form["accounts"]["anyOf"]] == [("string", "one block of text"),
                                                                            ("array", "list")]
    assert form["incident"]["type"] == "string" and "anyOf" not in form["incident"], "no None toggles"
    assert [(o["type"], o["title"]) for o in form["site"]["anyOf"]] == [("string", "one site, or one per line"),
                                                                        ("array", "list")], "one site or several"
    assert deployments["respond"]["parameters"]["dry_run"] is True
    schedules = deployments["hygiene"]["schedules"]
    assert schedules and schedules[0]["schedule"]["timezone"] == "Europe/Paris"
    assert "incident" in deployments["reinstate"]["parameter_openapi_schema"]["required"]
    hourly = deployments["deadlines"]["schedules"]
    assert hourly and hourly[0]["schedule"]["cron"] == "7 * * * *", "the Art. 33 reminders, every hour"
    recover = deployments["recover"]["parameter_openapi_schema"]
    assert set(recover["required"]) == {"incident", "accounts"}
    assert set(recover["properties"]) == {"incident", "accounts", "password_file", "approved_by", "comment",
                                          "operator", "site"}
    assert all(field.get("description") for field in recover["properties"].values()), recover


def test_responder_runs_the_deployment_and_the_account_is_locked(
    stack: Stack, slapd: Slapd, practitioners: Directory
) -> None:
    suspect = practitioners.practitioners[33]
    incident = "inc-e2e-deployment"

    output = stack.prefect("deployment", "run", "respond/respond", "--param", f'accounts=["{suspect.uid}"]',
                           "--param", "dry_run=false", "--param", f"incident={incident}",
                           "--param", 'reason="ARS alert 7"')
    run = stack.wait_for_run(_run_id(output))

    assert run["state_type"] == "COMPLETED", stack.logs(run["id"])
    assert run["name"] == f"{incident}-contain" and "live" in run["tags"], (run["name"], run["tags"])
    assert bind_result(slapd, suspect.dn, suspect.password) == "invalidCredentials"
    artifacts = stack.post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}})
    by_key = {a["key"]: a for a in artifacts if a.get("key")}
    for kind in ("report", "accounts", "progress", "evidence"):
        assert artifact_key(incident, kind) in by_key, sorted(by_key)
    assert suspect.uid in by_key[artifact_key(incident, "report")]["data"]
    rows = json.loads(by_key[artifact_key(incident, "accounts")]["data"])
    assert rows[0]["lock"] == "applied"
    end = time.monotonic() + 20  # the run's logs reach the server in batches, after the run may have ended
    applied = f"[{incident} lock {suspect.uid}] change.applied"
    while applied not in stack.logs(run["id"]) and time.monotonic() < end:
        time.sleep(0.5)
    logs = stack.logs(run["id"])
    assert logs.count(applied) == 1, "our events reach the run's logs, once each, as readable lines"


def test_an_alert_event_starts_a_dry_run_that_changes_nothing(
    stack: Stack, slapd: Slapd, practitioners: Directory
) -> None:
    suspect = practitioners.practitioners[34]
    alert = "alert.siem.4242"

    stack.prefect("event", "emit", "alert.raised", "--resource-id", alert,
                  "--payload", json.dumps({"accounts": [suspect.uid], "reason": "scraping of patient identities"}))

    found: list[dict[str, Any]] = []
    end = time.monotonic() + 90
    while not found and time.monotonic() < end:
        runs = stack.post("/flow_runs/filter", {"flow_runs": {"tags": {"all_": ["tourniquet"]}}, "limit": 50})
        found = [r for r in runs if alert in str(r["parameters"].get("reason", ""))]
        time.sleep(0.5)
    assert found, "the alert did not start a flow run"
    assert found[0]["parameters"]["dry_run"] is True
    assert parse_accounts(found[0]["parameters"]["accounts"]) == [suspect.uid]
    occurred = parse_time(found[0]["parameters"]["alert_time"])
    assert occurred is not None and abs(occurred - datetime.now(timezone.utc)) < timedelta(minutes=10), \
        "the event's time, to start the Art. 33 clock"
    run = stack.wait_for_run(found[0]["id"])
    assert run["state_type"] == "COMPLETED", stack.logs(run["id"])
    assert run["name"].endswith("-DRY-RUN") and "dry-run" in run["tags"], (run["name"], run["tags"])
    assert bind_result(slapd, suspect.dn, suspect.password) == "success", "a dry run changes nothing"


def test_an_alert_without_accounts_is_a_failed_run_that_says_so(stack: Stack) -> None:
    """Before, the server's parameter check refused it and nothing at all happened."""
    alert = "alert.siem.4343"

    stack.prefect("event", "emit", "alert.raised", "--resource-id", alert,
                  "--payload", json.dumps({"reason": "an alert that forgot its accounts"}))

    found: list[dict[str, Any]] = []
    end = time.monotonic() + 90
    while not found and time.monotonic() < end:
        runs = stack.post("/flow_runs/filter", {"flow_runs": {"tags": {"all_": ["tourniquet"]}}, "limit": 50})
        found = [r for r in runs if alert in str(r["parameters"].get("reason", ""))]
        time.sleep(0.5)
    assert found, "a malformed alert must still start a run that can say what is wrong"
    run = stack.wait_for_run(found[0]["id"])
    assert run["state_type"] == "FAILED"
    assert "no accounts were given" in run["state"]["message"], run["state"]["message"]


def test_a_run_over_the_limit_waits_for_tourniquet_approve(
    stack: Stack, slapd: Slapd, practitioners: Directory
) -> None:
    """The worker's run pauses on the blast-radius limit; ``tourniquet approve`` (another process) answers."""
    import yaml

    suspects = [practitioners.practitioners[i] for i in (35, 36)]
    playbook = yaml.safe_load((REPO / "playbooks" / "credential-misuse.yaml").read_text())
    playbook["limits"].update(max_accounts=1, approval_timeout="40s")
    path = stack.folder / "one-account-limit.yaml"
    path.write_text(yaml.safe_dump(playbook, sort_keys=False))
    incident = "inc-e2e-approval"

    output = stack.prefect("deployment", "run", "respond/respond", "--param", f"playbook={json.dumps(str(path))}",
                           "--param", f"accounts={json.dumps([p.uid for p in suspects])}",
                           "--param", "dry_run=false", "--param", f"incident={incident}")
    run_id = _run_id(output)
    end = time.monotonic() + 90
    while stack.http.get(f"{stack.api}/flow_runs/{run_id}").json()["state_type"] != "PAUSED":
        assert time.monotonic() < end, f"the run never paused: {stack.logs(run_id)}"
        time.sleep(0.5)
    assert bind_result(slapd, suspects[0].dn, suspects[0].password) == "success", "nothing changes while paused"

    paused = stack.http.get(f"{stack.api}/flow_runs/{run_id}").json()
    assert paused["name"] == f"{incident}-contain"
    assert paused["state"]["message"].startswith("Approval needed: step scramble would change 2 accounts")
    approve = subprocess.run([str(Path(sys.executable).parent / "tourniquet"), "approve", paused["name"],
                              "--approver", "Dr Laurent", "--comment", "confirmed with the ARS"],
                             env=stack.env, capture_output=True, text=True, timeout=60)
    assert approve.returncode == 0, approve.stderr
    run = stack.wait_for_run(run_id)

    assert run["state_type"] == "COMPLETED", stack.logs(run_id)
    for person in suspects:
        assert bind_result(slapd, person.dn, person.password) == "invalidCredentials"
    journal = stack.folder / "evidence" / incident / "journal.jsonl"
    decisions = [json.loads(line) for line in journal.read_text().splitlines() if '"approval"' in line]
    assert [(d["status"], d.get("approver", "")) for d in decisions] == [("requested", ""), ("approved", "Dr Laurent")]


def test_a_served_responder_contains_an_account_without_a_worker(
    stack: Stack, slapd: Slapd, practitioners: Directory
) -> None:
    """``python -m tourniquet.flows.serve`` (the quicker start for a small incident): its ``respond/served``
    deployment runs in the serving process's own child, from the flow already in memory."""
    suspect = practitioners.practitioners[37]
    incident = "inc-e2e-served"
    served = _start([sys.executable, "-m", "tourniquet.flows.serve"], stack.env, stack.folder / "served.log")
    try:
        end = time.monotonic() + 60
        while not any(d["name"] == "served" for d in stack.post("/deployments/filter", {})):
            assert served.poll() is None, (stack.folder / "served.log").read_text()[-3000:]
            assert time.monotonic() < end, "the served deployments never appeared"
            time.sleep(0.5)
        output = stack.prefect("deployment", "run", "respond/served", "--param", f'accounts=["{suspect.uid}"]',
                               "--param", "dry_run=false", "--param", f"incident={incident}")
        run = stack.wait_for_run(_run_id(output))
    finally:
        _stop(served)

    assert run["state_type"] == "COMPLETED", stack.logs(run["id"]) + (stack.folder / "served.log").read_text()[-3000:]
    assert run["name"] == f"{incident}-contain"
    assert bind_result(slapd, suspect.dn, suspect.password) == "invalidCredentials"
