"""``bin/demo`` as a newcomer runs it: a clean story, and a directory that stays up when asked.

Scenario: ``tourniquet demo --keep-running`` in its own process (its own demo folder, port and
Prefect home). It tells the containment without a traceback or a wall of warnings, ends
``CONTAINED``, and says how to stop the directory it leaves behind. After the command has exited
the directory still answers (the administrator binds); ``tourniquet demo --stop`` closes it.
And ``bin/setup --demo`` installs only what the demo needs: none of the test suite's servers.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import ldap3
import pytest

from tests.helpers import require_slapd
from tourniquet.demo.slapd import find_free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
TOURNIQUET = str(Path(sys.executable).parent / "tourniquet")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_keep_running_leaves_the_demo_directory_up_until_demo_stop(tmp_path: Path) -> None:
    require_slapd()
    port = find_free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TOURNIQUET_"))},
           "TOURNIQUET_DEMO_STATE": str(tmp_path / "demo"), "TOURNIQUET_DEMO_PORT": str(port),
           "PREFECT_HOME": str(tmp_path / "prefect-home")}
    try:
        done = subprocess.run([TOURNIQUET, "demo", "--keep-running"], env=env, capture_output=True, text=True,
                              timeout=300)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        assert "CONTAINED" in done.stdout and "NOT CONTAINED" not in done.stdout
        assert "Traceback" not in output and "Warning" not in output and "| ERROR" not in output, output
        assert "tourniquet demo --stop" in done.stdout and f"ldap://127.0.0.1:{port}" in done.stdout
        told = done.stdout.split("5. Who was told", 1)[1].split("\nJournal:", 1)[0]
        assert "soc       : [Tourniquet] inc-" in told and ": plan awaiting approval (3 account(s))" in told
        assert ": contained (3/3 account(s))" in told, told
        assert "dpo        -> dpo@sante.example: [Tourniquet] inc-" in told and "périmètre figé" in told
        assert told.count("referents  -> ") == 3 and "@sante.example: [Tourniquet] Compte" not in told, \
            "each practitioner through a referent, never the account's own mailbox"
        assert len(list((tmp_path / "demo" / "notifications").rglob("*.txt"))) == 6

        password = (tmp_path / "demo" / "secrets" / "ldap-admin-password").read_text().strip()
        admin = ldap3.Connection(ldap3.Server(f"ldap://127.0.0.1:{port}", connect_timeout=5),
                                 "cn=admin,dc=sante,dc=example", password, receive_timeout=5)
        assert admin.bind(), "the directory still answers after the demo command exited"
        admin.unbind()
    finally:
        stopped = subprocess.run([TOURNIQUET, "demo", "--stop"], env=env, capture_output=True, text=True, timeout=60)
    assert stopped.returncode == 0 and "demo directory stopped" in stopped.stdout, stopped.stdout + stopped.stderr
    assert not _port_open(port)


def test_setup_for_the_demo_skips_the_test_suites_servers(tmp_path: Path) -> None:
    """bin/setup runs each bin/setup.d/*.sh (RT, LemonLDAP::NG, 389-DS, PostgreSQL) only for the tests.

    On a Debian machine with slapd and ldap-utils installed (bin/test installs them first), so
    that the copy below has nothing to install but what its bin/setup.d/ asks for.
    """
    require_slapd()
    (tmp_path / "bin" / "setup.d").mkdir(parents=True)
    shutil.copy(REPO / "bin" / "setup", tmp_path / "bin" / "setup")
    (tmp_path / "bin" / "setup.d" / "test-server.sh").write_text("touch \"$PWD/test-server-installed\"\n")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").symlink_to(sys.executable)
    for stamp in (".tourniquet-installed", ".tourniquet-installed-test"):  # the Python part is up to date
        (tmp_path / ".venv" / stamp).touch()

    demo = subprocess.run(["bash", "bin/setup", "--demo"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert demo.returncode == 0, demo.stderr
    assert not (tmp_path / "test-server-installed").exists()
    everything = subprocess.run(["bash", "bin/setup"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert everything.returncode == 0, everything.stderr
    assert (tmp_path / "test-server-installed").exists()
