"""The reversible ``directory.*`` changes: lock and unlock, force and clear a password reset, leave and rejoin groups.

Each is one ``ctx.change`` (one per group for groups) with its exact undo: what "locked" and "must
change password" mean per product is the connector's flavor's business; :func:`set_state` takes the
flavor's state view from what it is to what is wanted, recording the values before for the undo.

May import: ``actions.context``, ``actions.directory.models``, ``connectors.directory``, ``registry``.
Imported by: ``actions.directory`` (registration), ``actions.directory.reinstate`` (:func:`set_state`).
"""

from __future__ import annotations

import fnmatch
from typing import Annotated, Any

from pydantic import Field

from tourniquet.actions.context import ActionContext, Outcome
from tourniquet.actions.directory.models import SYSTEM, AccountArg, ChangeResult, GroupsResult, account_label
from tourniquet.connectors.directory import Account, Attributes
from tourniquet.registry import action

__all__ = ["set_state", "lock", "unlock", "force_password_reset", "clear_password_reset", "remove_groups",
           "add_groups"]


def set_state(ctx: ActionContext, account: Account, operation: str, current: Attributes,
              wanted: Attributes, implied_by: str = "") -> ChangeResult:
    """Send what takes the state view from ``current`` to ``wanted``; the undo restores the values before.

    ``implied_by``: an earlier change of this run set ``wanted`` by itself (recorded with the no-op).
    """
    directory = ctx.site.directory
    before = {name: current.get(name, []) for name in wanted}
    label = account_label(account)
    outcome = ctx.change(
        system=SYSTEM,
        target=label,
        account=label,
        operation=operation,
        before=before,
        after=wanted,
        apply=lambda: directory.apply(account.dn, current, wanted),
        read_back=lambda: {name: directory.state(account.dn).get(name, []) for name in wanted},
        undo=ctx.undo_call({"account": account.model_dump(), "restore": before}),
        implied_by=implied_by if before == wanted else "",
    )
    return ChangeResult(account=label, dn=account.dn, outcome=outcome)


RestoreArg = Annotated[
    dict[str, list[str]] | None,
    Field(description="Exact prior values to restore (written by the journal's undo record)."),
]


@action("directory.lock", changes=True, undo="directory.unlock", target="account")
def lock(ctx: ActionContext, account: AccountArg) -> ChangeResult:
    """Lock the account so that no new login succeeds (fails if the directory would ignore the lock).

    The result's ``remains`` says what a lock does not end on this directory (Active Directory:
    Kerberos tickets and NTLM sessions already issued).
    """
    directory = ctx.site.directory
    state = directory.state(account.dn)
    directory.flavor.check_lock_effective(directory, account.dn, state)
    result = set_state(ctx, account, "lock", state, directory.flavor.locked(state))
    if not ctx.dry_run:
        result.remains = list(directory.flavor.remains_after_lock)
    return result


@action("directory.unlock", changes=True, undo="directory.lock", target="account")
def unlock(ctx: ActionContext, account: AccountArg, restore: RestoreArg = None) -> ChangeResult:
    """Lift the lock (or restore the lock attributes recorded before the incident)."""
    directory = ctx.site.directory
    state = directory.state(account.dn)
    wanted = restore if restore is not None else directory.flavor.unlocked(state)
    return set_state(ctx, account, "unlock", state, wanted)


@action("directory.force_password_reset", changes=True, undo="directory.clear_password_reset", target="account")
def force_password_reset(ctx: ActionContext, account: AccountArg) -> ChangeResult:
    """Require a new password at next login (the stolen one stops being enough).

    After this run's ``scramble_password``, on a directory whose policy demands a new password after an
    administrator's change, the flag is already set by the scramble: plan and run both say so.
    """
    flavor = ctx.site.directory.flavor
    state = ctx.site.directory.state(account.dn)
    implied = _implied_reset(ctx, account, state)
    if implied and ctx.dry_run and not ctx.planning:  # as the scramble will leave it when this step runs
        state = {**state, **{key: ["TRUE"] for key in flavor.reset_keys}}  # pwdReset (OpenLDAP, 389-DS)
    return set_state(ctx, account, "force_password_reset", state, flavor.reset(state, True), implied)


