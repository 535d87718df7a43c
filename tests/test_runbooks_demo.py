"""The runbooks "An alert arrived" and "A practitioner calls", followed literally on the demo directory.

Scenario: the demo directory (a real slapd with the demo's 50 practitioners and its access log) is started, then
each shell block of docs/runbooks/alert-arrived.md, then of practitioner-calls.md, is run by bash in a terminal,
in page order, exactly as written, but for what a responder fills in for their own site: ``TOURNIQUET_SITE`` (the
demo site), ``EVIDENCE_DIR`` (the demo's) and ``INCIDENT`` (the id the plan printed, as the runbook says to keep
it). The plan printed in step 2 is approved and applied with ``tourniquet apply`` in step 3 (the terminal's
path). A block the page marks ``<!-- demo: skip … -->`` (approving a run suspended in Prefect, re-planning after a
drift: neither happens on the demo) is not run. Afterwards: the three accounts' own passwords no longer bind, the
plan's approval is in the incident's story, the evidence verifies, and the one-time
password ``recover`` showed opens the practitioner's account again.
"""

from __future__ import annotations

import os
import re
import select
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import require_slapd
from tourniquet.demo.slapd import find_free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
RUNBOOKS = REPO / "docs" / "runbooks"
BIN = str(Path(sys.executable).parent)
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
                   re.MULTILINE | re.DOTALL)
ASSIGNMENT = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=")


def runnable_blocks(page: Path) -> Iterator[str]:
    """The page's shell blocks in order, dedented, without those marked ``<!-- demo: skip``."""
    text = page.read_text(encoding="utf-8")
    for block in FENCE.finditer(text):
        if block.group("lang") not in ("sh", "bash"):
            continue
        before = [line.strip() for line in text[:block.start()].splitlines() if line.strip()]
        if before and before[-1].startswith("<!-- demo: skip"):
            continue
        indent = len(block.group("indent"))
        yield "\n".join(line[indent:] for line in block.group("body").splitlines())


def in_terminal(script: str, env: dict[str, str], timeout: float = 300) -> tuple[int, str]:
    """Run ``script`` with bash on a pseudo-terminal, as a responder would: (exit code, what it printed)."""
    master, slave = os.openpty()
    process = subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], stdin=slave, stdout=slave, stderr=slave,
                               cwd=REPO, env=env, start_new_session=True)
    os.close(slave)
    output = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # the terminal closed: every process on it has exited
                break
            if not data:
                break
            output += data
        else:
            process.kill()
            raise AssertionError(f"still running after {timeout} s:\n{script}\n{output.decode(errors='replace')}")
    finally:
        os.close(master)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output.decode("utf-8", errors="replace"))
    text = re.sub(r"[^\n]*\r(?!\n)", "", text).replace("\r\n", "\n")  # a bar redrawn in place: its last state
    return process.wait(timeout=30), text


class Responder:
    """Follows runbooks: runs their blocks in order, keeping the variables they set, filling in the site's values."""

    def __init__(self, env: dict[str, str], filled: dict[str, str]) -> None:
        self.env = env
        self.filled = filled
        self.assignments: list[str] = []

    def follow(self, page: Path) -> list[str]:
        outputs = []
        for block in runnable_blocks(page):
            lines = [line for line in block.splitlines()
                     if not ((match := ASSIGNMENT.match(line.strip())) and match.group(1) in self.filled)]
            self.assignments += [line for line in lines if ASSIGNMENT.match(line.strip())]
            prelude = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in self.filled.items())
            script = prelude + "\n".join(self.assignments) + "\n" + "\n".join(lines)
            code, output = in_terminal(script, {**self.env, **self.filled})
            assert code == 0, f"{page.name}: this block failed (exit {code}):\n{block}\n--- output:\n{output}"
            outputs.append(output)
            if "INCIDENT" not in self.filled and (found := re.search(r"\b(inc-[0-9]{8}-[0-9a-f]{8})\b", output)):
                self.filled["INCIDENT"] = found.group(1)
        return outputs


def test_the_alert_and_practitioner_runbooks_work_on_the_demo_directory(tmp_path: Path, monkeypatch) -> None:
    require_slapd()
    from tourniquet.demo.practitioners import generate
    from tourniquet.demo.run import SUFFIX, bind_result, start_demo_directory

    state = tmp_path / "demo"
    monkeypatch.setenv("TOURNIQUET_DEMO_STATE", str(state))
    monkeypatch.setenv("TOURNIQUET_DEMO_PORT", str(find_free_port()))
    monkeypatch.setenv("TOURNIQUET_DEMO_LDAP_URL", "")  # restored afterwards: the demo sets it to its own
    server, _ = start_demo_directory()
    try:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
        env.update(PATH=f"{BIN}:{env.get('PATH', '')}", PREFECT_HOME=str(tmp_path / "prefect-home"), COLUMNS="120",
                   TERM="xterm", PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1",
                   # `tourniquet run` starts a temporary Prefect server: give it time on a loaded machine
                   PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180")
        responder = Responder(env, {"TOURNIQUET_SITE": "sites/demo/tourniquet.yaml",
                                    "EVIDENCE_DIR": str(state / "evidence")})

        alert = responder.follow(RUNBOOKS / "alert-arrived.md")
        incident = responder.filled["INCIDENT"]
        assert "intact" in alert[-1]  # every block exited 0 (bash -e), the evidence verifies
        said = "".join(alert)
        assert re.search(r"APPLY plan [0-9a-f]{64} of incident " + incident + r", approved by Dr Martin, RSSI: completed",
                         said), said  # the plan read in step 2 is the one applied in step 3
        assert "approved plan" in alert[-1] and "dthomas contained" in alert[-1]  # `incidents show` tells it
        practitioners = generate(50, SUFFIX).practitioners
        misused = [p for p in practitioners if p.uid in ("dthomas", "llaurent", "bdubois")]
        assert len(misused) == 3
        for person in misused:
            assert bind_result(server.url, person.dn, person.password) == "invalidCredentials", person.uid

        del responder.filled["INCIDENT"]  # the practitioner's runbook finds it again, from the account
        calls = responder.follow(RUNBOOKS / "practitioner-calls.md")
        assert f"{state / 'evidence' / incident / 'journal.jsonl'}" in "".join(calls)
        assert incident in calls[1]  # step 2: `tourniquet incidents` lists it
        assert responder.filled["INCIDENT"] == incident
        shown = re.search(r"dthomas: ([A-Za-z0-9]{4}(?:-[A-Za-z0-9]{4}){3})", "".join(calls))
        assert shown, calls
        dthomas = next(p for p in misused if p.uid == "dthomas")
        assert bind_result(server.url, dthomas.dn, shown.group(1)) == "success"
        assert bind_result(server.url, dthomas.dn, dthomas.password) == "invalidCredentials"
        assert "intact" in calls[-1]
    finally:
        server.stop()
