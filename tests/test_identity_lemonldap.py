"""Contract tests: the LemonLDAP::NG client against a runner behaving as ``lemonldap-ng-sessions`` 2.16 does.

Behaviour reproduced (Lemonldap::NG::Common::CliSessions, and running it on Debian 12):
``search --where uid=X`` prints a JSON array of session objects (``_session_id``,
``ipAddr``, ``_utime``, ``_session_kind``); ``delete --where uid=X`` removes them and exits
0; without ``--user/--group`` it cannot read the store, prints "Permission denied" and
still exits 0.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

import pytest

from tests.identity_fakes import FakeLemonLdapCli
from tourniquet.connectors.directory import Account
from tourniquet.connectors.identity import IdentityConfig, Unsupported
from tourniquet.connectors.identity.lemonldap import CommandResult, LemonLdapClient
from tourniquet.errors import PermanentError, TransientError

JDUPONT = Account(dn="uid=jdupont,ou=people,dc=sante,dc=example", uid="jdupont", rpps="10101010104")


def make(cli: object, **overrides: object) -> LemonLdapClient:
    config = IdentityConfig.model_validate({"kind": "lemonldap", "run_as": "root", **overrides})
    return LemonLdapClient(config, runner=cli)  # type: ignore[arg-type]


def test_search_and_delete_a_users_sessions() -> None:
    """search --where uid=jdupont → JSON array; delete --where uid=jdupont removes only that user's sessions."""
    cli = FakeLemonLdapCli()
    cli.add("jdupont", 2)
    cli.add("bystander", 1)
    llng = make(cli, ini_file="/etc/lemonldap-ng/lemonldap-ng.ini")
    user = llng.find_user(JDUPONT)

    found = llng.sessions(user)
    assert [(s.ip, s.started, s.clients) for s in found] == [("198.51.100.4", 1_757_000_000, ["SSO"])] * 2
    llng.end_sessions(user)

    assert (cli.count("jdupont"), cli.count("bystander")) == (0, 1)
    assert cli.calls[-1][-4:] == ["root", "delete", "--where", "uid=jdupont"]
    assert cli.calls[-1][:3] == ["/usr/share/lemonldap-ng/bin/lemonldap-ng-sessions", "--user", "root"]
    assert cli.environments[-1] == {"LLNG_DEFAULTCONFFILE": "/etc/lemonldap-ng/lemonldap-ng.ini"}


def test_permission_denied_with_exit_status_zero_is_an_error() -> None:
    """Run as the wrong user the tool prints "Permission denied" yet exits 0: treated as a failure naming run_as."""
    cli = FakeLemonLdapCli(permission_denied=True)
    llng = make(cli, run_as=None)
    with pytest.raises(PermanentError, match="run_as"):
        llng.sessions(llng.find_user(JDUPONT))


def test_tool_missing_or_hanging() -> None:
    """Not on the LemonLDAP::NG host: say how to reach it (ssh in sessions_command); a hang is transient."""

    def missing(argv: Sequence[str], env: dict[str, str], timeout: float) -> CommandResult:
        raise FileNotFoundError(argv[0])

    def hanging(argv: Sequence[str], env: dict[str, str], timeout: float) -> CommandResult:
        raise subprocess.TimeoutExpired(list(argv), timeout)

    user = make(missing).find_user(JDUPONT)
    with pytest.raises(PermanentError, match="ssh"):
        make(missing).sessions(user)
    with pytest.raises(TransientError):
        make(hanging).end_sessions(user)


def test_failed_delete_reports_stderr() -> None:
    """A non-zero exit (e.g. the session backend is down) is reported with the tool's own words."""

    def broken(argv: Sequence[str], env: dict[str, str], timeout: float) -> CommandResult:
        return CommandResult(1, "", "DBI connect failed: Connection refused\n")

    llng = make(broken)
    with pytest.raises(PermanentError, match="Connection refused"):
        llng.end_sessions(llng.find_user(JDUPONT))


def test_what_lemonldap_cannot_do_is_unsupported() -> None:
    """No attribute lookup, offline tokens, required actions or enable/disable through the sessions tool."""
    llng = make(FakeLemonLdapCli())
    user = llng.find_user(JDUPONT)
    for call in (lambda: llng.offline_clients(user), lambda: llng.set_enabled(user, False),
                 lambda: llng.add_required_actions(user, ["UPDATE_PASSWORD"]),
                 lambda: make(FakeLemonLdapCli(), lookup="attribute").find_user(JDUPONT)):
        with pytest.raises(Unsupported):
            call()


def test_real_command_runner_is_used_by_default() -> None:
    """Without a runner the client runs the configured command (here a stand-in shell script printing [])."""
    llng = LemonLdapClient(IdentityConfig(kind="lemonldap", sessions_command=["/bin/sh", "-c", "echo []", "sh"]))
    assert llng.sessions(llng.find_user(JDUPONT)) == []
