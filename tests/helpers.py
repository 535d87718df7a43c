"""Test helpers that speak LDAP directly, as an administrator checking the directory would."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import ldap3
import pytest

from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import SLAPD_BINARIES, Slapd

#: The Relax Rules control: lets the directory root write operational attributes such as pwdChangedTime.
RELAX_RULES = ("1.3.6.1.4.1.4203.666.5.12", True, None)

#: Operational attributes that change on every write and say nothing about the account.
VOLATILE = {"modifyTimestamp", "modifiersName", "entryCSN", "contextCSN", "createTimestamp", "creatorsName",
            "entryUUID", "structuralObjectClass", "subschemaSubentry", "hasSubordinates", "entryDN"}


def require_slapd() -> None:
    """Skip a directory test where slapd is missing, but never in CI: CI must not pass by skipping."""
    missing = [b for b in SLAPD_BINARIES if not Path(b).exists()]
    if missing:
        message = f"{', '.join(missing)} missing: apt-get install slapd ldap-utils"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must not skip directory tests)")
        pytest.skip(message)


def bind_result(slapd: Slapd, dn: str, password: str) -> str:
    """'success', 'invalidCredentials', …: what a practitioner trying to log in gets."""
    connection = ldap3.Connection(ldap3.Server(slapd.url, connect_timeout=5), dn, password, receive_timeout=5)
    connection.bind()
    description = str(connection.result.get("description"))
    connection.unbind()
    return description


class LdapAdmin:
    """The directory administrator's view: read everything, put lock state back."""

    def __init__(self, slapd: Slapd) -> None:
        self.slapd = slapd
        self.connection = ldap3.Connection(
            ldap3.Server(slapd.url, connect_timeout=5), slapd.root_dn, slapd.root_password,
            auto_bind=True, receive_timeout=10,
        )

    def close(self) -> None:
        self.connection.unbind()

    def attributes(self, dn: str, names: list[str] | None = None) -> dict[str, list[str]]:
        self.connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=names or ["*", "+"])
        raw = self.connection.response[0]["attributes"]
        return {k: sorted(_text(v) for v in (vs if isinstance(vs, list) else [vs])) for k, vs in raw.items() if vs not in ([], None)}

    def dump(self) -> dict[str, dict[str, list[str]]]:
        """Every entry with every attribute except the volatile ones: diff two dumps to see changes."""
        entries = self.connection.extend.standard.paged_search(
            self.slapd.suffix, "(objectClass=*)", attributes=["*", "+"], paged_size=500, generator=True
        )
        result = {}
        for entry in entries:
            if entry.get("type") != "searchResEntry":
                continue
            attributes = {
                k: sorted(_text(v) for v in (vs if isinstance(vs, list) else [vs]))
                for k, vs in entry["attributes"].items() if k not in VOLATILE and vs not in ([], None)
            }
            result[entry["dn"].lower()] = attributes
        return result

    def set(self, dn: str, changes: dict[str, list[str]], *, relax: bool = False) -> None:
        """Replace attributes; ``relax`` (RFC draft Relax Rules control) also lets root write pwdChangedTime."""
        self.connection.modify(dn, {k: [(ldap3.MODIFY_REPLACE, v)] for k, v in changes.items()},
                               controls=[RELAX_RULES] if relax else None)

    def reset_all(self, directory: Directory) -> None:
        """Unlock, un-reset and give back its own password to every practitioner (tests share one slapd).

        A scrambled or one-time password is put back to the generated one, and the server's stamp of
        that change (pwdChangedTime, set by ppolicy) removed with the Relax Rules control.
        """
        passwords = {p.dn: p.password for p in directory.practitioners}
        passwords[directory.breakglass_dn] = "pw-breakglass-admin"
        for person in directory.practitioners + [_Breakglass(directory.breakglass_dn)]:
            names = ["pwdAccountLockedTime", "pwdReset", "pwdPolicySubentry", "pwdChangedTime"]
            current = self.attributes(person.dn, names)
            if "pwdChangedTime" in current:
                self.set(person.dn, {"userPassword": [passwords[person.dn]]})
                current = self.attributes(person.dn, names)
            stale = {k: [] for k in names if k in current}
            if stale:
                self.set(person.dn, stale, relax=True)


class _Breakglass:
    def __init__(self, dn: str) -> None:
        self.dn = dn


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "strftime"):
        return value.strftime("%Y%m%d%H%M%SZ")
    return str(value)


def mount_tmpfs(target: Path, options: str) -> None:
    """A small file system of its own (full disk, read-only folder); root only, so CI fails rather than skips."""
    target.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True,
                            text=True)
    if result.returncode != 0:
        message = f"cannot mount a tmpfs ({result.stderr.strip()}): run as root"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must not skip storage tests)")
        pytest.skip(message)
