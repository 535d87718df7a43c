"""``directory.*`` actions: resolve, snapshot, lock, unlock, force a new password, scramble the password,
remove from groups (and add back), reinstate from the snapshot.

Every change goes through ``ctx.change`` (no-op detection, dry-run, journal, read-back, undo record).
What "locked" and "must change password" mean per product lives in the connector's flavors.
"""

from __future__ import annotations

import fnmatch
import json
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

import structlog
from pydantic import BaseModel, Field

from tourniquet.actions.context import ActionContext
from tourniquet.connectors.directory import Account, Attributes, DirectoryClient, without_secrets
from tourniquet.errors import AccountNotFound, NotFound, UnsafeToChange, VerificationFailed
from tourniquet.journal import index_of, read_journal
from tourniquet.model import canonical_dn
from tourniquet.registry import action
from tourniquet.secrets import register_secret, secret_in_use
from tourniquet.storage import write_once

SYSTEM = "directory"
log = structlog.get_logger("tourniquet")
AccountArg = Annotated[Account, Field(description="A resolved account (an item of steps.<resolve>.accounts).")]

#: Attributes every write changes; they say nothing about the account.
VOLATILE = frozenset(a.lower() for a in (
    "modifyTimestamp", "modifiersName", "entryCSN", "contextCSN", "whenChanged", "uSNChanged", "entryUSN",
    "dSCorePropagationData", "replPropertyMetaData", "nsUniqueId", "entryUUID", "createTimestamp",
    "creatorsName", "structuralObjectClass", "subschemaSubentry", "hasSubordinates", "entryDN", "numSubordinates",
))
SCRAMBLED = "scrambled: nobody knows it"


class ResolveResult(BaseModel):
    accounts: list[Account]
    not_found: list[str] = Field(default_factory=list, description="Ids that name no account (unknown, ambiguous, "
                                 "or an entry that is not a person's account), each with the reason.")


class SnapshotResult(BaseModel):
    """Where the snapshot is, and the state later steps may test; the whole entry is in the file (a 10,000-account
    run keeps every step's results in memory: not 10,000 entries)."""

    account: str
    dn: str
    file: str | None = Field(description="The snapshot file (None in a dry run).")
    attribute_count: int = Field(description="Attributes frozen in the snapshot.")
    state: dict[str, list[str]] = Field(default_factory=dict)
    groups: list[str] = Field(default_factory=list)


class ChangeResult(BaseModel):
    account: str
    dn: str
    outcome: str


class GroupsResult(BaseModel):
    account: str
    dn: str
    outcome: str
    groups: list[str] = Field(description="Groups changed (or that would be) by this call.")


class ReinstateResult(BaseModel):
    account: str
    dn: str
    outcome: str
    restored: dict[str, list[str]]
    groups_added: list[str]
    password_replaced: bool = Field(description="The incident replaced the password: the practitioner needs a reset.")


def _label(account: Account) -> str:
    return account.uid or account.dn


def _file_name(account: Account) -> str:
    return (account.uid or account.dn).replace("/", "_")


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


def _read_entry(directory: DirectoryClient, dn: str) -> Attributes:
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
    attributes = _read_entry(directory, account.dn)
    state = directory.state(account.dn)
    groups = directory.groups_of(account.dn)
    name = _file_name(account)
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
        if write_once(path, json.dumps(document, indent=2, sort_keys=True)):
            ctx.written(path)
            ctx.journal.write("snapshot", step=ctx.step, account=name, dn=account.dn, file=str(path))
            return SnapshotResult(account=name, dn=account.dn, file=str(path), attribute_count=len(attributes), state=state,
                                  groups=groups)
    stored = json.loads(path.read_text(encoding="utf-8"))  # an earlier run's: what the entry was before
    return SnapshotResult(account=name, dn=account.dn, file=str(path), attribute_count=len(stored["attributes"]),
                          state=stored.get("state", {}), groups=stored.get("groups", []))


def _set_state(ctx: ActionContext, account: Account, operation: str, current: Attributes,
               wanted: Attributes) -> ChangeResult:
    directory = ctx.site.directory
    before = {name: current.get(name, []) for name in wanted}
    label = _label(account)
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
    return _set_state(ctx, account, "lock", state, directory.flavor.locked(state))


