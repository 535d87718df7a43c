"""A real LemonLDAP::NG 2.16 portal: an attacker is logged in twice as dwho; end_sessions logs him out.

The portal and the lemonldap-ng-sessions tool come from Debian 12 (bin/setup.d/identity.sh).
Missing packages skip the test locally and fail it in CI.
"""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.identity_llng_server import LemonLdapPortal, missing
from tourniquet.actions import identity as actions
from tourniquet.actions.context import ActionContext
from tourniquet.connectors.directory import Account
from tourniquet.connectors.identity import IdentityConfig
from tourniquet.connectors.identity.lemonldap import LemonLdapClient
from tourniquet.journal import Journal


@dataclass
class StubSite:
    identity: Any
    name: str = "test"


@pytest.fixture(scope="module")
def portal() -> Iterator[LemonLdapPortal]:
    absent = missing()
    if absent:
        message = f"LemonLDAP::NG not installed ({', '.join(absent)}): bin/setup.d/identity.sh installs it"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must not skip it)")
        pytest.skip(message)
    server = LemonLdapPortal()
    server.start()
    yield server
    server.stop()


def account(uid: str) -> Account:
    return Account(dn=f"uid={uid},ou=people,dc=example,dc=com", uid=uid)


def client(portal: LemonLdapPortal) -> LemonLdapClient:
    me = f"{pwd.getpwuid(os.getuid()).pw_name}:{grp.getgrgid(os.getgid()).gr_name}"
    return LemonLdapClient(IdentityConfig(kind="lemonldap", url=f"http://auth.example.com:{portal.port}/",
                                          allow_plaintext=True, ini_file=str(portal.ini), run_as=me))


def test_end_sessions_logs_the_attacker_out_and_nobody_else(portal: LemonLdapPortal, tmp_path: Path) -> None:
    stolen = [portal.login("dwho"), portal.login("dwho")]
    colleague = portal.login("rtyler")
    assert all(portal.accepts(s) for s in stolen)
    journal = Journal(tmp_path / "journal.jsonl", incident="inc-llng")
    ctx = ActionContext(incident="inc-llng", playbook="test", step="end_sessions", action="identity.end_sessions",
                        dry_run=False, site=StubSite(client(portal)), journal=journal)  # type: ignore[arg-type]

    result = actions.end_sessions(ctx, account("dwho"))

    assert (result.before, result.after, result.outcome) == ({"sessions": 2}, {"sessions": 0}, "applied")
    assert not any(portal.accepts(s) for s in stolen)
    assert portal.accepts(colleague)
    evidence = next(r for r in journal.records() if r["type"] == "sessions")
    assert sorted(s["id"] for s in evidence["sessions"]) == sorted(stolen)
    assert {s["ip"] for s in evidence["sessions"]} == {"127.0.0.1"}


def test_wrong_configuration_file_is_an_error_not_a_silent_success(portal: LemonLdapPortal) -> None:
    """The tool cannot read its configuration: the step fails with the tool's own words."""
    llng = LemonLdapClient(IdentityConfig(kind="lemonldap", ini_file="/nonexistent/lemonldap-ng.ini"))
    with pytest.raises(Exception, match="lemonldap-ng-sessions|configuration"):
        llng.sessions(llng.find_user(account("dwho")))
