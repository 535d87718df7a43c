"""A throwaway LemonLDAP::NG 2.16 portal for tests (Debian 12 packages, no web server).

Recipe from the shared reference (systems.md): copy the packaged ``lemonldap-ng.ini`` and
``lmConf-1.json`` into a temporary folder (File configuration and File sessions then live
there), point ``portal`` at the test port, turn off the login form token and the
handler's in-memory session cache, and run the portal PSGI app with ``plackup``. Demo
authentication: users dwho, rtyler, msmith, password = login. The cookie domain is
``.example.com``, so requests carry ``Host: auth.example.com:<port>``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

SESSIONS_TOOL = Path("/usr/share/lemonldap-ng/bin/lemonldap-ng-sessions")
PORTAL_APP = Path("/usr/share/lemonldap-ng/portal/htdocs/index.psgi")
PACKAGED_INI = Path("/etc/lemonldap-ng/lemonldap-ng.ini")
PACKAGED_CONF = Path("/var/lib/lemonldap-ng/conf/lmConf-1.json")
PACKAGED_ROOT = "/var/lib/lemonldap-ng"
REQUIRED = (SESSIONS_TOOL, PORTAL_APP, PACKAGED_INI, PACKAGED_CONF)


def missing() -> list[str]:
    found = [str(p) for p in REQUIRED if not p.exists()]
    if shutil.which("plackup") is None:
        found.append("plackup")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LemonLdapPortal:
    """Start, log users in, stop. The folder is kept when start fails, so its portal.log can be read."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="tourniquet-llng-"))
        self.port = _free_port()
        self.ini = self.folder / "lemonldap-ng.ini"
        self.process: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10,
                                 headers={"Host": f"auth.example.com:{self.port}", "Accept": "application/json"})

    def configure(self) -> None:
        for sub in ("conf", "sessions/lock", "psessions/lock", "cache", "notifications", "captcha"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        self.ini.write_text(PACKAGED_INI.read_text().replace(PACKAGED_ROOT, str(self.folder)))
        conf = json.loads(PACKAGED_CONF.read_text().replace(PACKAGED_ROOT, str(self.folder)))
        conf.update({"portal": f"http://auth.example.com:{self.port}/", "handlerInternalCache": 0, "requireToken": 0})
        (self.folder / "conf" / "lmConf-1.json").write_text(json.dumps(conf, indent=1))

    def start(self, deadline: float = 30.0) -> None:
        self.configure()
        log = (self.folder / "portal.log").open("wb")
        self.process = subprocess.Popen(
            ["plackup", "-s", "HTTP::Server::PSGI", "--host", "127.0.0.1", "--port", str(self.port), str(PORTAL_APP)],
            env={**os.environ, "LLNG_DEFAULTCONFFILE": str(self.ini)}, stdout=log, stderr=subprocess.STDOUT,
            cwd=self.folder,
        )
        until = time.monotonic() + deadline
        while time.monotonic() < until:
            if self.process.poll() is not None:
                raise RuntimeError(f"the portal exited ({self.process.returncode}); see {self.folder}/portal.log")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the portal did not listen within {deadline:g}s; see {self.folder}/portal.log")

    def login(self, user: str) -> str:
        """Log ``user`` in (demo password = login); return the SSO session id (the lemonldap cookie)."""
        answer = self.http.post("/", data={"user": user, "password": user}).json()
        assert answer.get("result") == 1, answer
        return str(answer["id"])

    def accepts(self, session: str) -> bool:
        """Does the portal still consider this session logged in?"""
        response = self.http.get("/", headers={"Cookie": f"lemonldap={session}"})
        return response.status_code == 200 and response.json().get("result") == 1

    def stop(self) -> None:
        self.http.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