@action("directory.unlock", changes=True, undo="directory.lock", target="account")
def unlock(ctx: ActionContext, account: AccountArg, restore: RestoreArg = None) -> ChangeResult:
    """Lift the lock (or restore the lock attributes recorded before the incident)."""
    directory = ctx.site.directory
    state = directory.state(account.dn)
    wanted = restore if restore is not None else directory.flavor.unlocked(state)
    return _set_state(ctx, account, "unlock", state, wanted)


@action("directory.force_password_reset", changes=True, undo="directory.clear_password_reset", target="account")
def force_password_reset(ctx: ActionContext, account: AccountArg) -> ChangeResult:
    """Require a new password at next login (the stolen one stops being enough)."""
    directory = ctx.site.directory
    state = directory.state(account.dn)
    return _set_state(ctx, account, "force_password_reset", state, directory.flavor.reset(state, True))


@action("directory.clear_password_reset", changes=True, undo="directory.force_password_reset", target="account")
def clear_password_reset(ctx: ActionContext, account: AccountArg, restore: RestoreArg = None) -> ChangeResult:
    """Remove the must-change-password flag (or restore it as recorded before the incident)."""
    directory = ctx.site.directory
    state = directory.state(account.dn)
    wanted = restore if restore is not None else directory.flavor.reset(state, False)
    return _set_state(ctx, account, "clear_password_reset", state, wanted)


@action("directory.scramble_password", changes=True, target="account")
def scramble_password(ctx: ActionContext, account: AccountArg) -> ChangeResult:
    """Replace the password with a random one nobody sees, so the stolen one is dead even after an unlock.

    Not undoable by design: the old password is never read and its hash never stored (a hash is
    still a secret). After a false alarm the practitioner sets a new password through the site's
    usual reset procedure; ``directory.reinstate`` reports ``password_replaced``. Runs once per
    incident and account: a second run is a no-op.
    """
    directory = ctx.site.directory
    label = _label(account)
    done = ctx.already_applied(label, "scramble_password")
    if not done:
        directory.flavor.check_password_write(directory, account.dn)
    stamp = directory.password_stamp(account.dn)

    def apply() -> None:
        password = secrets.token_urlsafe(32)
        with secret_in_use(password):  # masked even if some library were to log it; then it is gone for good
            directory.set_password(account.dn, password)

    def read_back() -> dict[str, str]:
        now = directory.password_stamp(account.dn)
        if not now:
            return {"password": "cannot be verified: this identity sees neither the password hash nor "
                                f"{'/'.join(directory.flavor.password_stamp_attributes)}"}
        return {"password": SCRAMBLED if now != stamp else "unchanged"}

    outcome = ctx.change(
        system=SYSTEM, target=label, account=label, operation="scramble_password",
        before={"password": SCRAMBLED if done else "the owner's"}, after={"password": SCRAMBLED},
        apply=apply, read_back=read_back, undo=None,
    )
    return ChangeResult(account=label, dn=account.dn, outcome=outcome)


#: Letters and digits nobody misreads on a phone call (no 0/O, 1/l/I).
_READABLE = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
HANDED_OVER = "one-time, given to the operator"


def one_time_password(groups: int = 4, size: int = 4) -> str:
    """Random, readable aloud, and accepted by the usual quality rules (upper, lower, digit, symbol)."""
    while True:
        text = "-".join("".join(secrets.choice(_READABLE) for _ in range(size)) for _ in range(groups))
        if any(c.isupper() for c in text) and any(c.islower() for c in text) and any(c.isdigit() for c in text):
            return text


