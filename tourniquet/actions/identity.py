"""``identity.*`` actions: make a contained account re-authenticate from scratch at the IdP.

Locking the directory entry does not end what is already open: the SSO session and the
tokens it issued keep working until the identity provider ends them. Every change goes
through ``ctx.change`` with the session counts (or flags) as before/after, so the run
report shows, per account, e.g. ``{"sessions": 3}`` → ``{"sessions": 0}``. When the site
has no identity provider (the demo), each action says so and changes nothing.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import structlog
from pydantic import BaseModel, Field

from tourniquet.actions.context import ActionContext
from tourniquet.connectors.directory import Account
from tourniquet.connectors.identity import IdentityClient, IdentitySession, IdentityUser
from tourniquet.errors import NotFound, VerificationFailed
from tourniquet.registry import action

SYSTEM = "identity"
NO_IDP = "no identity provider configured"
log = structlog.get_logger("tourniquet")

AccountArg = Annotated[Account, Field(description="A resolved account (an item of steps.<resolve>.accounts).")]
ActionsArg = Annotated[
    list[str],
    Field(description="Keycloak required actions, e.g. UPDATE_PASSWORD (new password), CONFIGURE_TOTP (re-enrol MFA)."),
]
MissingArg = Annotated[
    Literal["fail", "skip"],
    Field(description="fail: an account unknown to the IdP fails the step; skip: it is reported and left alone."),
]


class IdentityResult(BaseModel):
    """What a changing identity action did to one account."""

    account: str
    provider: str | None = Field(None, description="keycloak, lemonldap, oidc; empty when the site has no IdP.")
    user: str | None = Field(None, description="The account's username at the IdP.")
    outcome: str = Field(description="applied, noop, planned, or skipped (no IdP, or unknown there with missing: skip).")
    message: str = ""
    before: dict[str, Any] = Field(default_factory=dict)
    after: dict[str, Any] = Field(default_factory=dict)


class SessionsResult(BaseModel):
    """The account's open sessions at the IdP (read-only)."""

    account: str
    provider: str | None = None
    user: str | None = None
    sessions: int = 0
    offline_sessions: int | None = Field(None, description="Empty when the IdP cannot list them.")
    details: list[IdentitySession] = Field(default_factory=list)
    message: str = ""


def _label(account: Account) -> str:
    return account.uid or account.dn


def _client(ctx: ActionContext) -> IdentityClient | None:
    return ctx.site.identity  # type: ignore[no-any-return]


def _skipped(ctx: ActionContext, account: Account, reason: str, provider: str | None = None) -> IdentityResult:
    ctx.journal.write("skipped", step=ctx.step, action=ctx.action, system=SYSTEM, account=_label(account),
                      reason=reason)
    log.debug("identity.skipped", account=_label(account), reason=reason)
    return IdentityResult(account=_label(account), provider=provider, outcome="skipped", message=reason)


def _find(ctx: ActionContext, client: IdentityClient, account: Account, missing: str) -> IdentityUser | None:
    try:
        return client.find_user(account)
    except NotFound as exc:
        if missing == "skip":
            _skipped(ctx, account, f"not found at the identity provider: {exc.detail}", client.kind)
            return None
        raise


def _change(
    ctx: ActionContext, client: IdentityClient, account: Account, user: IdentityUser, operation: str,
    before: dict[str, Any], after: dict[str, Any], apply: Any, read_back: Any, undo: dict[str, Any] | None,
    message: str = "",
) -> IdentityResult:
    label = _label(account)
    outcome = ctx.change(system=SYSTEM, target=label, account=label, operation=operation, before=before, after=after,
                         apply=apply, read_back=read_back, undo=undo)
    return IdentityResult(account=label, provider=client.kind, user=user.username, outcome=outcome,
                          message=message, before=before, after=after)


def _evidence(ctx: ActionContext, account: Account, user: IdentityUser, provider: str,
              sessions: list[IdentitySession]) -> None:
    """Where and since when the account was logged in: written before anything is ended."""
    ctx.journal.write("sessions", step=ctx.step, system=SYSTEM, provider=provider, account=_label(account),
                      user=user.username, sessions=[s.model_dump() for s in sessions])


@action("identity.sessions")
def sessions(ctx: ActionContext, account: AccountArg, missing: MissingArg = "fail") -> SessionsResult:
    """List the account's open sessions at the identity provider (read-only; kept in the journal as evidence)."""
    client = _client(ctx)
    if client is None:
        return SessionsResult(account=_label(account), message=NO_IDP)
    user = _find(ctx, client, account, missing)
    if user is None:
        return SessionsResult(account=_label(account), provider=client.kind, message="not found at the IdP")
    online = client.sessions(user)
    offline = client.offline_sessions(user) if "offline" in client.capabilities else None
    found = online + (offline or [])
    _evidence(ctx, account, user, client.kind, found)
    return SessionsResult(account=_label(account), provider=client.kind, user=user.username, sessions=len(online),
                          offline_sessions=None if offline is None else len(offline), details=found)


