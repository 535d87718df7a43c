"""What the ``directory.*`` actions take and return, and how an account is named in the journal and on disk.

The result models feed later steps' expressions and the JSON schema (the loader checks
``steps.<id>.<field>`` against them); :func:`account_label` is the account's name in every change
record, :func:`account_file_name` its snapshot's file name.

May import: pydantic, ``connectors.directory`` (``Account``). Imported by: the other
``actions.directory`` modules.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from tourniquet.connectors.directory import Account

__all__ = ["SYSTEM", "AccountArg", "ResolveResult", "SnapshotResult", "ChangeResult", "GroupsResult",
           "ReinstateResult", "account_label", "account_file_name"]

SYSTEM = "directory"
AccountArg = Annotated[Account, Field(description="A resolved account (an item of steps.<resolve>.accounts).")]


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
    remains: list[str] = Field(default_factory=list, description="What the change leaves open (e.g. Kerberos "
                               "tickets after an AD disable), for the report's \"What remains\".")


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


def account_label(account: Account) -> str:
    """The account as change records and results name it: its uid, else its DN."""
    return account.uid or account.dn


def account_file_name(account: Account) -> str:
    """The name of its snapshot file (no ``/``, whatever the uid holds)."""
    return (account.uid or account.dn).replace("/", "_")