@action("directory.set_one_time_password", changes=True, target="account")
def set_one_time_password(ctx: ActionContext, account: AccountArg) -> ChangeResult:
    """Give the owner a one-time password that only lets them choose a new one (recover; no undo).

    The password is random, handed once to the operator running the recovery (their terminal, or a
    0600 file they named) and to nobody else: never an argument or a result, never in the journal,
    the logs, the ticket or Prefect. The directory must then demand a new password at first bind
    (pwdReset / pwdLastSet 0): if it does not, the step fails. No undo: the password before it was
    already unknown (scrambled), and a new recovery issues a new one.
    """
    from tourniquet.handover import for_incident

    directory = ctx.site.directory
    label = _label(account)
    box = for_incident(ctx.incident)
    if box is None and not ctx.dry_run:
        raise UnsafeToChange(f"nobody to hand {label}'s one-time password to: run it through `tourniquet recover` "
                             "or the recover flow (terminal or a 0600 password file)", system=SYSTEM)
    directory.flavor.check_password_write(directory, account.dn)
    stamp = directory.password_stamp(account.dn)
    flavor = directory.flavor

    def must_change() -> bool:
        view = directory.state(account.dn)
        try:
            wanted = flavor.reset(view, True)
        except UnsafeToChange:  # 389-DS: not set, and not writable by an administrator
            return False
        return all(view.get(k, []) == v for k, v in wanted.items())

    def apply() -> None:
        assert box is not None
        password = one_time_password()
        register_secret(password)
        directory.set_password(account.dn, password)
        if not must_change():  # e.g. a policy without pwdMustChange: demand it explicitly
            current = directory.state(account.dn)
            directory.apply(account.dn, current, flavor.reset(current, True))
        box.deliver(label, password)

    def read_back() -> dict[str, Any]:
        changed = directory.password_stamp(account.dn) != stamp
        return {"password": HANDED_OVER if changed else "unchanged", "must_change": must_change()}

    where = box.where if box is not None else "the operator"
    outcome = ctx.change(
        system=SYSTEM, target=label, account=label, operation="set_one_time_password",
        before={"password": "scrambled", "must_change": must_change()},
        after={"password": HANDED_OVER, "must_change": True},
        apply=apply, read_back=read_back, undo=None,
    )
    if outcome == "applied":
        ctx.journal.write("handover", step=ctx.step, account=label, where=where)
    return ChangeResult(account=label, dn=account.dn, outcome=outcome)


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
    label = _label(account)
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
    label = _label(account)
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


# --------------------------------------------------------------------------- reinstate


def _comparable(attributes: Attributes, ignore: set[str]) -> dict[str, list[str]]:
    return {k.lower(): sorted(v) for k, v in attributes.items() if k.lower() not in ignore}


def _written_values(records: list[dict[str, Any]], label: str) -> dict[str, list[list[str]]]:
    """Per attribute, every value this incident's applied changes set it to (for this account)."""
    values: dict[str, list[list[str]]] = {}
    for record in records:
        if record.get("type") != "change" or record.get("outcome") != "applied" or record.get("target") != label:
            continue
        for key, value in (record.get("after") or {}).items():
            if isinstance(value, list):
                values.setdefault(key, []).append(value)
    return values