@action("identity.end_sessions", changes=True, target="account")
def end_sessions(
    ctx: ActionContext,
    account: AccountArg,
    include_offline: Annotated[
        bool, Field(description="Also revoke offline tokens (Keycloak: logout leaves offline sessions in place).")
    ] = True,
    missing: MissingArg = "fail",
) -> IdentityResult:
    """End every session the account has at the identity provider, then check that none is left (no undo)."""
    client = _client(ctx)
    if client is None:
        return _skipped(ctx, account, NO_IDP)
    user = _find(ctx, client, account, missing)
    if user is None:
        return IdentityResult(account=_label(account), provider=client.kind, outcome="skipped",
                              message="not found at the identity provider")
    offline = include_offline and "offline" in client.capabilities
    note = "" if offline or not include_offline else f"offline tokens: {client.kind} cannot list them"

    def count() -> dict[str, int]:
        state = {"sessions": len(client.sessions(user))}
        if offline:
            state["offline_sessions"] = len(client.offline_sessions(user))
        return state

    online = client.sessions(user)
    held = client.offline_sessions(user) if offline else []
    _evidence(ctx, account, user, client.kind, online + held)
    before = {"sessions": len(online), **({"offline_sessions": len(held)} if offline else {})}
    after = {name: 0 for name in before}

    def apply() -> None:
        client.end_sessions(user)
        if offline:
            for client_id in client.offline_clients(user):
                client.revoke_offline(user, client_id)

    try:
        return _change(ctx, client, account, user, "end_sessions", before, after, apply, count, None, note)
    except VerificationFailed as exc:
        raise VerificationFailed(
            f"{_label(account)}: sessions still alive at {client.kind} after ending them ({exc.detail}); "
            f"they keep working — end them at the IdP by hand and find out why", system=SYSTEM) from exc


@action("identity.revoke_offline_tokens", changes=True, target="account")
def revoke_offline_tokens(ctx: ActionContext, account: AccountArg) -> IdentityResult:
    """Revoke the account's offline tokens and consents, client by client (no undo: the user consents again)."""
    client = _client(ctx)
    if client is None:
        return _skipped(ctx, account, NO_IDP)
    user = client.find_user(account)
    held = client.offline_clients(user)

    def apply() -> None:
        for client_id in held:
            client.revoke_offline(user, client_id)

    return _change(ctx, client, account, user, "revoke_offline_tokens", {"offline_tokens": held},
                   {"offline_tokens": []}, apply, lambda: {"offline_tokens": client.offline_clients(user)}, None)


@action("identity.require_actions", changes=True, undo="identity.remove_required_actions", target="account")
def require_actions(
    ctx: ActionContext, account: AccountArg, actions: ActionsArg = ["UPDATE_PASSWORD", "CONFIGURE_TOTP"]  # noqa: B006
) -> IdentityResult:
    """Require a new password and MFA enrolment at next login (merged into the user's list; undo removes only these)."""
    client = _client(ctx)
    if client is None:
        return _skipped(ctx, account, NO_IDP)
    user = client.get_user(client.find_user(account))
    current = list(user.required_actions)
    added = [a for a in dict.fromkeys(actions) if a not in current]
    return _change(
        ctx, client, account, user, "require_actions",
        {"required_actions": sorted(current)}, {"required_actions": sorted(current + added)},
        lambda: client.add_required_actions(user, added),
        lambda: {"required_actions": sorted(client.get_user(user).required_actions)},
        ctx.undo_call({"account": account.model_dump(), "actions": added}),
    )


@action("identity.remove_required_actions", changes=True, undo="identity.require_actions", target="account")
def remove_required_actions(
    ctx: ActionContext, account: AccountArg,
    actions: Annotated[list[str], Field(description="Required actions to take off the user's list (others stay).")],
) -> IdentityResult:
    """Take required actions off the user's list, leaving any others in place (the undo of require_actions)."""
    client = _client(ctx)
    if client is None:
        return _skipped(ctx, account, NO_IDP)
    user = client.get_user(client.find_user(account))
    current = list(user.required_actions)
    removed = [a for a in current if a in actions]
    return _change(
        ctx, client, account, user, "remove_required_actions",
        {"required_actions": sorted(current)}, {"required_actions": sorted(a for a in current if a not in actions)},
        lambda: client.remove_required_actions(user, removed),
        lambda: {"required_actions": sorted(client.get_user(user).required_actions)},
        ctx.undo_call({"account": account.model_dump(), "actions": removed}),
    )


def _set_enabled(ctx: ActionContext, account: AccountArg, enabled: bool) -> IdentityResult:
    client = _client(ctx)
    if client is None:
        return _skipped(ctx, account, NO_IDP)
    user = client.get_user(client.find_user(account))
    return _change(
        ctx, client, account, user, "enable" if enabled else "disable",
        {"enabled": user.enabled}, {"enabled": enabled},
        lambda: client.set_enabled(user, enabled),
        lambda: {"enabled": client.get_user(user).enabled},
        ctx.undo_call({"account": account.model_dump()}),
        "" if enabled else "disabling does not end open sessions: use identity.end_sessions too",
    )


@action("identity.disable", changes=True, undo="identity.enable", target="account")
def disable(ctx: ActionContext, account: AccountArg) -> IdentityResult:
    """Disable the user at the IdP so no new login succeeds (open sessions stay: end them with end_sessions)."""
    return _set_enabled(ctx, account, False)


@action("identity.enable", changes=True, undo="identity.disable", target="account")
def enable(ctx: ActionContext, account: AccountArg) -> IdentityResult:
    """Enable the user at the IdP again (the undo of identity.disable)."""
    return _set_enabled(ctx, account, True)
