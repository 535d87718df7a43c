"""389 Directory Server and Active Directory: the exact modify requests each action sends, where no real server can show it.

A small stand-in (:class:`VendorServer`) answers as each vendor documents and records every modify
request; the assertions are on those requests — attribute, operation, values — and on what the vendor
then stores. Each test names the document it follows. 389-DS and Active Directory themselves are proven
on real servers (tests/test_directory_389ds.py; tests/test_directory_ad_*.py on a Samba DC: lock, unlock,
must-change, the unicodePwd encoding, groups, undo, reinstate, recover); the AD tests kept here are the two
Samba cannot show, each saying why: the clear-text guard (Samba refuses the bind first) and an intruder
lockout (the shared test DC has no lockout threshold).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ldap
import ldap3
import pytest
from ldap3.core.exceptions import LDAPUnwillingToPerformResult

from tests.directory_helpers import call
from tourniquet.config import SiteConfig
from tourniquet.connectors.directory import Account, DirectoryClient
from tourniquet.errors import PermanentError, UnsafeToChange
from tourniquet.site import Site

REPLACE, ADD, DELETE = ldap3.MODIFY_REPLACE, ldap3.MODIFY_ADD, ldap3.MODIFY_DELETE
SUFFIX = "dc=sante,dc=example"
DN = f"uid=jdupont,ou=people,{SUFFIX}"
GROUP = f"cn=chu-lille,ou=groups,{SUFFIX}"


class VendorServer:
    """Entries in memory; modify requests recorded, then applied the way the vendor documents."""

    def __init__(self, vendor: str, entry: dict[str, list[Any]], library: str = "libldap") -> None:
        self.vendor = vendor
        self.library = library  # whose exception a refusal is raised as: each transport's library
        self.entries: dict[str, dict[str, list[Any]]] = {
            DN.lower(): dict(entry), GROUP.lower(): {"objectClass": ["groupOfNames"], "member": [DN]},
        }
        self.requests: list[tuple[str, dict[str, list[tuple[Any, list[Any]]]]]] = []
        self.password_writes = 0
        self.bound, self.closed = True, False
        self.response: list[dict[str, Any]] = []
        self.result: dict[str, Any] = {}
        self.clock = 133_000_000_000_000_000

    def search(self, base: str, filter_: str, search_scope: Any = None, attributes: Any = None, **_: Any) -> bool:
        if search_scope == ldap3.BASE:
            entry = self.entries.get(base.lower())
            self.response = [] if entry is None else [{"type": "searchResEntry", "dn": base, "attributes": entry}]
        else:  # groups_of: (&(group filter)(member=<dn>))
            member = filter_.rsplit("(member=", 1)[1].rstrip(")")
            self.response = [{"type": "searchResEntry", "dn": dn, "attributes": {}}
                             for dn, e in self.entries.items() if member.lower() in [m.lower() for m in e.get("member", [])]]
        self.result = {"result": 0}
        return True

    def modify(self, dn: str, changes: dict[str, list[tuple[Any, list[Any]]]]) -> bool:
        self.requests.append((dn, changes))
        entry = self.entries[dn.lower()]
        for name, operations in changes.items():
            for operation, values in operations:
                self._apply(entry, name, operation, values)
        return True

    def _apply(self, entry: dict[str, list[Any]], name: str, operation: Any, values: list[Any]) -> None:
        if self.vendor == "389ds" and name == "pwdReset" and self.library == "ldap3":
            raise LDAPUnwillingToPerformResult(result=53, description="unwillingToPerform",
                                               message="pwdReset is server-managed")
        if self.vendor == "389ds" and name == "pwdReset":
            raise ldap.UNWILLING_TO_PERFORM({"desc": "Server is unwilling to perform", "info": "pwdReset is server-managed"})
        if name in ("userPassword", "unicodePwd"):
            self.password_writes += 1
            if self.vendor == "389ds":
                entry["pwdReset"] = ["TRUE"]  # passwordMustChange: on, admin reset
                entry["pwdUpdateTime"] = [str(self.clock)]  # passwordTrackUpdateTime: on
            else:
                entry["pwdLastSet"] = [str(self.clock)]
            self.clock += 1
            return
        if self.vendor == "ad" and name == "pwdLastSet" and values == ["-1"]:
            values = [str(self.clock)]  # MS-ADTS: -1 stores the current time
        if operation == REPLACE:
            entry[name] = list(values) if values else []
        elif operation == ADD:
            entry[name] = entry.get(name, []) + list(values)
        elif operation == DELETE:
            entry[name] = [v for v in entry.get(name, []) if values and v not in values]
        if not entry.get(name):
            entry.pop(name, None)

    def unbind(self) -> None:
        self.closed = True


def _site(tmp_path: Path, flavor: str, server: VendorServer, url: str = "ldaps://dc.sante.example:636") -> Site:
    config = SiteConfig.model_validate({
        "site": "contract", "state_dir": str(tmp_path / "state"), "evidence_dir": str(tmp_path / "evidence"),
        "directory": {"flavor": flavor, "url": url, "bind_dn": "cn=svc", "bind_password": {"env": "UNUSED"},
                      "base_dn": f"ou=people,{SUFFIX}", "allow_plaintext": url.startswith("ldap://")},
    })
    site = Site(config)
    site._clients["directory"] = DirectoryClient(config.directory, password="unused",
                                                 connection_factory=lambda: server)
    return site


ACCOUNT = Account(dn=DN, uid="jdupont")


# --------------------------------------------------------------------------- 389 Directory Server


def test_389_lock_sets_nsaccountlock_and_a_second_lock_sends_nothing(tmp_path: Path) -> None:
    """Red Hat Directory Server 12 Administration Guide, "Manually inactivating users and roles":
    the operational attribute nsAccountLock: true inactivates an entry (binds refused with 53)."""
    server = VendorServer("389ds", {"uid": ["jdupont"]})
    site = _site(tmp_path, "389ds", server)

    first, _ = call(site, "directory.lock", account=ACCOUNT)
    second, _ = call(site, "directory.lock", account=ACCOUNT)

    assert server.requests == [(DN, {"nsAccountLock": [(REPLACE, ["true"])]})]
    assert (first.outcome, second.outcome) == ("applied", "noop")


def test_389_unlock_deletes_nsaccountlock(tmp_path: Path) -> None:
    """Same guide, "Activating users": remove nsAccountLock (or set it false) to re-enable the entry."""
    server = VendorServer("389ds", {"uid": ["jdupont"], "nsAccountLock": ["TRUE"]})
    site = _site(tmp_path, "389ds", server)

    result, _ = call(site, "directory.unlock", account=ACCOUNT)

    assert server.requests == [(DN, {"nsAccountLock": [(DELETE, [])]})]
    assert result.outcome == "applied" and "nsAccountLock" not in server.entries[DN.lower()]


def test_389_force_password_reset_refuses_instead_of_pretending(tmp_path: Path) -> None:
    """RHDS 12 "Configuring password policies", passwordMustChange: pwdReset is set by the server after an
    administrator's password change; an administrator cannot write it (53), so nothing is sent."""
    server = VendorServer("389ds", {"uid": ["jdupont"]})
    site = _site(tmp_path, "389ds", server)

    with pytest.raises(UnsafeToChange, match="scramble_password"):
        call(site, "directory.force_password_reset", account=ACCOUNT)
    assert server.requests == []


