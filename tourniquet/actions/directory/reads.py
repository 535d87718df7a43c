"""The ``directory.*`` actions that change nothing: resolve ids into accounts, freeze an entry as evidence.

``directory.resolve`` refuses unknown, ambiguous and non-person ids by name (the rules are the
connector's, :mod:`tourniquet.connectors.directory.accounts`); ``directory.snapshot`` writes the entry
as it was before the incident's changes, once, and never a password or hash (:func:`read_entry`).

May import: ``actions.context``, ``actions.directory.models``, ``connectors.directory``, ``registry``,
``storage``, ``model``, ``tourniquet.errors``. Imported by: ``actions.directory`` (registration),
``actions.directory.reinstate`` (:func:`read_entry`).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Annotated, Literal

import structlog
from pydantic import Field

from tourniquet.actions.context import ActionContext
from tourniquet.actions.directory.models import (
    SYSTEM,
    AccountArg,
    ResolveResult,
    SnapshotResult,
    account_file_name,
)
from tourniquet.connectors.directory import Account, Attributes, DirectoryClient, without_secrets
from tourniquet.errors import AccountNotFound, NotFound
from tourniquet.model import canonical_dn
from tourniquet.registry import action
from tourniquet.storage import write_once

__all__ = ["resolve", "snapshot", "read_entry"]

log = structlog.get_logger("tourniquet")


@action("directory.resolve")
def resolve(
    ctx: ActionContext,
    ids: Annotated[list[str], Field(description="uid, RPPS number (or 8+RPPS), e-mail or DN of each account.")],
    on_unknown: Annotated[
        Literal["continue", "stop"],
        Field(description="continue: an unknown, ambiguous or refused id is reported, the other accounts are "
                          "handled and the run ends 'completed with errors'; stop: any such id stops the run "
                          "before anything changes."),
    ] = "continue",
) -> ResolveResult:
    """Find exactly one person's account for each id: unknown, ambiguous and non-person ids are refused by name.

    An OU, group, policy or service entry is never an account, whatever the id's form. An empty
    list, or one of blanks only, is an error: there is nothing to contain.
    """
    wanted = [i for i in ids if i.strip()]
    if not wanted:
        raise AccountNotFound(f"no account given ({len(ids)} blank id(s)): name at least one uid, RPPS number, "
                              "e-mail or DN", system=SYSTEM)
    accounts: dict[str, Account] = {}
    refused: dict[str, str] = {}  # id → why
    for identifier, found in ctx.site.directory.resolve_many(wanted).items():
        if isinstance(found, NotFound):  # unknown, ambiguous, or not a person's account
            refused[identifier] = found.detail
            continue
        accounts.setdefault(canonical_dn(found.dn), found)  # one entry, however its DN was spelled
    problems = [f"{identifier!r}: {why}" if identifier not in why else why for identifier, why in refused.items()]
    if problems and (on_unknown == "stop" or not accounts):
        why = "on_unknown: stop" if accounts else "no id named an account"
        raise AccountNotFound(f"{'; '.join(problems)} ({why}: nothing was changed)", system=SYSTEM)
    for identifier, problem in zip(refused, problems):
        ctx.report_problem(identifier, f"refused: {problem}", kind="AccountNotFound", account=identifier)
        log.warning("account.refused", id=identifier, reason=problem)
    ctx.journal.write("resolved", step=ctx.step, accounts=[a.model_dump() for a in accounts.values()],
                      not_found=problems)
    return ResolveResult(accounts=list(accounts.values()), not_found=problems)


def read_entry(directory: DirectoryClient, dn: str) -> Attributes:
    """The entry as evidence sees it: user and operational attributes, never a password or hash."""
    names = ["*", "+", *directory.flavor.snapshot_attributes]
    attributes = directory.read(dn, list(dict.fromkeys(names)))
    if attributes is None:
        raise AccountNotFound(f"no entry {dn!r}", system=SYSTEM)
    return without_secrets(attributes)


@action("directory.snapshot")
def snapshot(ctx: ActionContext, account: AccountArg) -> SnapshotResult:
    """Freeze the entry (operational attributes, lock state, groups) in the evidence before anything changes."""
    directory = ctx.site.directory
    attributes = read_entry(directory, account.dn)
    state = directory.state(account.dn)
    groups = directory.groups_of(account.dn)
    name = account_file_name(account)
    if ctx.dry_run:
        return SnapshotResult(account=name, dn=account.dn, file=None, attribute_count=len(attributes), state=state,
                              groups=groups)
    folder = ctx.site.incident_dir(ctx.incident) / "snapshots"
    path = folder / f"{name}.json"
    document = {"dn": account.dn, "uid": account.uid, "flavor": directory.flavor.name,
                "taken": datetime.now(timezone.utc).isoformat(), "attributes": attributes,
                "state": state, "groups": groups}
    if not path.exists():  # the first snapshot is the state before the incident's changes: keep it
        folder.mkdir(parents=True, exist_ok=True)
        # One line (json's C encoder): pretty-printing 1,000 entries cost more than reading them.
        if write_once(path, json.dumps(document, sort_keys=True, ensure_ascii=False) + "\n"):
            ctx.written(path)
            ctx.journal.write("snapshot", step=ctx.step, account=name, dn=account.dn, file=str(path))
            return SnapshotResult(account=name, dn=account.dn, file=str(path), attribute_count=len(attributes), state=state,
                                  groups=groups)
    stored = json.loads(path.read_text(encoding="utf-8"))  # an earlier run's: what the entry was before
    return SnapshotResult(account=name, dn=account.dn, file=str(path), attribute_count=len(stored["attributes"]),
                          state=stored.get("state", {}), groups=stored.get("groups", []))
