"""Screenshots of the responder's view for the README, from a real Prefect server and a real run.

    bin/screenshots                     # installs Chromium and Playwright if missing, then runs this
    .venv/bin/python scripts/screenshots.py [--out docs]

What it does, all on loopback and in a temporary folder: starts the demo directory (a throwaway
slapd with 50 practitioners and the access log), ``prefect server start``, deploys
``prefect.yaml`` (``prefect --no-prompt deploy --all``) and starts a process worker; runs the
``respond`` deployment twice for the demo's three accounts (a plan only, then a containment), then
once more as an alert does: it plans and waits, suspended, on the approval; headless Chromium (Debian's,
driven by Playwright) photographs the runs list, the run form, the containment's run page and its
report artifact, the approval form showing the plan and its SHA-256, and — once ``tourniquet approve``
has answered it and the same run has applied the plan — the incident's story artifact. Everything it
started is stopped at the end.
Not part of the test suite (it takes a minute and needs Chromium).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
#: The flags that work on a machine without a display or Internet access (see the set-up notes).
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1360, "height": 860}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def started(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A background process in its own session, stopped (its whole group) on the way out."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_until(what: str, check: Any, deadline: float = 120) -> Any:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            value = check()
            if value:
                return value
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"screenshots: gave up waiting for {what}")


def run_deployment(api: str, deployment_id: str, parameters: dict[str, Any]) -> dict[str, Any]:
    for attempt in range(5):  # a SQLite-backed server answers 503 while its database is busy
        response = httpx.post(f"{api}/deployments/{deployment_id}/create_flow_run",
                              json={"parameters": parameters}, timeout=30)
        if response.status_code != 503:
            break
        time.sleep(2 + attempt)
    response.raise_for_status()
    run_id = response.json()["id"]

    def finished() -> dict[str, Any] | None:
        run = httpx.get(f"{api}/flow_runs/{run_id}", timeout=10).json()
        return run if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None

    run = wait_until(f"flow run {run_id}", finished, deadline=300)
    print(f"screenshots: run {run['name']}: {run['state_name']} {run['state'].get('message') or ''}")
    return dict(run)


def shrink(path: Path, colours: int = 96) -> None:
    """A UI screenshot needs few colours: a palette PNG is a fifth of the size (when Pillow is there)."""
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(path) as image:
        image.convert("RGB").quantize(colors=colours, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def photograph(ui: str, shots: list[tuple[str, str, str, Any]], out: Path) -> None:
    """Each (file name, UI path, text to wait for, what to do on the page first) as a PNG of the page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        browser = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS, viewport=VIEWPORT,
            color_scheme="light")
        try:
            page = browser.new_page()
            for name, path, text, prepare in shots:
                page.goto(f"{ui}{path}", wait_until="networkidle")
                page.get_by_text(text, exact=False).first.wait_for(timeout=30_000)
                if prepare is not None:
                    prepare(page)
                time.sleep(1.5)  # let the page settle (charts, lazy panels)
                page.screenshot(path=str(out / name))
                shrink(out / name)
                print(f"screenshots: {out / name} ({(out / name).stat().st_size // 1024} KB)")
        finally:
            browser.close()


def fill_form(accounts: str, reason: str) -> Any:
    """Type the accounts as a responder pastes them (one block of text) and untick dry_run."""
    def prepare(page: Any) -> None:
        fields = page.locator("textarea")
        fields.nth(0).fill(accounts)
        fields.nth(0).evaluate("element => { element.style.height = '92px' }")  # as a person drags it open
        fields.nth(1).fill(reason)
        page.get_by_text("accounts", exact=True).first.scroll_into_view_if_needed()
    return prepare


def scroll_to(text: str) -> Any:
    def prepare(page: Any) -> None:
        target = page.get_by_text(text, exact=False).first
        target.scroll_into_view_if_needed()
        target.evaluate("element => element.scrollIntoView({block: 'start'})")
    return prepare


def open_logs_at(text: str) -> Any:
    def prepare(page: Any) -> None:
        page.get_by_text(text, exact=False).first.wait_for(timeout=30_000)
        page.get_by_text(text, exact=False).first.evaluate("element => element.scrollIntoView({block: 'center'})")
    return prepare


def open_approval(page: Any) -> None:
    """The paused run's Resume button opens the approval form, the plan above it."""
    page.get_by_role("button", name="Resume").first.click()
    page.get_by_text("Approve this plan", exact=False).first.wait_for(timeout=30_000)


def wait_paused(api: str, run_id: str) -> dict[str, Any]:
    def paused() -> dict[str, Any] | None:
        run = httpx.get(f"{api}/flow_runs/{run_id}", timeout=10).json()
        return run if run["state_type"] == "PAUSED" else None

    return dict(wait_until(f"flow run {run_id} to wait for its approval", paused, deadline=300))


