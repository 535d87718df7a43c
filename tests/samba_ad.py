"""A throwaway Samba Active Directory domain controller for the AD tests: one per test session, on loopback.

:func:`domain_controller` provisions Samba 4 into a temporary folder (``samba-tool domain provision``,
no DNS, no file server), gives it a certificate from a test CA for ``localhost`` and ``127.0.0.1``
(so every test verifies TLS), starts it in the foreground and seeds it:

- ``OU=Praticiens``: the practitioners (sAMAccountName, UPN, mail, RPPS in ``employeeNumber``), a
  break-glass account, and decoys (a workstation's computer account, a contact sharing a
  practitioner's mail);
- ``OU=Administratif``: a decoy outside the site's ``base_dn`` holding a practitioner's RPPS number;
- ``OU=Groupes``: establishment groups the practitioners are members of;
- ``OU=Services``: ``svc-tourniquet``, the service account a site runs with. It is *not* a Domain
  Admin: it holds exactly the delegated rights containment needs (:data:`DELEGATION`).

Root is needed (the DC binds the fixed ports 389 and 636), so there is one DC per test session,
shared by every ``tests/test_directory_ad_*.py``: each test uses practitioners no other test touches.
Missing Samba (or not being root) skips locally but fails in CI (``CI`` set): CI never passes by
skipping. ``bin/setup.d/samba-ad.sh`` installs Samba.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ldap3
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from ldap3.protocol.formatters.formatters import format_sid

SAMBA_BINARIES = ("/usr/sbin/samba", "/usr/bin/samba-tool", "/usr/bin/kinit", "/usr/bin/kvno")
REALM, DOMAIN = "SANTE.TEST", "SANTE"
BASE = "DC=sante,DC=test"
PEOPLE = f"OU=Praticiens,{BASE}"
OTHERS = f"OU=Administratif,{BASE}"
GROUPS = f"OU=Groupes,{BASE}"
SERVICES = f"OU=Services,{BASE}"
ADMIN_DN = f"CN=Administrator,CN=Users,{BASE}"
ADMIN_PASSWORD = "Adm1n-Passw0rd!"
SERVICE = "svc-tourniquet"
SERVICE_DN = f"CN={SERVICE},{SERVICES}"
SERVICE_PASSWORD = "Svc-Tourn1quet-Secret!"
USER_FILTER = "(&(objectCategory=person)(objectClass=user))"
MAIL_DOMAIN = "chu-test.fr"

#: schemaIDGUIDs and rights GUIDs (MS-ADTS 5.1.3.2.1, MS-ADA1/3): the least the service account needs.
USER_CLASS = "bf967aba-0de6-11d0-a285-00aa003049e2"
GROUP_CLASS = "bf967a9c-0de6-11d0-a285-00aa003049e2"
RESET_PASSWORD = "00299570-246d-11d0-a768-00aa006e0529"  # User-Force-Change-Password (control access)
USER_ACCOUNT_CONTROL = "bf967a68-0de6-11d0-a285-00aa003049e2"
PWD_LAST_SET = "bf967a0a-0de6-11d0-a285-00aa003049e2"
LOCKOUT_TIME = "28630ebf-41d5-11d1-a9c1-0000f80367c1"
MEMBER = "bf9679c0-0de6-11d0-a285-00aa003049e2"
#: (OU, ACE template): inherited by the user objects of the practitioners' OU and the groups of the groups' OU.
DELEGATION = (
    (PEOPLE, f"(OA;CIIO;CR;{RESET_PASSWORD};{USER_CLASS};{{sid}})"),
    (PEOPLE, f"(OA;CIIO;WP;{USER_ACCOUNT_CONTROL};{USER_CLASS};{{sid}})"),
    (PEOPLE, f"(OA;CIIO;WP;{PWD_LAST_SET};{USER_CLASS};{{sid}})"),
    (PEOPLE, f"(OA;CIIO;WP;{LOCKOUT_TIME};{USER_CLASS};{{sid}})"),
    (GROUPS, f"(OA;CIIO;WP;{MEMBER};{GROUP_CLASS};{{sid}})"),
)

#: Attributes every write, login or failed login changes: left out of whole-domain diffs.
VOLATILE = frozenset(a.lower() for a in (
    "whenChanged", "uSNChanged", "dSCorePropagationData", "lastLogon", "lastLogonTimestamp", "logonCount",
    "badPwdCount", "badPasswordTime", "lastLogoff", "msDS-KeyVersionNumber",
))


@dataclass(frozen=True)
class Person:
    sam: str
    given: str
    surname: str
    rpps: str
    password: str
    ou: str = PEOPLE

    @property
    def cn(self) -> str:
        return f"{self.given} {self.surname}"

    @property
    def dn(self) -> str:
        return f"CN={self.cn},{self.ou}"

    @property
    def upn(self) -> str:
        return f"{self.sam}@{REALM.lower()}"

    @property
    def mail(self) -> str:
        return f"{self.given.lower()}.{self.surname.lower()}@{MAIL_DOMAIN}"


_NAMES = [("Jeanne", "Dupont"), ("Bruno", "Martin"), ("Claire", "Petit"), ("David", "Leroy"), ("Emma", "Moreau"),
          ("Farid", "Benali"), ("Gaelle", "Simon"), ("Hugo", "Laurent"), ("Ines", "Michel"), ("Julien", "Garcia"),
          ("Karima", "Roux"), ("Louis", "Fournier"), ("Manon", "Girard"), ("Nathan", "Bonnet"), ("Oceane", "Mercier"),
          ("Paul", "Blanc"), ("Quentin", "Faure"), ("Rose", "Andre"), ("Sami", "Lefevre"), ("Theo", "Guerin")]
PRACTITIONERS = [Person(f"{g[0].lower()}{s.lower()}", g, s, f"1010000{i:04d}", f"Stolen-{s}-{i:02d}!pw")
                 for i, (g, s) in enumerate(_NAMES)]
BREAKGLASS = Person("breakglass-urgences", "Breakglass", "Urgences", "", "Br3ak-Glass-Urgences!")
#: Outside base_dn, holding practitioner 0's RPPS number: an RPPS lookup must never reach it.
OUTSIDE = Person("jdupont-admin", "Jeanne", "Dupont-Admin", PRACTITIONERS[0].rpps, "Adm1n-Side-Jd!", ou=OTHERS)
COMPUTER_DN = f"CN=POSTE-URG-01,{PEOPLE}"
CONTACT_DN = f"CN=Contact Martin,{PEOPLE}"
GROUP_NAMES = ("chu-lille-urgences", "ehpad-les-tilleuls", "vpn-soignants")


def group_dn(name: str) -> str:
    return f"CN={name},{GROUPS}"


def require_samba() -> None:
    """Skip where Samba is missing (or we are not root: ports 389/636), but never in CI."""
    missing = [b for b in SAMBA_BINARIES if not Path(b).exists()]
    problem = f"{', '.join(missing)} missing: bash bin/setup.d/samba-ad.sh" if missing else ""
    if not problem and os.geteuid() != 0:
        problem = "a Samba AD DC needs root (it binds ports 389 and 636)"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem + " (CI must not skip the Active Directory tests)")
        pytest.skip(problem)


# --------------------------------------------------------------------------- the test CA


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(folder: Path, hostname: str) -> tuple[Path, Path, Path]:
    """(CA, certificate, key): a test CA and the DC's certificate for localhost, 127.0.0.1 and its own name."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = (x509.CertificateBuilder().subject_name(_name("Tourniquet test CA")).issuer_name(_name("Tourniquet test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
             x509.DNSName(f"{hostname}.{REALM.lower()}")]
    cert = (x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "dc.pem", folder / "dc.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)  # Samba refuses a key others can read
    return ca_path, cert_path, key_path


# --------------------------------------------------------------------------- the DC


#: The running test DC's process group and folder: a session killed before its clean-up leaves the DC
#: holding ports 389/636, and the next session stops that one (and only that one) by its id.
PIDFILE = Path(tempfile.gettempdir()) / "tourniquet-samba-ad.pid"


def _stop_a_leftover() -> None:
    try:
        pid_text, folder = PIDFILE.read_text().split("\n")[:2]
        process = Path(f"/proc/{int(pid_text)}")
        name = (process / "comm").read_text().strip()
        opened = [os.readlink(fd) for fd in (process / "fd").iterdir()]
    except (OSError, ValueError):
        PIDFILE.unlink(missing_ok=True)
        return
    # our DC: samba (it rewrites its command line and environment) with that folder's databases open
    if name == "samba" and folder and any(path.startswith(folder + "/") for path in opened):
        os.killpg(int(pid_text), signal.SIGTERM)
        for _ in range(100):
            if not Path(f"/proc/{int(pid_text)}").exists():
                break
            time.sleep(0.1)
        shutil.rmtree(folder, ignore_errors=True)
    PIDFILE.unlink(missing_ok=True)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class SambaDC:
    """One provisioned, running, seeded Samba AD DC in ``folder``."""

    url = "ldaps://127.0.0.1:636"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.target = folder / "dc"
        self.hostname = "tqdc"
        self.ca, self.cert, self.key = make_certificates(folder / "tls", self.hostname)
        self.process: subprocess.Popen[bytes] | None = None
        self.timings: dict[str, float] = {}
        self.service_sid = ""
        self.client_conf = folder / "client.conf"
        self.client_conf.write_text(f"[global]\n\tworkgroup = {DOMAIN}\n\trealm = {REALM}\n")
        # Test tools never read the machine's Kerberos or Samba configuration.
        self.env = dict(os.environ, TDB_NO_FSYNC="1", KRB5_CONFIG=str(folder / "krb5.conf"))
        (folder / "krb5.conf").write_text(
            f"[libdefaults]\n default_realm = {REALM}\n dns_lookup_kdc = false\n dns_lookup_realm = false\n"
            f"[realms]\n {REALM} = {{\n  kdc = 127.0.0.1\n  kpasswd_server = 127.0.0.1\n }}\n")

    # -- lifecycle

    def provision(self) -> None:
        started = time.monotonic()
        options = {
            "interfaces": "lo", "bind interfaces only": "yes", "netbios name": self.hostname.upper(),
            # no file server (its child would die without shares), no DNS, NetBIOS or WINS
            "server services": "-s3fs -dns -nbt -wrepl", "ldb:nosync": "true",
            "tls enabled": "yes", "tls keyfile": str(self.key), "tls certfile": str(self.cert),
            "tls cafile": str(self.ca), "old password allowed period": "60",
            "log file": str(self.folder / "samba.log"), "log level": "1",
        }
        command = ["samba-tool", "domain", "provision", f"--realm={REALM}", f"--domain={DOMAIN}", "--server-role=dc",
                   "--dns-backend=NONE", f"--adminpass={ADMIN_PASSWORD}", f"--targetdir={self.target}",
                   "--host-ip=127.0.0.1", *[f"--option={k}={v}" for k, v in options.items()]]
        done = subprocess.run(command, capture_output=True, text=True, env=self.env, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"samba-tool domain provision failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        self.timings["provision"] = time.monotonic() - started

    def start(self) -> None:
        _stop_a_leftover()
        busy = [p for p in (389, 636) if _port_open(p)]
        if busy:
            raise RuntimeError(f"port(s) {busy} already in use on 127.0.0.1: another directory or DC is running")
        started = time.monotonic()
        log = open(self.folder / "samba.out", "wb")
        self.process = subprocess.Popen(["samba", "-i", "-M", "single", "-s", str(self.target / "etc" / "smb.conf")],
                                        stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        PIDFILE.write_text(f"{self.process.pid}\n{self.folder}\n")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"samba exited with {self.process.returncode}: "
                                   + (self.folder / "samba.out").read_text(errors="replace")[-2000:])
            if _port_open(636):
                try:
                    self.admin().unbind()
                    self.timings["start"] = time.monotonic() - started
                    return
                except ldap3.core.exceptions.LDAPException:
                    pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("the Samba DC did not answer on 127.0.0.1:636 within 90 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None
        PIDFILE.unlink(missing_ok=True)

    # -- connections

    def server(self) -> ldap3.Server:
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(self.ca))
        return ldap3.Server(self.url, use_ssl=True, tls=tls, get_info=ldap3.NONE, connect_timeout=5)

    def admin(self) -> ldap3.Connection:
        return ldap3.Connection(self.server(), ADMIN_DN, ADMIN_PASSWORD, auto_bind=True, raise_exceptions=True,
                                receive_timeout=20)

    def bind(self, who: str, password: str) -> str:
        """What a logon over LDAP gets: 'ok', or AD's reason code (52e wrong password, 533 disabled,
        773 must change the password, 775 locked out)."""
        connection = ldap3.Connection(self.server(), who, password, receive_timeout=10)
        try:
            if connection.bind():
                return "ok"
            message = str(connection.result.get("message", ""))
        finally:
            connection.unbind()
        return message.split("data ", 1)[1].split(",", 1)[0] if "data " in message else message

    def ntlm(self, sam: str, password: str) -> str:
        """What an NTLM logon (NTLMSSP in SASL GSS-SPNEGO over LDAP, Kerberos off) gets: 'ok', or AD's reason
        code as for :meth:`bind` (the DC answers these with SEC_E_LOGON_DENIED, 8009030C)."""
        done = subprocess.run(
            ["samba-tool", "user", "show", sam, "--attributes=sAMAccountName", "-H", "ldap://127.0.0.1",
             "-s", str(self.client_conf), f"--username={DOMAIN}\\{sam}", f"--password={password}",
             "--use-kerberos=off"],
            capture_output=True, text=True, env=self.env, timeout=60)
        if done.returncode == 0:
            return "ok"
        text = done.stdout + done.stderr
        if "8009030C" in text and "data " in text:
            return text.split("data ", 1)[1].split(",", 1)[0]
        raise AssertionError(f"NTLM logon of {sam} failed for another reason:\n{text[-1500:]}")

    def kerberos(self, folder: Path) -> dict[str, str]:
        """Environment for the MIT Kerberos tools against this DC, with a credentials cache of its own."""
        return {**self.env, "KRB5CCNAME": f"FILE:{folder / 'krb5cc'}"}

    def kinit(self, person: Person, password: str, env: dict[str, str]) -> str:
        """'ok' when the KDC issues a TGT for this password (an AS exchange), else its message."""
        done = subprocess.run(["kinit", f"{person.sam}@{REALM}"], input=password + "\n", capture_output=True,
                              text=True, env=env, timeout=30)
        return "ok" if done.returncode == 0 else done.stderr.strip().splitlines()[-1]

    def service_ticket(self, env: dict[str, str]) -> str:
        """'ok' when the TGT in the cache gets a service ticket for the DC's LDAP service (a TGS exchange)."""
        admin = self.admin()
        try:
            admin.search(f"OU=Domain Controllers,{BASE}", "(objectClass=computer)", attributes=["servicePrincipalName"])
            names = [_text(v) for v in admin.response[0]["raw_attributes"]["servicePrincipalName"]]
        finally:
            admin.unbind()
        spn = next(n for n in names if n.lower().startswith("ldap/") and "." in n.split("/")[1])
        done = subprocess.run(["kvno", spn], capture_output=True, text=True, env=env, timeout=30)
        return "ok" if done.returncode == 0 else done.stderr.strip().splitlines()[-1]

    # -- seeding

    def seed(self) -> None:
        started = time.monotonic()
        admin = self.admin()
        try:
            for ou in (PEOPLE, OTHERS, GROUPS, SERVICES):
                admin.add(ou, ["organizationalUnit"])
            self._user(admin, SERVICE_DN, {"sAMAccountName": SERVICE, "userPrincipalName": f"{SERVICE}@sante.test",
                                           "description": "Tourniquet: containment of practitioner accounts"},
                       SERVICE_PASSWORD)
            admin.search(SERVICE_DN, "(objectClass=*)", ldap3.BASE, attributes=["objectSid"])
            self.service_sid = format_sid(admin.response[0]["raw_attributes"]["objectSid"][0])
            self.delegate()
            for person in [*PRACTITIONERS, BREAKGLASS, OUTSIDE]:
                attributes = {"sAMAccountName": person.sam, "userPrincipalName": person.upn, "givenName": person.given,
                              "sn": person.surname, "displayName": person.cn, "mail": person.mail}
                if person.rpps:
                    attributes["employeeNumber"] = person.rpps
                self._user(admin, person.dn, attributes, person.password)
            admin.add(COMPUTER_DN, ["computer"], {"sAMAccountName": "POSTE-URG-01$", "userAccountControl": "4096"})
            admin.add(CONTACT_DN, ["contact"], {"mail": PRACTITIONERS[1].mail, "displayName": "Contact Martin"})
            members = {"chu-lille-urgences": [p.dn for p in PRACTITIONERS] + [BREAKGLASS.dn],
                       "ehpad-les-tilleuls": [p.dn for p in PRACTITIONERS[::2]],
                       "vpn-soignants": [p.dn for p in PRACTITIONERS] + [OUTSIDE.dn]}
            for name in GROUP_NAMES:
                admin.add(group_dn(name), ["group"], {"sAMAccountName": name, "member": members[name]})
        finally:
            admin.unbind()
        self.timings["seed"] = time.monotonic() - started

    @staticmethod
    def _user(admin: ldap3.Connection, dn: str, attributes: dict[str, Any], password: str) -> None:
        admin.add(dn, ["user"], attributes)
        admin.modify(dn, {"unicodePwd": [(ldap3.MODIFY_REPLACE, [f'"{password}"'.encode("utf-16-le")])]})
        admin.modify(dn, {"userAccountControl": [(ldap3.MODIFY_REPLACE, ["512"])]})

    def delegate(self) -> None:
        """Give the service account its least rights (:data:`DELEGATION`), before the entries exist (inherited)."""
        for ou, ace in DELEGATION:
            self.samba_tool("dsacl", "set", f"--objectdn={ou}", f"--sddl={ace.format(sid=self.service_sid)}")

    def samba_tool(self, *arguments: str) -> str:
        done = subprocess.run(["samba-tool", *arguments, "-H", f"ldb://{self.target}/private/sam.ldb"],
                              capture_output=True, text=True, env=self.env, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"samba-tool {' '.join(arguments)} failed: {done.stdout[-1000:]}{done.stderr[-1000:]}")
        return done.stdout

    # -- what an administrator sees

    def dump(self) -> dict[str, dict[str, list[str]]]:
        """Every entry of the domain partition, every attribute but the volatile ones: diff two dumps."""
        admin = self.admin()
        try:
            entries = admin.extend.standard.paged_search(BASE, "(objectClass=*)", attributes=["*"], paged_size=500,
                                                         generator=True)
            result: dict[str, dict[str, list[str]]] = {}
            for entry in entries:
                if entry.get("type") != "searchResEntry":
                    continue
                result[entry["dn"].lower()] = {
                    name: sorted(_text(v) for v in values) for name, values in entry["raw_attributes"].items()
                    if name.lower() not in VOLATILE and values}
            return result
        finally:
            admin.unbind()

    def read(self, dn: str, *names: str) -> dict[str, list[str]]:
        admin = self.admin()
        try:
            admin.search(dn, "(objectClass=*)", ldap3.BASE, attributes=list(names) or ["*"])
            return {k: sorted(_text(v) for v in vs) for k, vs in admin.response[0]["raw_attributes"].items() if vs}
        finally:
            admin.unbind()

    def set(self, dn: str, **changes: str) -> None:
        admin = self.admin()
        try:
            admin.modify(dn, {k: [(ldap3.MODIFY_REPLACE, [v])] for k, v in changes.items()})
        finally:
            admin.unbind()

    def set_password(self, dn: str, password: str) -> None:
        self.set_raw(dn, unicodePwd=f'"{password}"'.encode("utf-16-le"))

    def set_raw(self, dn: str, **changes: Any) -> None:
        admin = self.admin()
        try:
            admin.modify(dn, {k: [(ldap3.MODIFY_REPLACE, [v])] for k, v in changes.items()})
        finally:
            admin.unbind()

    def change_own_password(self, person: Person, old: str, new: str) -> str:
        """The owner's own password change (delete the old value, add the new one), as a portal would send it.

        AD lets any authenticated identity send it for someone else's entry as long as the old password is
        right (the Change-Password right is granted to Everyone); a user who must change their password
        cannot bind, so the portal binds as itself — here, the break-glass account."""
        connection = ldap3.Connection(self.server(), BREAKGLASS.upn, BREAKGLASS.password, auto_bind=True,
                                      receive_timeout=10)
        try:
            connection.modify(person.dn, {"unicodePwd": [(ldap3.MODIFY_DELETE, [f'"{old}"'.encode("utf-16-le")]),
                                                         (ldap3.MODIFY_ADD, [f'"{new}"'.encode("utf-16-le")])]})
            return str(connection.result["description"])
        finally:
            connection.unbind()

    # -- a site pointing at it

    def site_file(self, folder: Path, **directory: Any) -> Path:
        """A site configuration for this DC, bound as the delegated service account, TLS verified."""
        secret = folder / "secrets" / "ad"
        secret.parent.mkdir(parents=True, exist_ok=True)
        secret.write_text(SERVICE_PASSWORD + "\n")
        secret.chmod(0o600)
        config = {
            "site": "ad", "state_dir": str(folder / "state"), "evidence_dir": str(folder / "evidence"),
            "directory": {"flavor": "ad", "url": self.url, "ca_file": str(self.ca), "bind_dn": SERVICE_DN,
                          "bind_password": {"file": str(secret)}, "base_dn": PEOPLE, "user_filter": USER_FILTER,
                          "uid_attribute": "sAMAccountName", "rpps_attribute": "employeeNumber",
                          "mail_attribute": "mail", "groups_base_dn": GROUPS, "timeout": 10, **directory},
            "tickets": {"kind": "file", "path": str(folder / "tickets")},
            "limits": {"max_accounts_ceiling": 50, "protected": ["uid=breakglass-*"]},
        }
        path = folder / "tourniquet.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.hex()
    return str(value)


#: AD's reasons a simple bind is refused ([MS-ERREF] / the DSID "data" code): wrong password, disabled, must change.
WRONG_PASSWORD, DISABLED, MUST_CHANGE = "52e", "533", "773"


def assert_dead(dc: SambaDC, person: Person, when: str) -> None:
    """The stolen password opens nothing: neither a simple bind (by UPN or DN) nor an NTLM logon."""
    assert dc.bind(person.upn, person.password) == WRONG_PASSWORD, f"simple bind by UPN {when}"
    assert dc.bind(person.dn, person.password) == WRONG_PASSWORD, f"simple bind by DN {when}"
    assert dc.ntlm(person.sam, person.password) == WRONG_PASSWORD, f"NTLM logon {when}"


def diff(before: dict[str, dict[str, list[str]]], after: dict[str, dict[str, list[str]]]) -> dict[str, dict[str, Any]]:
    """{dn: {attribute: (before, after)}} for every entry and attribute that differ."""
    changed: dict[str, dict[str, Any]] = {}
    for dn in sorted(set(before) | set(after)):
        old, new = before.get(dn, {}), after.get(dn, {})
        delta = {k: (old.get(k), new.get(k)) for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)}
        if delta:
            changed[dn] = delta
    return changed


_SHARED: dict[str, SambaDC] = {}


@pytest.fixture
def samba_dc(request: pytest.FixtureRequest) -> Iterator[SambaDC]:
    """The session's DC, started on first use and stopped when the session ends (one for all AD test files)."""
    require_samba()
    dc = _SHARED.get("dc")
    if dc is None:
        folder = Path(tempfile.mkdtemp(prefix="tourniquet-samba-ad-"))
        dc = SambaDC(folder)
        try:
            dc.provision()
            dc.start()
            dc.seed()
        except BaseException:
            dc.stop()
            shutil.rmtree(folder, ignore_errors=True)
            raise

        def finish(dc: SambaDC = dc) -> None:
            dc.stop()
            shutil.rmtree(dc.folder, ignore_errors=True)

        request.config.add_cleanup(finish)
        _SHARED["dc"] = dc
    yield dc


__all__ = ["SambaDC", "samba_dc", "require_samba", "diff", "assert_dead", "WRONG_PASSWORD", "DISABLED", "MUST_CHANGE", "Person", "PRACTITIONERS", "BREAKGLASS", "OUTSIDE",
           "COMPUTER_DN", "CONTACT_DN", "GROUP_NAMES", "group_dn", "PEOPLE", "GROUPS", "SERVICE_DN", "DELEGATION",
           "BASE"]
