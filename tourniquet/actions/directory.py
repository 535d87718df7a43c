"""``directory.*`` actions: resolve, snapshot, lock, unlock, force a password reset."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from tourniquet.connectors.directory import Account
from tourniquet.errors import AccountNotFound, AmbiguousAccount, NotFound
from tourniquet.flows.context import ActionContext
from tourniquet.flows.guardrails import canonical_dn
from tourniquet.registry import action

SYSTEM = "directory"
AccountArg = Annotated[Account, Field(description="A resolved account (an item of steps.<resolve>.accounts).")]


class ResolveResult(BaseModel):
    accounts: list[Account]
    not_found: list[str] = Field(default_factory=list)


class SnapshotResult(BaseModel):
    account: str
    dn: str
    file: str | None
    attributes: dict[str, list[str]]


class ChangeResult(BaseModel):
    account: str
    dn: str
    outcome: str


@action("directory.resolve")
def resolve(
    ctx: ActionContext,
    ids: Annotated[list[str], Field(description="uid, RPPS number (or 8+RPPS), e-mail or DN of each account.")],
    missing: Annotated[
        Literal["fail", "skip"], Field(description="fail: an unknown id stops the run; skip: it is reported.")
    ] = "fail",
) -> ResolveResult:
    """Find exactly one directory entry for each id; unknown and ambiguous ids are errors."""
    accounts: dict[str, Account] = {}
    not_found: list[str] = []
    problems: list[str] = []
    for identifier in ids:
        try:
            account = ctx.site.directory.resolve(identifier)
        except AmbiguousAccount as exc:
            problems.append(exc.detail)
            continue
        except NotFound as exc:
            if missing == "skip":
                not_found.append(identifier)
                continue
            problems.append(exc.detail)
            continue
        accounts.setdefault(canonical_dn(account.dn), account)  # one entry, however its DN was spelled
    if problems:
        raise AccountNotFound("; ".join(problems), system=SYSTEM)
    ctx.journal.write("resolved", step=ctx.step, accounts=[a.model_dump() for a in accounts.values()],
                      not_found=not_found)
    return ResolveResult(accounts=list(accounts.values()), not_found=not_found)


@action("directory.snapshot")
def snapshot(ctx: ActionContext, account: AccountArg) -> SnapshotResult:
    """Freeze the entry, operational attributes included, in the evidence before anything changes."""
    attributes = ctx.site.directory.read(account.dn, ["*", "+"]) or {}
    attributes.pop("userPassword", None)  # a hash is still a secret: never in evidence
    name = (account.uid or account.dn).replace("/", "_")
    if ctx.dry_run:
        return SnapshotResult(account=name, dn=account.dn, file=None, attributes=attributes)
    folder = ctx.site.incident_dir(ctx.incident) / "snapshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    if not path.exists():  # the first snapshot is the state before the incident's changes: keep it
        path.write_text(json.dumps({"dn": account.dn, "attributes": attributes}, indent=2, sort_keys=True),
                        encoding="utf-8")
        ctx.journal.write("snapshot", step=ctx.step, account=name, dn=account.dn, file=str(path))
    stored = json.loads(path.read_text(encoding="utf-8"))
    return SnapshotResult(account=name, dn=account.dn, file=str(path), attributes=stored["attributes"])


def _set_state(ctx: ActionContext, account: Account, operation: str, wanted: dict[str, list[str]]) -> ChangeResult:
    directory = ctx.site.directory
    current = directory.state(account.dn)
    before = {name: current.get(name, []) for name in wanted}
    label = account.uid or account.dn
    outcome = ctx.change(
        system=SYSTEM,
        target=label,
        account=label,
        operation=operation,
        before=before,
        after=wanted,
        apply=lambda: directory.replace(account.dn, wanted),
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
    return _set_state(ctx, account, "lock", directory.flavor.lock_changes(state))


@action("directory.unlock", changes=True, undo="directory.lock", target="account")
def unlock(ctx: ActionContext, account: AccountArg, restore: RestoreArg = None) -> ChangeResult:
    """Lift the lock (or restore the lock attributes recorded before the incident)."""
    directory = ctx.site.directory
    wanted = restore if restore is not None else directory.flavor.unlock_changes(directory.state(account.dn))
    return _set_state(ctx, account, "unlock", wanted)


@action("directory.force_password_reset", changes=True, undo="directory.clear_password_reset", target="account")
def force_password_reset(ctx: ActionContext, account: AccountArg) -> ChangeResult:
    """Require a new password at next login (the stolen one stops being enough)."""
    directory = ctx.site.directory
    return _set_state(ctx, account, "force_password_reset",
                      directory.flavor.reset_changes(directory.state(account.dn), True))


@action("directory.clear_password_reset", changes=True, undo="directory.force_password_reset", target="account")
def clear_password_reset(ctx: ActionContext, account: AccountArg, restore: RestoreArg = None) -> ChangeResult:
    """Remove the must-change-password flag (or restore it as recorded before the incident)."""
    directory = ctx.site.directory
    wanted = restore if restore is not None else directory.flavor.reset_changes(directory.state(account.dn), False)
    return _set_state(ctx, account, "clear_password_reset", wanted)
