"""A throwaway OpenLDAP ``slapd`` on loopback, for the demo and the tests.

In the manner of python-ldap's ``slapdtest``: a run directory per server, cn=config
built with ``slapadd -n0``, data loaded with ``slapadd`` before start (fast), a free
port, a readiness poll with a deadline that fails at once if the process exits, and
stop + cleanup (the directory kept on request so its log can be read). ``atexit`` stops it as a
backstop, unless it was started ``detached`` (``tourniquet demo --keep-running``): then it runs
in its own session until :func:`stop_pid_file` (``tourniquet demo --stop``) or a ``kill``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["Slapd", "SlapdError", "find_free_port", "stop_pid_file", "SLAPD_BINARIES"]

SLAPD_BINARIES = ("/usr/sbin/slapd", "/usr/sbin/slapadd")
SCHEMAS = ("core", "cosine", "nis", "inetorgperson")


class SlapdError(RuntimeError):
    """slapd could not be configured or started; the message carries its output."""


def find_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Slapd:
    """One slapd with an mdb database, ppolicy (default policy with pwdLockout) and memberof."""

    def __init__(
        self,
        suffix: str = "dc=sante,dc=example",
        root_password: str = "rootsecret",
        *,
        directory: str | os.PathLike[str] | None = None,
        port: int | None = None,
        size_limit: int = 500,
        tls: tuple[str, str, str] | None = None,
    ) -> None:
        self.suffix = suffix
        self.root_dn = f"cn=admin,{suffix}"
        self.root_password = root_password
        self.port = port or find_free_port()
        self.size_limit = size_limit
        self.tls = tls  # (ca_file, cert_file, key_file): also listens for ldaps:// on ldaps_port
        self.ldaps_port = find_free_port() if tls else None
        self._own_dir = directory is None
        self.path = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="tourniquet-slapd-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.policy_dn = f"cn=default,ou=policies,{suffix}"

    @property
    def pid_file(self) -> Path:
        return self.path / "slapd.pid"

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str | None:
        return f"ldaps://127.0.0.1:{self.ldaps_port}" if self.ldaps_port else None

    # -- set-up

    def config_ldif(self) -> str:
        schema = "\n".join(f"include: file:///etc/ldap/schema/{name}.ldif" for name in SCHEMAS)
        data = self.path / "data"
        tls = ""
        if self.tls:
            ca, cert, key = self.tls
            tls = (f"olcTLSCACertificateFile: {ca}\nolcTLSCertificateFile: {cert}\n"
                   f"olcTLSCertificateKeyFile: {key}\nolcTLSProtocolMin: 3.3\n")
        return f"""dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {self.path}/slapd.pid
olcArgsFile: {self.path}/slapd.args
{tls}
dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: ppolicy
olcModuleLoad: memberof

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

{schema}

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend
olcSizeLimit: size.soft={self.size_limit} size.hard={self.size_limit} size.prtotal=unlimited

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcRootDN: cn=config
olcRootPW: {self.root_password}

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {self.suffix}
olcRootDN: {self.root_dn}
olcRootPW: {self.root_password}
olcDbDirectory: {data}
olcDbIndex: objectClass eq
olcDbIndex: uid eq
olcDbIndex: employeeNumber eq
olcDbIndex: mail eq
olcDbNoSync: TRUE
olcDbMaxSize: 8589934592
olcSizeLimit: size.soft={self.size_limit} size.hard={self.size_limit} size.prtotal=unlimited
olcAccess: to attrs=userPassword by self write by anonymous auth by * none
olcAccess: to * by self read by users read by * none

dn: olcOverlay={{0}}memberof,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {{0}}memberof
olcMemberOfRefInt: TRUE

dn: olcOverlay={{1}}ppolicy,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {{1}}ppolicy
olcPPolicyDefault: {self.policy_dn}
olcPPolicyUseLockout: TRUE
"""

    def configure(self, data_ldif: str | os.PathLike[str] | None = None) -> None:
        """Write cn=config and (optionally) load the data, both with slapadd."""
        for binary in SLAPD_BINARIES:
            if not Path(binary).exists():
                raise SlapdError(f"{binary} is missing: install the Debian packages slapd and ldap-utils")
        (self.path / "slapd.d").mkdir(parents=True, exist_ok=True)
        (self.path / "data").mkdir(parents=True, exist_ok=True)
        config = self.path / "config.ldif"
        config.write_text(self.config_ldif(), encoding="utf-8")
        self._run(["/usr/sbin/slapadd", "-n0", "-F", str(self.path / "slapd.d"), "-l", str(config)])
        if data_ldif is not None:
            self._run(["/usr/sbin/slapadd", "-q", "-n1", "-F", str(self.path / "slapd.d"), "-l", str(data_ldif)])

    def _run(self, command: list[str]) -> None:
        result = subprocess.run(command, capture_output=True, text=True, timeout=3600)
        if result.returncode != 0:
            raise SlapdError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}")

    # -- life cycle

    def start(self, timeout: float = 10.0, *, detached: bool = False) -> None:
        """Start and wait until it answers; ``detached``: its own session, left running at exit."""
        urls = self.url + "/" + (f" {self.ldaps_url}/" if self.ldaps_url else "")
        with (self.path / "slapd.log").open("ab") as log:
            self.process = subprocess.Popen(
                ["/usr/sbin/slapd", "-h", urls, "-F", str(self.path / "slapd.d"), "-d", "0"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=detached,
            )
        if not detached:
            atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SlapdError(f"slapd exited with {self.process.returncode}: {self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise SlapdError(f"slapd did not answer on port {self.port} within {timeout}s: {self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def detach(self) -> int:
        """Leave it running after this process exits (no ``atexit`` stop); returns its pid."""
        atexit.unregister(self.stop)
        pid = self.process.pid if self.process is not None else 0
        self.process = None
        return pid

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.path, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        path = self.path / "slapd.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> "Slapd":
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def stop_pid_file(pid_file: Path, timeout: float = 10.0) -> int | None:
    """Stop the slapd whose pid ``pid_file`` holds (one left running earlier); its pid, or None if none ran."""
    try:
        pid = int(pid_file.read_text().split()[0])
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    if b"slapd" not in command or str(pid_file.parent).encode() not in command:
        return None  # the pid was reused by another program: not ours to stop
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    return pid


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it has stopped serving)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
