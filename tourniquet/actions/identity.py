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
from tourniquet.connectors.identity import IdentityClient, IdentitySession, IdentityUser, TokenPolicy
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
    ctx: ActionContext, account: AccountArg, actions: ActionsArg = ["UPDATE_PASSWORD", "CONFIGURE_TOTP"],  # noqa: B006
    missing: MissingArg = "fail",
) -> IdentityResult:
    """Require a new password and MFA enrolment at next login (merged into the user's list; undo removes only these)."""
    client = _client(ctx)
    if client is None:
        return _skipped(ctx, account, NO_IDP)
    found = _find(ctx, client, account, missing)
    if found is None:
        return IdentityResult(account=_label(account), provider=client.kind, outcome="skipped",
                              message="not found at the identity provider")
    user = client.get_user(found)
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


def _set_enabled(ctx: ActionContext, account: AccountArg, enabled: bool, missing: str = "fail") -> IdentityResult:
    client = _client(ctx)
    if client is None:
        return _skipped(ctx, account, NO_IDP)
    found = _find(ctx, client, account, missing)
    if found is None:
        return IdentityResult(account=_label(account), provider=client.kind, outcome="skipped",
                              message="not found at the identity provider")
    user = client.get_user(found)
    if not enabled and "federation" in client.capabilities:  # evidence: which brokered identity this user is
        links = client.federated_links(user)
        ctx.journal.write("federated", step=ctx.step, system=SYSTEM, account=_label(account), user=user.username,
                          links=[link.model_dump() for link in links])
    return _change(
        ctx, client, account, user, "enable" if enabled else "disable",
        {"enabled": user.enabled}, {"enabled": enabled},
        lambda: client.set_enabled(user, enabled),
        lambda: {"enabled": client.get_user(user).enabled},
        ctx.undo_call({"account": account.model_dump()}),
        "" if enabled else "disabling does not end open sessions: use identity.end_sessions too",
    )


@action("identity.disable", changes=True, undo="identity.enable", target="account")
def disable(ctx: ActionContext, account: AccountArg, missing: MissingArg = "fail") -> IdentityResult:
    """Disable the user at the IdP so no new login succeeds (never deleted: a brokered user would come back).

    Open sessions stay: end them with identity.end_sessions. A user brokered from Pro Santé Connect
    is disabled rather than deleted or unlinked, because first-broker-login would create or link it
    again at the next PSC login.
    """
    return _set_enabled(ctx, account, False, missing)


@action("identity.enable", changes=True, undo="identity.disable", target="account")
def enable(ctx: ActionContext, account: AccountArg, missing: MissingArg = "fail") -> IdentityResult:
    """Enable the user at the IdP again (recover, or the undo of identity.disable)."""
    return _set_enabled(ctx, account, True, missing)


#: Credential types that are a second factor (a password is not, and is handled by the directory).
SECOND_FACTORS = ["otp", "webauthn", "webauthn-passwordless"]


@action("identity.remove_second_factors", changes=True, target="account")
def remove_second_factors(
    ctx: ActionContext,
    account: AccountArg,
    types: Annotated[list[str], Field(description="Credential types to remove: otp (TOTP/HOTP apps), webauthn, "
                                      "webauthn-passwordless (security keys, passkeys).")] = SECOND_FACTORS,  # noqa: B006
    missing: MissingArg = "fail",
) -> IdentityResult:
    """Remove the user's second factors (an attacker may have enrolled their own), so the owner enrols anew (no undo).

    Pair it with identity.require_actions [CONFIGURE_TOTP]: the owner then enrols a new second factor
    at the next login. No undo: a removed credential's secret is gone from the IdP by design.
    """
    client = _client(ctx)
    if client is None:
        return _skipped(ctx, account, NO_IDP)
    user = _find(ctx, client, account, missing)
    if user is None:
        return IdentityResult(account=_label(account), provider=client.kind, outcome="skipped",
                              message="not found at the identity provider")
    wanted = {t.lower() for t in types}

    def held() -> list[str]:
        return sorted(f"{c.type}:{c.id}" for c in client.credentials(user) if c.type.lower() in wanted)

    present = held()

    def apply() -> None:
        for entry in present:
            client.remove_credential(user, entry.split(":", 1)[1])

    return _change(ctx, client, account, user, "remove_second_factors", {"second_factors": present},
                   {"second_factors": []}, apply, lambda: {"second_factors": held()}, None)


