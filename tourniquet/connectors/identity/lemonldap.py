"""LemonLDAP::NG: end a user's SSO sessions with the ``lemonldap-ng-sessions`` CLI.

Why the CLI and not HTTP: LemonLDAP::NG 2.16's manager REST API (``/api/v1``) has no
session routes, and the session explorer (``GET sessions/global?uid=…``,
``DELETE sessions/global/<id>``) sits behind the manager's own SSO and access rules —
a robot would need a browser-style login there. The CLI reads the session store
directly with the portal's own configuration, so any site running LemonLDAP::NG has it.
It runs on the LemonLDAP::NG host: configure ``sessions_command`` as
``[ssh, llng-host, sudo, /usr/share/lemonldap-ng/bin/lemonldap-ng-sessions]`` when
Tourniquet runs elsewhere.

Pitfalls (seen running 2.16): without ``--user/--group`` the tool switches to www-data,
prints "Permission denied" on stderr and still exits 0 — so every delete is checked by
searching again; and a deleted session can stay valid up to ``handlerInternalCache``
(15 s by default) in each handler's memory.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from tourniquet.connectors.directory import Account
from tourniquet.connectors.identity.base import (
    SYSTEM,
    IdentityConfig,
    IdentitySession,
    IdentityUser,
    _NotSupported,
    lookup_value,
)
from tourniquet.errors import AccountNotFound, PermanentError, TransientError

__all__ = ["LemonLdapClient", "CommandResult", "Runner", "run_command"]

log = structlog.get_logger("tourniquet")


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


#: ``(argv, extra environment, timeout seconds) -> CommandResult``: the test seam.
Runner = Callable[[Sequence[str], dict[str, str], float], CommandResult]


def run_command(argv: Sequence[str], env: dict[str, str], timeout: float) -> CommandResult:
    completed = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                               env={**os.environ, **env}, check=False)
    return CommandResult(completed.returncode, completed.stdout, completed.stderr)


class LemonLdapClient(_NotSupported):
    """The SSO sessions of one LemonLDAP::NG installation."""

    kind = "lemonldap"
    why = "LemonLDAP::NG's session tool only lists and deletes SSO sessions"
    capabilities = frozenset({"sessions", "end_sessions"})

    def __init__(self, config: IdentityConfig, *, runner: Runner | None = None) -> None:
        self.config = config
        self._runner = runner or run_command

    def close(self) -> None:
        pass

    def _run(self, arguments: list[str], what: str) -> CommandResult:
        argv = list(self.config.sessions_command)
        if self.config.run_as:
            user, _, group = self.config.run_as.partition(":")
            argv += ["--user", user, "--group", group or user]
        argv += arguments
        env = {"LLNG_DEFAULTCONFFILE": self.config.ini_file} if self.config.ini_file else {}
        budget = self.config.connect_timeout + self.config.timeout
        try:
            result = self._runner(argv, env, budget)
        except FileNotFoundError as exc:
            raise PermanentError(
                f"{what}: {argv[0]} not found — run Tourniquet on the LemonLDAP::NG host or set sessions_command "
                f"(e.g. [ssh, llng-host, sudo, …/lemonldap-ng-sessions])", system=SYSTEM) from exc
        except subprocess.TimeoutExpired as exc:
            raise TransientError(f"{what}: lemonldap-ng-sessions did not finish within {budget:g}s",
                                 system=SYSTEM) from exc
        except OSError as exc:
            raise PermanentError(f"{what}: cannot run {argv[0]}: {exc}", system=SYSTEM) from exc
        if "Permission denied" in result.stderr:
            raise PermanentError(
                f"{what}: lemonldap-ng-sessions cannot read the session store (Permission denied): set run_as "
                f"to the account owning it (root, or the web server user)", system=SYSTEM)
        if result.returncode != 0:
            raise PermanentError(f"{what}: lemonldap-ng-sessions exited {result.returncode}: "
                                 f"{result.stderr.strip()[-300:]}", system=SYSTEM)
        return result

    def _where(self, user: IdentityUser) -> list[str]:
        return ["--where", f"{self.config.session_key}={user.id}"]

    def find_user(self, account: Account) -> IdentityUser:
        how, value = lookup_value(self.config, account)
        if how != "username":
            raise self._unsupported(f"look users up by attribute (sessions are searched by {self.config.session_key})")
        if any(c in value for c in "\n\r\0") or not value.strip():
            raise AccountNotFound(f"{value!r} cannot name a LemonLDAP::NG session owner", system=SYSTEM)
        return IdentityUser(id=value, username=value)

    def sessions(self, user: IdentityUser) -> list[IdentitySession]:
        what = f"list SSO sessions of {user.username}"
        result = self._run(["search", *self._where(user)], what)
        try:
            data: Any = json.loads(result.stdout or "[]")
        except ValueError as exc:
            raise PermanentError(f"{what}: lemonldap-ng-sessions printed something that is not JSON",
                                 system=SYSTEM) from exc
        sessions = []
        for item in data if isinstance(data, list) else []:
            started = item.get("_utime") or item.get("_startTime")
            sessions.append(IdentitySession(
                id=str(item.get("_session_id", "")), ip=item.get("ipAddr"),
                started=int(started) if str(started or "").isdigit() and len(str(started)) <= 10 else None,
                clients=[str(item["_session_kind"])] if item.get("_session_kind") else [],
            ))
        return sessions

    def end_sessions(self, user: IdentityUser) -> None:
        result = self._run(["delete", *self._where(user)], f"end SSO sessions of {user.username}")
        if result.stderr.strip():
            log.warning("identity.lemonldap_stderr", user=user.username, stderr=result.stderr.strip()[-300:])
