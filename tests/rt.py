"""A throwaway Request Tracker 5 for tests: Debian's packages, a private SQLite copy, loopback only.

``bin/setup.d/request-tracker.sh`` installs RT; its packaged database is the template.
Each test session copies it, sets the root password and creates the ``IncidentKey``
custom field with a short Perl script against RT's own libraries, then runs
``rt-server`` (Standalone) on a free loopback port with ``RT_SITE_CONFIG`` pointing at a
private site configuration. Stopped (and restartable, for outage tests) on demand.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

RT_SERVER = Path("/usr/share/request-tracker5/libexec/rt-server")
RT_LIB = Path("/usr/share/request-tracker5/lib")
TEMPLATE_DB = Path("/var/lib/dbconfig-common/sqlite3/request-tracker5/rtdb")
FIELD = "IncidentKey"

_PREPARE = r"""
use strict; use warnings;
use RT; RT::LoadConfig(); RT::Init();
my $user = RT::User->new(RT->SystemUser); $user->Load('root');
my ($ok, $msg) = $user->SetPassword($ENV{RT_TEST_PASSWORD}); die "password: $msg" unless $ok;
my $cf = RT::CustomField->new(RT->SystemUser);
$cf->LoadByName(Name => $ENV{RT_TEST_FIELD}, LookupType => 'RT::Queue-RT::Ticket');
unless ($cf->id) {
  ($ok, $msg) = $cf->Create(Name => $ENV{RT_TEST_FIELD}, Type => 'FreeformSingle',
                            LookupType => 'RT::Queue-RT::Ticket', Description => 'Tourniquet incident key');
  die "custom field: $msg" unless $ok;
  ($ok, $msg) = $cf->AddToObject(RT::Queue->new(RT->SystemUser)); die "apply: $msg" unless $ok;
}
print "ready\n";
"""


def require_rt() -> None:
    """Skip locally when RT is not installed; fail in CI, which must never pass by skipping."""
    missing = [str(p) for p in (RT_SERVER, TEMPLATE_DB) if not p.exists()]
    if missing:
        message = f"Request Tracker missing ({', '.join(missing)}): run bin/setup.d/request-tracker.sh"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must not skip the Request Tracker tests)")
        pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RtServer:
    """One private RT: ``prepare()`` once, then ``start()`` / ``stop()`` as often as a test needs."""

    def __init__(self, folder: Path, password: str = "rt-test-root-password") -> None:
        self.folder = folder
        self.password = password
        self.port = free_port()
        self.database = folder / "rtdb"
        self.config = folder / "RT_SiteConfig.pm"
        self.config_dir = folder / "RT_SiteConfig.d"
        self.log = folder / "rt-server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/rt"

    def _env(self) -> dict[str, str]:
        return {**os.environ, "RT_SITE_CONFIG": str(self.config), "RT_SITE_CONFIG_DIR": str(self.config_dir),
                "RT_TEST_PASSWORD": self.password, "RT_TEST_FIELD": FIELD}

    def prepare(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config_dir.mkdir(exist_ok=True)  # empty: nothing from /etc/request-tracker5 leaks in
        shutil.copyfile(TEMPLATE_DB, self.database)
        self.config.write_text(
            "Set($rtname, 'tourniquet-test');\n"
            "Set($Organization, 'tourniquet.test');\n"
            "Set($DatabaseType, 'SQLite');\n"
            f"Set($DatabaseName, '{self.database}');\n"
            "Set($WebPath, '/rt');\n"
            "Set($WebDomain, '127.0.0.1');\n"
            f"Set($WebPort, {self.port});\n"
            f"Set($WebBaseURL, 'http://127.0.0.1:{self.port}');\n"
            "Set($LogToSTDERR, 'error');\n"
            "Set($LogToSyslog, undef);\n"
            "Set($LogToFile, undef);\n"
            "Set($Timezone, 'UTC');\n"
            "1;\n",
            encoding="utf-8",
        )
        result = subprocess.run(["perl", f"-I{RT_LIB}", "-e", _PREPARE], env=self._env(), capture_output=True,
                                text=True, timeout=120)
        if result.returncode != 0 or "ready" not in result.stdout:
            raise RuntimeError(f"preparing RT failed: {result.stderr[-2000:]}")

    def start(self, deadline: float = 60.0) -> None:
        log = self.log.open("ab")
        self.process = subprocess.Popen(
            [str(RT_SERVER), "--server", "Standalone", "--host", "127.0.0.1", "--port", str(self.port),
             "--webpath", "/rt"],
            env=self._env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        atexit.register(self.stop)  # backstop: never leave an rt-server behind
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"rt-server exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            try:
                response = httpx.get(f"{self.url}/REST/2.0/queues/all", auth=("root", self.password), timeout=2)
                if response.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"rt-server did not answer within {deadline:g}s")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None

    # -- what an RT user would look at

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=f"{self.url}/REST/2.0/", auth=("root", self.password), timeout=10)

    def tickets(self, key: str, *, open_only: bool = False) -> list[dict[str, Any]]:
        query = f"CF.{{{FIELD}}} = '{key}'" + (" AND Status != 'resolved'" if open_only else "")
        with self.client() as client:
            answer = client.get("tickets", params={"query": query, "fields": "Subject,Status", "orderby": "id"})
            answer.raise_for_status()
            return list(answer.json()["items"])

    def texts(self, ticket_id: str | int) -> list[str]:
        """The ticket's messages (creation content, then each comment), oldest first."""
        with self.client() as client:
            answer = client.get(f"ticket/{ticket_id}/attachments",
                                params={"fields": "Content,ContentType,TransactionId", "per_page": 100})
            answer.raise_for_status()
            items = sorted(answer.json()["items"], key=lambda i: int(i["id"]))
            return [str(i.get("Content") or "") for i in items if i.get("ContentType") == "text/plain"]
