"""``directory.reinstate``: put an account back exactly as its snapshot recorded it, or refuse and change nothing.

The undo of a whole incident. Before anything is sent, the entry now is compared with the snapshot:
every difference must be one this incident's journal explains (its own changes, a password it
scrambled); anything else means someone else edited the entry, and a person must look first. After,
the entry is read again and must match the snapshot attribute for attribute.

May import: ``actions.context``, ``actions.directory.models``, ``actions.directory.reads``
(:func:`read_entry`), ``actions.directory.containment`` (:func:`set_state`), ``connectors.directory``,
``journal``, ``registry``, ``tourniquet.errors``. Imported by: ``actions.directory`` (registration).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from tourniquet.actions.context import ActionContext
from tourniquet.actions.directory.containment import set_state
from tourniquet.actions.directory.models import SYSTEM, AccountArg, ReinstateResult, account_file_name, account_label
from tourniquet.actions.directory.reads import read_entry
from tourniquet.connectors.directory import Attributes
from tourniquet.errors import NotFound, UnsafeToChange, VerificationFailed
from tourniquet.journal import index_of, read_journal
from tourniquet.registry import action

__all__ = ["reinstate", "VOLATILE"]

#: Attributes every write changes; they say nothing about the account.
VOLATILE = frozenset(a.lower() for a in (
    "modifyTimestamp", "modifiersName", "entryCSN", "contextCSN", "whenChanged", "uSNChanged", "entryUSN",
    "dSCorePropagationData", "replPropertyMetaData", "nsUniqueId", "entryUUID", "createTimestamp",
    "creatorsName", "structuralObjectClass", "subschemaSubentry", "hasSubordinates", "entryDN", "numSubordinates",
))


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
    path = Path(snapshot) if snapshot else folder / "snapshots" / f"{account_file_name(account)}.json"
    if not path.exists():
        raise NotFound(f"no snapshot of {account_label(account)} at {path}: nothing to reinstate from", system=SYSTEM)
    recorded = json.loads(path.read_text(encoding="utf-8"))
    label = account_label(account)
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
    ignore.add(flavor.dn_attribute.lower())  # the entry's own DN (AD distinguishedName): a batched read leaves it out
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
    now_entry = _comparable(read_entry(directory, account.dn), ignore)
    for name in sorted(set(then_entry) | set(now_entry)):
        if then_entry.get(name) != now_entry.get(name):
            unexplained.append(f"{name} changed since the snapshot")
    if unexplained:
        raise UnsafeToChange(f"refusing to reinstate {label} from {path.name}: the entry changed in ways the snapshot "
                             "cannot explain — " + "; ".join(unexplained), system=SYSTEM)

    wanted = {k: snap_state.get(k, []) for k in restore_keys}
    outcomes = [set_state(ctx, account, "reinstate", current_state, wanted).outcome]
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
        if _comparable(read_entry(directory, account.dn), ignore) != then_entry:
            differences.append("attributes")
        if differences:
            raise VerificationFailed(f"reinstated {label}, but {', '.join(differences)} still differ from the snapshot",
                                     system=SYSTEM)
    outcome = "applied" if "applied" in outcomes else ("planned" if "planned" in outcomes else "noop")
    return ReinstateResult(account=label, dn=account.dn, outcome=outcome, restored=wanted, groups_added=added,
                           password_replaced=scrambled)
