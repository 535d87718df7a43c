"""The ``directory.*`` password actions: scramble the stolen password, hand the owner a one-time one.

Neither has an undo, by design: the old password is never read and its hash never stored (a hash is
still a secret). A password made here is masked at every sink (:mod:`tourniquet.secrets`) and never an
argument, a result, a journal record or a log line.

May import: ``actions.context``, ``actions.directory.models``, ``registry``, ``secrets``, ``handover``
(inside the action), ``tourniquet.errors``. Imported by: ``actions.directory`` (registration).
"""

from __future__ import annotations

import secrets
from typing import Any

from tourniquet.actions.context import ActionContext
from tourniquet.actions.directory.models import SYSTEM, AccountArg, ChangeResult, account_label
from tourniquet.errors import UnsafeToChange
from tourniquet.registry import action
from tourniquet.secrets import register_secret, secret_in_use

__all__ = ["scramble_password", "set_one_time_password", "one_time_password", "random_password", "SCRAMBLED",
           "HANDED_OVER"]

SCRAMBLED = "scrambled: nobody knows it"


def random_password() -> str:
    """256 random bits that also pass the usual complexity rules (AD: three of upper, lower, digit, symbol)."""
    while True:
        text = secrets.token_urlsafe(32)
        if any(c.isupper() for c in text) and any(c.islower() for c in text) and any(c.isdigit() for c in text):
            return text


@action("directory.scramble_password", changes=True, target="account")
def scramble_password(ctx: ActionContext, account: AccountArg) -> ChangeResult:
    """Replace the password with a random one nobody sees, so the stolen one is dead even after an unlock.

    Where the directory keeps accepting the previous password for a while (Active Directory: an hour,
    for simple binds and NTLM), the flavor asks for two random passwords in a row (``scramble_writes``).

    Not undoable by design: the old password is never read and its hash never stored (a hash is
    still a secret). After a false alarm the practitioner sets a new password through the site's
    usual reset procedure; ``directory.reinstate`` reports ``password_replaced``. Runs once per
    incident and account: a second run is a no-op.
    """
    directory = ctx.site.directory
    label = account_label(account)
    done = ctx.already_applied(label, "scramble_password")
    if not done:
        directory.flavor.check_password_write(directory, account.dn)
    stamp = directory.password_stamp(account.dn)

    def apply() -> None:
        # Active Directory accepts the previous password for an hour: write twice, so the stolen one is two back.
        for _ in range(directory.flavor.scramble_writes):
            password = random_password()
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
    label = account_label(account)
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
    lock_before = _lock_state(directory, account.dn)
    outcome = ctx.change(
        system=SYSTEM, target=label, account=label, operation="set_one_time_password",
        before={"password": "scrambled", "must_change": must_change()},
        after={"password": HANDED_OVER, "must_change": True},
        apply=apply, read_back=read_back, undo=None,
    )
    if outcome == "applied":
        ctx.journal.write("handover", step=ctx.step, account=label, where=where)
        _unlocked_by_the_password(ctx, directory, account.dn, label, lock_before)
    return ChangeResult(account=label, dn=account.dn, outcome=outcome)


def _lock_state(directory: Any, dn: str) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(the lock attributes now, what they are when unlocked): equal when the account is not locked."""
    view = directory.state(dn)
    unlocked = directory.flavor.unlocked(view)
    return {name: view.get(name, []) for name in unlocked}, unlocked


def _unlocked_by_the_password(ctx: ActionContext, directory: Any, dn: str, label: str,
                              before: tuple[dict[str, list[str]], dict[str, list[str]]]) -> None:
    """Record the unlock the one-time password made: OpenLDAP's ppolicy lifts the lock when an
    administrator sets a password, so the later ``unlock`` step finds nothing to do. Without this
    record the journal (and every report read from it) would say the account was never unlocked."""
    locked, unlocked = before
    if locked == unlocked:
        return
    now, _ = _lock_state(directory, dn)
    if now != unlocked:
        return  # still locked: the unlock step does it, and says so
    ctx.change(system=SYSTEM, target=label, account=label, operation="unlock", before=locked, after=now,
               apply=lambda: None, read_back=lambda: _lock_state(directory, dn)[0], undo=None)