class RevocationResult(BaseModel):
    """The not-before push, and what no one can end: tokens already issued, the brokered provider's session."""

    provider: str | None = None
    outcome: str = "skipped"
    pushed_to: list[str] = Field(default_factory=list, description="Clients that accept a not-before push.")
    refused_by: list[str] = Field(default_factory=list)
    access_token_lifespan: int | None = Field(None, description="Seconds (realm accessTokenLifespan).")
    residual_seconds: int | None = Field(None, description="The longest any access token already issued stays "
                                         "valid (realm or client lifespan).")
    remains: list[str] = Field(default_factory=list, description="What the platform cannot end, in plain words.")


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0 and seconds >= 3600:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0 and seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def residual_window(policy: TokenPolicy) -> str:
    """The residual window, said the way a responder repeats it on the phone."""
    text = (f"Access tokens issued before the containment stay valid until they expire: up to "
            f"{_duration(policy.longest_client_lifespan)} (the realm's access token lifespan is "
            f"{_duration(policy.access_token_lifespan)}")
    if policy.clients_overriding:
        text += "; clients with their own: " + ", ".join(
            f"{name} {_duration(value)}" for name, value in sorted(policy.clients_overriding.items()))
    return text + "). Clients that check tokens offline (JWT signature only) cannot be told sooner."


@action("identity.push_revocation", changes=True)
def push_revocation(ctx: ActionContext) -> RevocationResult:
    """Push the realm's not-before to the clients that accept it, and say what remains open (no undo).

    Reads the realm's access token lifespan (and clients' own) from the IdP: that is how long an
    access token issued before the containment stays usable. With a brokered provider
    (``identity.broker_alias``, e.g. Pro Santé Connect) it also says that its session cannot be
    ended by the platform, and what the practitioner should do. No undo: a not-before only
    refuses tokens issued earlier.
    """
    client = _client(ctx)
    if client is None:
        return RevocationResult(remains=[f"{NO_IDP}: no identity provider session or token to revoke."])
    remains: list[str] = []
    config = ctx.site.config.identity
    broker = config.broker_alias if config is not None else None
    if broker:
        name = config.broker_name if config is not None else broker
        remains.append(
            f"The {name} session ({broker}) cannot be ended by the platform: {name} owns it, so whoever holds "
            f"the practitioner's {name} credentials can still sign in there (the platform now refuses them: "
            f"the user is disabled). Advise the practitioner to renew their e-CPS (and to report a lost or "
            f"lent CPS card) before the account is given back.")
    if "tokens" not in client.capabilities:
        remains.insert(0, f"{client.kind} cannot say how long issued tokens stay valid: tokens issued before the "
                          "containment stay usable until they expire.")
        return RevocationResult(provider=client.kind, remains=remains)
    policy = client.token_policy()
    remains.insert(0, residual_window(policy))
    ctx.journal.write("residual", step=ctx.step, system=SYSTEM, provider=client.kind,
                      access_token_lifespan=policy.access_token_lifespan,
                      residual_seconds=policy.longest_client_lifespan, broker=broker, remains=remains)
    result = RevocationResult(provider=client.kind, pushed_to=policy.clients_accepting_push,
                              access_token_lifespan=policy.access_token_lifespan,
                              residual_seconds=policy.longest_client_lifespan, remains=remains)
    if not policy.clients_accepting_push:
        result.remains.append("No client of the realm accepts a not-before push (none has an admin URL): "
                              "nothing to push.")
        return result
    pushed: dict[str, Any] = {}

    def apply() -> None:
        pushed["result"] = client.push_revocation()

    def read_back() -> dict[str, Any]:
        answer = pushed.get("result")
        return {"not_before_pushed": answer is not None, "refused_by": sorted(answer.failed) if answer else []}

    target = f"realm:{getattr(config, 'realm', '') or client.kind}"
    try:
        result.outcome = ctx.change(system=SYSTEM, target=target, operation="push_revocation",
                                    before={"not_before_pushed": False, "refused_by": []},
                                    after={"not_before_pushed": True, "refused_by": []},
                                    apply=apply, read_back=read_back, account=None)
    except VerificationFailed as exc:
        raise VerificationFailed(f"the not-before push was refused by some clients ({exc.detail}): their "
                                 "tokens stay valid until they expire", system=SYSTEM) from exc
    return result