@action("directory.reinstate", changes=True, target="account")
def reinstate(
    ctx: ActionContext,
    account: AccountArg,
    incident: Annotated[str | None, Field(description="Incident whose snapshot to restore (default: this one).")] = None,
    snapshot: Annotated[str | None, Field(description="Snapshot file (default: the incident's snapshot of the account).")] = None,
) -> ReinstateResult:
    """Put the account back exactly as the snapshot recorded it (lock, reset flag, groups).

    No undo of its own: it is the undo of an incident (a new incident locks again if needed).

    Refuses, changing nothing, when the entry changed since the snapshot in a way the incident's
    journal does not explain (someone else edited it): a person must look first.
    """
    directory = ctx.site.directory
    flavor = directory.flavor
    folder = ctx.site.incident_dir(incident or ctx.incident)
    path = Path(snapshot) if snapshot else folder / "snapshots" / f"{_file_name(account)}.json"
    if not path.exists():
        raise NotFound(f"no snapshot of {_label(account)} at {path}: nothing to reinstate from", system=SYSTEM)
    recorded = json.loads(path.read_text(encoding="utf-8"))
    label = _label(account)
    if str(recorded.get("dn", "")).lower() != account.dn.lower():
        raise UnsafeToChange(f"snapshot {path} is of {recorded.get('dn')}, not {account.dn}", system=SYSTEM)
    if recorded.get("flavor", flavor.name) != flavor.name:
        raise UnsafeToChange(f"snapshot {path} was taken on a {recorded['flavor']} directory, this is {flavor.name}",
                             system=SYSTEM)
    records = list(read_journal(folder / "journal.jsonl"))
    written = _written_values(records, label)
    scrambled = bool(index_of(records).applied.get((label, "scramble_password")))
    removed = {str((r.get("before") or {}).get("group")) for r in records
               if r.get("type") == "change" and r.get("outcome") == "applied" and r.get("target") == label
               and r.get("operation") == "remove_group"}

    snap_state: Attributes = recorded.get("state", {})
    snap_groups = {g.lower(): g for g in recorded.get("groups", [])}
    restore_keys = [k for k in flavor.lock_keys + flavor.reset_keys + flavor.extra_restore_keys
                    if k in snap_state and k not in flavor.read_only_keys]

    ignore = set(VOLATILE) | {a.lower() for a in flavor.activity_attributes} | {"memberof"}
    ignore |= {k.lower() for k in flavor.state_attributes}
    if scrambled:
        ignore |= {a.lower() for a in flavor.password_stamp_attributes}

    current_state = directory.state(account.dn)
    current_groups = {g.lower(): g for g in directory.groups_of(account.dn)}
    unexplained: list[str] = []
    for key in flavor.state_attributes:
        if key in flavor.extra_restore_keys:  # e.g. AD lockoutTime: set by failed logins, not by people
            continue
        now, then = current_state.get(key, []), snap_state.get(key, [])
        if now != then and now not in written.get(key, []) and not (scrambled and key in flavor.set_by_password_change):
            unexplained.append(f"{key} is {now or 'absent'} (snapshot: {then or 'absent'}) and this incident did not set it")
    for group in sorted(set(current_groups) - set(snap_groups)):
        unexplained.append(f"now a member of {current_groups[group]}, which the snapshot does not list")
    for group in sorted(set(snap_groups) - set(current_groups) - removed):
        unexplained.append(f"no longer a member of {snap_groups[group]}, and this incident did not remove it")
    then_entry = _comparable(recorded.get("attributes", {}), ignore)
    now_entry = _comparable(_read_entry(directory, account.dn), ignore)
    for name in sorted(set(then_entry) | set(now_entry)):
        if then_entry.get(name) != now_entry.get(name):
            unexplained.append(f"{name} changed since the snapshot")
    if unexplained:
        raise UnsafeToChange(f"refusing to reinstate {label} from {path.name}: the entry changed in ways the snapshot "
                             "cannot explain — " + "; ".join(unexplained), system=SYSTEM)

    wanted = {k: snap_state.get(k, []) for k in restore_keys}
    outcomes = [_set_state(ctx, account, "reinstate", current_state, wanted).outcome]
    added: list[str] = []
    for group in sorted(set(snap_groups) - set(current_groups)):
        original = snap_groups[group]
        outcomes.append(ctx.change(
            system=SYSTEM, target=label, account=label, operation="add_group",
            before={"group": group, "member": False}, after={"group": group, "member": True},
            apply=lambda g=original: directory.add_member(g, account.dn),  # type: ignore[misc]
            read_back=lambda g=group: {"group": g, "member": g in  # type: ignore[misc]
                                       {x.lower() for x in directory.groups_of(account.dn)}},
        ))
        added.append(original)

    if not ctx.dry_run:  # attribute for attribute, as the snapshot recorded it
        final_state = directory.state(account.dn)
        differences = [k for k in restore_keys if final_state.get(k, []) != snap_state.get(k, [])]
        if {g.lower() for g in directory.groups_of(account.dn)} != set(snap_groups):
            differences.append("groups")
        if _comparable(_read_entry(directory, account.dn), ignore) != then_entry:
            differences.append("attributes")
        if differences:
            raise VerificationFailed(f"reinstated {label}, but {', '.join(differences)} still differ from the snapshot",
                                     system=SYSTEM)
    outcome = "applied" if "applied" in outcomes else ("planned" if "planned" in outcomes else "noop")
    return ReinstateResult(account=label, dn=account.dn, outcome=outcome, restored=wanted, groups_added=added,
                           password_replaced=scrambled)