def plan_and_approve(api: str, ui: str, env: dict[str, str], deployment_id: str, accounts: str,
                     out: Path) -> None:
    """An alert's run: the approval form with the plan, then (approved) the story artifact."""
    response = httpx.post(f"{api}/deployments/{deployment_id}/create_flow_run", timeout=30,
                          json={"parameters": {"accounts": accounts, "reason": "alert.siem.118: scraping",
                                               "incident": "inc-demo-approval"}})
    response.raise_for_status()
    run = wait_paused(api, response.json()["id"])
    photograph(ui, [("ui-approval.png", f"/runs/flow-run/{run['id']}", run["name"], open_approval)], out)
    subprocess.run([str(BIN / "tourniquet"), "approve", "inc-demo-approval", "--approver", "Dr Martin (on call)",
                    "--comment", "confirmed with the ARS"], env=env, cwd=REPO, check=True)

    def finished() -> dict[str, Any] | None:
        current = httpx.get(f"{api}/flow_runs/{run['id']}", timeout=10).json()
        return current if current["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None

    done = wait_until("the approved plan to be applied", finished, deadline=300)
    print(f"screenshots: run {done['name']}: {done['state_name']}")
    photograph(ui, [("ui-story.png", "/artifacts/key/tourniquet-inc-demo-approval-story", "inc-demo-approval",
                     None)], out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "docs"), help="where the PNGs go (default: docs/)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="tourniquet-screenshots-"))
    port = free_port()
    api, ui = f"http://127.0.0.1:{port}/api", f"http://127.0.0.1:{port}"
    os.environ.update({"TOURNIQUET_DEMO_STATE": str(folder / "demo"), "TOURNIQUET_DEMO_PORT": str(free_port()),
                       "TOURNIQUET_LOG_LEVEL": "WARNING"})

    from tourniquet.demo.run import COMPROMISED, DEMO_SITE, start_demo_directory

    server, practitioners = start_demo_directory()
    chosen = [practitioners[i] for i in COMPROMISED]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
           "PREFECT_HOME": str(folder / "prefect-home"), "PREFECT_API_URL": api, "PREFECT_UI_API_URL": api,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "PREFECT_WORKER_QUERY_SECONDS": "1",
           "TOURNIQUET_HOME": str(REPO), "TOURNIQUET_SITE": str(DEMO_SITE)}
    try:
        with started([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)], env,
                     folder / "server.log"):
            wait_until("the Prefect server", lambda: httpx.get(f"{api}/health", timeout=2).status_code == 200)
            for command in (["work-pool", "create", "tourniquet", "--type", "process"], ["--no-prompt", "deploy", "--all"]):
                subprocess.run([str(BIN / "prefect"), *command], env=env, cwd=REPO, check=True, capture_output=True)
            deployments = httpx.post(f"{api}/deployments/filter", json={}, timeout=10).json()
            respond = next(d for d in deployments if d["name"] == "respond")
            with started([str(BIN / "prefect"), "worker", "start", "--pool", "tourniquet"], env, folder / "worker.log"):
                pasted = f"{chosen[0].uid}\n{chosen[1].rpps}\n{chosen[2].mail}"
                reason = "ARS alert 2026-118: patient identities scraped overnight"
                run_deployment(api, respond["id"], {"accounts": pasted, "reason": reason, "dry_run": True,
                                                    "wait_for_approval": False})
                run = run_deployment(api, respond["id"], {"accounts": pasted, "reason": reason, "dry_run": False})
                others = [practitioners[i] for i in range(len(practitioners)) if i not in COMPROMISED][:2]
                plan_and_approve(api, ui, env, respond["id"], f"{others[0].rpps}\n{others[1].uid}", out)
            artifacts = httpx.post(f"{api}/artifacts/filter", timeout=10,
                                   json={"artifacts": {"flow_run_id": {"any_": [run["id"]]}}}).json()
            report = next(a for a in artifacts if (a.get("key") or "").endswith("-report"))
            photograph(ui, [
                ("ui-runs.png", "/runs", run["name"], scroll_to("runs")),
                ("ui-form.png", f"/deployments/deployment/{respond['id']}/run", "accounts", fill_form(pasted, reason)),
                ("ui-run.png", f"/runs/flow-run/{run['id']}", run["name"], None),
                ("ui-run-logs.png", f"/runs/flow-run/{run['id']}", run["name"], open_logs_at("change.applied")),
                ("ui-report.png", f"/artifacts/artifact/{report['id']}", "Changes", scroll_to("Changes")),
            ], out)
            print(json.dumps({"run": run["name"], "report": report["key"]}))
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
