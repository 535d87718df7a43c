"""What a responder sees in the terminal: one clear line for an expected failure, a progress bar on a terminal.

Scenario: ``tourniquet run`` as a person (or a script) types it, in its own process with its own
temporary Prefect server. A mistyped uid beside a real one ends the run with exit code 4 (partial) and
one ``PARTIAL:`` line naming it — no traceback anywhere, every event printed once, no progress bar in a pipe. On a
terminal the same command shows a progress bar moving through the steps, and with
``TOURNIQUET_LOG_LEVEL=WARNING`` none of the run's info events; its summary says how long the
temporary server took to start.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import write_site
from tests.helpers import LdapAdmin
from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import Slapd

pytestmark = pytest.mark.slow

TOURNIQUET = str(Path(sys.executable).parent / "tourniquet")


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One Prefect home for the module's commands: its database is created once."""
    return tmp_path_factory.mktemp("prefect-home")


@pytest.fixture(autouse=True)
def _directory_put_back(ldap_admin: LdapAdmin, practitioners: Directory) -> Iterator[None]:
    """These runs contain real accounts of the session's directory: put them back for the next tests."""
    yield
    ldap_admin.reset_all(practitioners)


def _env(home: Path, **extra: str) -> dict[str, str]:
    """No Prefect server given: the command starts a temporary one, in a Prefect home of the tests'."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TOURNIQUET_"))}
    return {**env, "PREFECT_HOME": str(home), "COLUMNS": "120", **extra}


def test_an_unknown_uid_beside_a_known_one_ends_partial_with_one_clear_line_and_no_traceback(
    tmp_path: Path, prefect_home: Path, slapd: Slapd, practitioners: Directory
) -> None:
    site = write_site(tmp_path, slapd, practitioners)
    known = practitioners.practitioners[40].uid

    done = subprocess.run([TOURNIQUET, "run", "credential-misuse", "--site", str(site),
                           "-i", f"accounts=nosuchuser-4242,{known}"],
                          env=_env(prefect_home, TOURNIQUET_LOG_LEVEL="INFO"), capture_output=True, text=True,
                          timeout=300)

    output = done.stdout + done.stderr
    assert done.returncode == 4, output
    assert "Traceback" not in output, output
    last = done.stderr.strip().splitlines()[-1]
    assert last == "PARTIAL: 1 of 2 contained; refused: nosuchuser-4242 (no such account)", done.stderr
    assert f"  contained: {known}\n" in done.stdout, "the contained account is named, on a line of its own"
    assert output.count("run.started") == 1, "each event once: not repeated by Prefect's console"
    assert "━" not in output, "no progress bar when stderr is not a terminal"


def _run_on_a_terminal(command: list[str], env: dict[str, str], timeout: float = 300) -> tuple[int, str]:
    """Run ``command`` with a pseudo-terminal as stdin, stdout and stderr; return its code and output."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(command, stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True)
    os.close(follower)
    chunks: list[bytes] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the terminal closed: the command exited
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    os.close(leader)
    code = process.wait(timeout=30)
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_on_a_terminal_a_progress_bar_follows_the_steps_and_the_level_is_honoured(
    tmp_path: Path, prefect_home: Path, slapd: Slapd, practitioners: Directory
) -> None:
    site = write_site(tmp_path, slapd, practitioners)
    suspect = practitioners.practitioners[41]

    code, output = _run_on_a_terminal(
        [TOURNIQUET, "run", "credential-misuse", "--site", str(site), "-i", f"accounts={suspect.uid}", "--dry-run"],
        _env(prefect_home, TOURNIQUET_LOG_LEVEL="WARNING"))

    assert code == 0, output
    assert "━" in output and "100%" in output, output[-2000:]
    assert "plan credential-misuse: starting a temporary Prefect server" in output  # drawn when the bar starts
    assert "plan credential-misuse: 1 of 1 accounts planned" in output  # the headline, when it stops (steps in between: as fast as they go)
    assert "PLAN (dry run, nothing changed): credential-misuse incident" in output
    assert re.search(r"prefect: a temporary server, started in \d+\.\d s \(`tourniquet server start` keeps one", output)
    assert "run.started" not in output and "change.planned" not in output, "info events are not printed at WARNING"
    assert "Traceback" not in output
