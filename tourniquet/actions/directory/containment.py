"""The reversible ``directory.*`` changes: lock and unlock, force and clear a password reset, leave and rejoin groups.

Each is one ``ctx.change`` (one per group for groups) with its exact undo: what "locked" and "must
change password" mean per product is the connector's flavor's business; :func:`set_state` takes the
flavor's state view from what it is to what is wanted, recording the values before for the undo.

May import: ``actions.context``, ``actions.directory.models``, ``connectors.directory``, ``registry``.
Imported by: ``actions.directory`` (registration), ``actions.directory.reinstate`` (:func:`set_state`).
"""

from __future__ import annotations

import fnmatch
from typing import Annotated

from pydantic import Field

from tourniquet.actions.context import ActionContext
from tourniquet.actions.directory.models import SYSTEM, AccountArg, ChangeResult, GroupsResult, account_label
from tourniquet.connectors.directory import Account, Attributes
from tourniquet.registry import action

__all__ = ["set_state", "lock", "unlock", "force_password_reset", "clear_password_reset", "remove_groups",
           "add_groups"]


def set_state(ctx: ActionContext, account: Account, operation: str, current: Attributes,
              wanted: Attributes) -> ChangeResult:
    """Send what takes the state view from ``current`` to ``wanted``; the undo restores the values before."""
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
    )
    return ChangeResult(account=label, dn=account.dn, outcome=outcome)


RestoreArg = Annotated[
    dict[str, list[str]] | None,
    Field(description="Exact prior values to restore (written by the journal's undo record)."),
]


@action("directory.lock", changes=True, undo="directory.unlock", target="account")
def lock(ctx: ActionContext, account: AccountArg) -> ChangeResult:
    """Lock the account so that no new login succeeds (fails if the directory would ignore the lock)."""
    directory = ctx.site.directory
    state = directory.state(account.dn)
    directory.flavor.check_lock_effective(directory, account.dn, state)
    return set_state(ctx, account, "lock", state, directory.flavor.locked(state))


@action("directory.unlock", changes=True, undo="directory.lock", target="account")
def unlock(ctx: ActionContext, account: AccountArg, restore: RestoreArg = None) -> ChangeResult:
    """Lift the lock (or restore the lock attributes recorded before the incident)."""
    directory = ctx.site.directory
    state = directory.state(account.dn)
    wanted = restore if restore is not None else directory.flavor.unlocked(state)
    return set_state(ctx, account, "unlock", state, wanted)


@action("directory.force_password_reset", changes=True, undo="directory.clear_password_reset", target="account")
def force_password_reset(ctx: ActionContext, account: AccountArg) -> ChangeResult:
    """Require a new password at next login (the stolen one stops being enough)."""
    directory = ctx.site.directory
    state = directory.state(account.dn)
    return set_state(ctx, account, "force_password_reset", state, directory.flavor.reset(state, True))


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
    outcomes = []
    for group in matching:  # one change per group: a failure half-way leaves an exact record of the rest
        outcomes.append(ctx.change(
            system=SYSTEM, target=label, account=label, operation="remove_group",
            before={"group": group.lower(), "member": True}, after={"group": group.lower(), "member": False},
            apply=lambda g=group: directory.remove_member(g, account.dn),  # type: ignore[misc]
            read_back=lambda g=group: {"group": g.lower(), "member": g.lower() in  # type: ignore[misc]
                                       {x.lower() for x in directory.groups_of(account.dn)}},
            undo=ctx.undo_call({"account": account.model_dump(), "groups": [group]}),
        ))
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
    outcomes = []
    for group in sorted(groups):
        outcomes.append(ctx.change(
            system=SYSTEM, target=label, account=label, operation="add_group",
            before={"group": group.lower(), "member": group.lower() in current},
            after={"group": group.lower(), "member": True},
            apply=lambda g=group: directory.add_member(g, account.dn),  # type: ignore[misc]
            read_back=lambda g=group: {"group": g.lower(), "member": g.lower() in  # type: ignore[misc]
                                       {x.lower() for x in directory.groups_of(account.dn)}},
        ))
    outcome = "applied" if "applied" in outcomes else (outcomes[0] if outcomes else "noop")
    return GroupsResult(account=label, dn=account.dn, outcome=outcome, groups=sorted(groups))