def _implied_reset(ctx: ActionContext, account: Account, state: Attributes) -> str:
    """The earlier change of this run that sets the reset flag by itself ("" if none): a one-time password
    (set_one_time_password demands the change itself), or the scramble on a directory whose policy does."""
    label = account_label(account)
    if ctx.already_applied(label, "force_password_reset"):
        return ""
    planning = ctx.dry_run and not ctx.planning
    done = ctx.already_planned if planning else ctx.already_applied
    if done(label, "set_one_time_password"):
        return "set_one_time_password"
    directory = ctx.site.directory
    if done(label, "scramble_password") and directory.flavor.password_change_forces_reset(directory, account.dn, state):
        return "scramble_password"
    return ""


@action("directory.clear_password_reset", changes=True, undo="directory.force_password_reset", target="account")
def clear_password_reset(ctx: ActionContext, account: AccountArg, restore: RestoreArg = None) -> ChangeResult:
    """Remove the must-change-password flag (or restore it as recorded before the incident)."""
    directory = ctx.site.directory
    state = directory.state(account.dn)
    wanted = restore if restore is not None else directory.flavor.reset(state, False)
    return set_state(ctx, account, "clear_password_reset", state, wanted)


def _matching(groups: list[str], patterns: list[str]) -> list[str]:
    wanted = [p.strip().lower() for p in patterns]
    return sorted(g for g in groups if any(fnmatch.fnmatchcase(g.lower(), p) for p in wanted))


def _membership(ctx: ActionContext, account: Account, group: str, *, member: bool, was: bool,
                undo: dict[str, Any] | None = None) -> Outcome:
    """One group's membership changed from ``was`` to ``member``, read back from the groups the account is in."""
    directory = ctx.site.directory
    label, name = account_label(account), group.lower()
    send = directory.add_member if member else directory.remove_member
    return ctx.change(
        system=SYSTEM, target=label, account=label, operation="add_group" if member else "remove_group",
        before={"group": name, "member": was}, after={"group": name, "member": member},
        apply=lambda: send(group, account.dn),
        read_back=lambda: {"group": name, "member": name in {g.lower() for g in directory.groups_of(account.dn)}},
        undo=undo,
    )


@action("directory.remove_groups", changes=True, undo="directory.add_groups", target="account")
def remove_groups(
    ctx: ActionContext,
    account: AccountArg,
    patterns: Annotated[list[str], Field(description="Group DN globs, e.g. 'cn=chu-*,ou=groups,*' or 'cn=admins,*'.")],
) -> GroupsResult:
    """Take the account out of the groups matching the patterns; each removal is recorded to be put back."""
    directory = ctx.site.directory
    label = account_label(account)
    matching = _matching(directory.groups_of(account.dn), patterns)
    if not matching:
        outcome = ctx.change(system=SYSTEM, target=label, account=label, operation="remove_groups",
                             before={"groups": []}, after={"groups": []}, apply=lambda: None)
        return GroupsResult(account=label, dn=account.dn, outcome=outcome, groups=[])
    # one change per group: a failure half-way leaves an exact record of the rest
    outcomes = [_membership(ctx, account, group, member=False, was=True,
                            undo=ctx.undo_call({"account": account.model_dump(), "groups": [group]}))
                for group in matching]
    outcome = "applied" if "applied" in outcomes else outcomes[0]
    return GroupsResult(account=label, dn=account.dn, outcome=outcome, groups=matching)


@action("directory.add_groups", changes=True, target="account")
def add_groups(
    ctx: ActionContext,
    account: AccountArg,
    groups: Annotated[list[str], Field(description="Group DNs to put the account back in.")],
) -> GroupsResult:
    """Put the account back in these groups (the undo of directory.remove_groups)."""
    directory = ctx.site.directory
    label = account_label(account)
    current = {g.lower() for g in directory.groups_of(account.dn)}
    outcomes = [_membership(ctx, account, group, member=True, was=group.lower() in current)
                for group in sorted(groups)]
    outcome = "applied" if "applied" in outcomes else (outcomes[0] if outcomes else "noop")
    return GroupsResult(account=label, dn=account.dn, outcome=outcome, groups=sorted(groups))
