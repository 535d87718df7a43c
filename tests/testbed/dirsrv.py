"""A throwaway 389 Directory Server instance on loopback, without systemd (for the 389-DS flavor tests).

Follows the recipe in the shared systems reference: a private install tree (``PREFIX``) with its own
``defaults.inf`` (paths moved under it, ``with_systemd = 0``), ``dscreate from-file``, then ``ns-slapd -d 0``
in the foreground; SIGTERM stops it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tourniquet.demo.slapd import find_free_port

__all__ = ["DirSrv", "DirSrvError", "DIRSRV_BINARIES"]

DIRSRV_BINARIES = ("/usr/sbin/ns-slapd", "/usr/sbin/dscreate")
SYSTEM_DEFAULTS = Path("/usr/share/dirsrv/inf/defaults.inf")
#: defaults.inf keys whose paths move into the private tree.
MOVED = ("data_dir", "tmp_dir", "sysconf_dir", "initconfig_dir", "config_dir", "local_state_dir", "run_dir", "ldapi",
         "pid_file", "inst_dir", "system_schema_dir", "tmpfiles_d", "schema_dir", "cert_dir", "lock_dir", "log_dir",
         "access_log", "audit_log", "error_log", "security_log", "db_dir", "db_home_dir", "backup_dir", "ldif_dir")
PREFIXES = (("/usr/lib/x86_64-linux-gnu/dirsrv", "/lib/dirsrv"), ("/usr/share", "/share"), ("/dev/shm", "/dev/shm"),
            ("/etc", "/etc"), ("/var", "/var"), ("/run", "/run"), ("/tmp", "/tmp"))


class DirSrvError(RuntimeError):
    """The instance could not be created or started; the message carries its output."""


class DirSrv:
    def __init__(self, suffix: str = "dc=sante,dc=example", root_password: str = "dirsrv-root-secret",
                 name: str = "tq") -> None:
        self.suffix = suffix
        self.root_dn = "cn=Directory Manager"
        self.root_password = root_password
        self.name = name
        self.port = find_free_port()
        self.root = Path(tempfile.mkdtemp(prefix="tourniquet-dirsrv-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def instance_dir(self) -> Path:
        return self.root / "etc" / "dirsrv" / f"slapd-{self.name}"

    def _tree(self) -> None:
        r = self.root
        shutil.copytree("/usr/share/dirsrv", r / "share" / "dirsrv")
        (r / "etc" / "dirsrv").mkdir(parents=True)
        for part in ("config", "schema"):
            if Path(f"/etc/dirsrv/{part}").exists():
                shutil.copytree(f"/etc/dirsrv/{part}", r / "etc" / "dirsrv" / part)
        for sub in ("tmp", "run/dirsrv", "run/lock/dirsrv", "var/log/dirsrv", "var/lib/dirsrv", "lib/dirsrv",
                    "dev/shm", "etc/default", "etc/tmpfiles.d", "etc/systemd/system"):
            (r / sub).mkdir(parents=True, exist_ok=True)
        lines = []
        for line in SYSTEM_DEFAULTS.read_text().splitlines():
            match = re.match(r"^(\w+)\s*=\s*(.*)$", line)
            if match and match.group(1) in MOVED:
                value = match.group(2)
                for old, new in PREFIXES:
                    if value.startswith(old):
                        value = str(r) + new + value[len(old):]
                        break
                line = f"{match.group(1)} = {value}"
            elif match and match.group(1) == "with_systemd":
                line = "with_systemd = 0"
            elif match and match.group(1) == "with_selinux":
                line = "with_selinux = no"
            lines.append(line)
        (r / "share" / "dirsrv" / "inf" / "defaults.inf").write_text("\n".join(lines) + "\n")
        for template in (r / "share" / "dirsrv" / "data").glob("template-dse*.ldif"):
            text = template.read_text()
            if "nsslapd-listenhost" not in text:
                text = text.replace("nsslapd-port: %ds_port%", "nsslapd-port: %ds_port%\nnsslapd-listenhost: 127.0.0.1", 1)
            template.write_text(text)

    def create(self) -> None:
        for binary in DIRSRV_BINARIES:
            if not Path(binary).exists():
                raise DirSrvError(f"{binary} is missing: apt-get install 389-ds-base (bin/setup.d/directory.sh)")
        self._tree()
        inf = self.root / "inst.inf"
        inf.write_text(f"""[general]
config_version = 2
start = False
systemd = False
selinux = False
full_machine_name = localhost
[slapd]
instance_name = {self.name}
port = {self.port}
secure_port = {find_free_port()}
self_sign_cert = False
root_password = {self.root_password}
db_lib = mdb
user = root
group = root
[backend-userroot]
suffix = {self.suffix}
create_suffix_entry = True
""")
        env = {**os.environ, "PREFIX": str(self.root)}
        result = subprocess.run(["/usr/sbin/dscreate", "from-file", str(inf)], capture_output=True, text=True,
                                env=env, timeout=180)
        if result.returncode != 0:
            raise DirSrvError(f"dscreate failed ({result.returncode}): {result.stdout[-2000:]} {result.stderr[-2000:]}")

    def start(self, timeout: float = 30.0) -> None:
        log = (self.root / "ns-slapd.log").open("ab")
        pid = self.root / "run" / "dirsrv" / f"slapd-{self.name}.pid"
        self.process = subprocess.Popen(["/usr/sbin/ns-slapd", "-D", str(self.instance_dir), "-i", str(pid), "-d", "0"],
                                        stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DirSrvError(f"ns-slapd exited with {self.process.returncode}: {self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise DirSrvError(f"ns-slapd did not answer on {self.port} within {timeout}s: {self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        texts = []
        for path in (self.root / "ns-slapd.log", self.root / "var" / "log" / "dirsrv" / f"slapd-{self.name}" / "errors"):
            if path.exists():
                texts.append("\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(texts)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