def test_389_scramble_replaces_userpassword_and_the_server_sets_pwdreset(tmp_path: Path) -> None:
    """RHDS 12: an administrator's userPassword replace is hashed by the server and, with
    passwordMustChange: on, sets pwdReset: TRUE. The random value never reaches the journal."""
    server = VendorServer("389ds", {"uid": ["jdupont"]})
    site = _site(tmp_path, "389ds", server)

    result, _ = call(site, "directory.scramble_password", account=ACCOUNT)

    [(dn, changes)] = server.requests
    [(operation, [password])] = changes["userPassword"]
    assert (dn, list(changes), operation, len(password) >= 32) == (DN, ["userPassword"], REPLACE, True)
    assert result.outcome == "applied" and server.entries[DN.lower()]["pwdReset"] == ["TRUE"]
    journal = (site.incident_dir("inc-directory-test") / "journal.jsonl").read_text()
    assert password not in journal


# --------------------------------------------------------------------------- Active Directory


def test_ad_password_write_is_refused_in_clear_before_anything_is_sent(tmp_path: Path) -> None:
    """MS-ADTS 3.1.1.3.1.5.1 unicodePwd: a password write needs an encrypted connection; we refuse before
    sending. Why a stand-in: the Samba DC refuses a simple bind over plain LDAP first ("ldap server require
    strong auth"), so the guard cannot be reached there. (The UTF-16LE quoted encoding is proven on Samba.)"""
    server = VendorServer("ad", {"userAccountControl": ["514"], "pwdLastSet": ["0"]})
    with pytest.raises(UnsafeToChange, match="ldaps"):
        call(_site(tmp_path / "clear", "ad", server, url="ldap://dc:389"), "directory.scramble_password", account=ACCOUNT)
    assert server.requests == []


def test_ad_reinstate_restores_control_flags_and_clears_an_intruder_lockout(tmp_path: Path) -> None:
    """MS-ADTS: reinstating = userAccountControl back to its recorded value, pwdLastSet -1 (the only way
    to clear a forced change), lockoutTime 0 (the only value a client may write: unlock), in one request.
    Why a stand-in: an intruder lockout needs a domain lockout threshold, and the shared Samba test DC has
    none (its tests try stolen passwords on purpose); the rest of reinstate is proven on Samba."""
    server = VendorServer("ad", {"userAccountControl": ["512"], "pwdLastSet": ["132000000000000000"],
                                 "lockoutTime": ["0"]})
    site = _site(tmp_path, "ad", server)
    call(site, "directory.snapshot", account=ACCOUNT)
    call(site, "directory.lock", account=ACCOUNT)
    call(site, "directory.force_password_reset", account=ACCOUNT)
    server.entries[DN.lower()]["lockoutTime"] = ["133000000000000999"]  # attacker kept guessing
    server.requests.clear()

    result, _ = call(site, "directory.reinstate", account=ACCOUNT)

    assert server.requests == [(DN, {"userAccountControl": [(REPLACE, ["512"])], "pwdLastSet": [(REPLACE, ["-1"])],
                                     "lockoutTime": [(REPLACE, ["0"])]})]
    assert result.outcome == "applied"


@pytest.mark.parametrize("library", ["ldap3", "libldap"])
def test_a_server_refusal_is_a_permanent_error(tmp_path: Path, library: str) -> None:
    """389-DS answers 53 unwillingToPerform to a client writing pwdReset: the error names the entry and what the
    server said, in the same words whichever library's exception carried it."""
    server = VendorServer("389ds", {"uid": ["jdupont"]}, library=library)
    client = _site(tmp_path, "389ds", server).directory
    with pytest.raises(PermanentError, match=f"modifying {DN}: .*pwdReset is server-managed"):
        client.replace(DN, {"pwdReset": ["TRUE"]})
