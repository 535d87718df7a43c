"""What locking, unlocking and forcing a new password mean in each directory product.

OpenLDAP ppolicy, 389 Directory Server and Active Directory differ only in *which attributes*
lock an account and force a reset; each :class:`Flavor` holds those differences and turns a
wanted state into the exact modify requests the product documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, Protocol

import structlog

from tourniquet.connectors.directory.config import DirectoryConfig
from tourniquet.connectors.directory.errors import SYSTEM
from tourniquet.errors import PermanentError, UnsafeToChange

__all__ = [
    "Attributes", "Modification", "Request", "Flavor", "OpenLdapFlavor", "Ds389Flavor", "ActiveDirectoryFlavor",
    "EntryReader", "FLAVORS", "SECRET_ATTRIBUTES", "without_secrets", "ADMIN_LOCK", "directory_time",
]

log = structlog.get_logger("tourniquet")
#: ppolicy's "locked by an administrator, forever" value.
ADMIN_LOCK = "000001010000Z"
Attributes = dict[str, list[str]]


class EntryReader(Protocol):
    """What a flavor's checks read through: the directory client (a protocol, so no import of it here)."""

    config: DirectoryConfig

    def read(self, dn: str, attributes: Sequence[str] = ...) -> Attributes | None: ...

Operation = Literal["replace", "add", "delete"]


@dataclass(frozen=True)
class Modification:
    """One (attribute, operation, values) of an LDAP modify request, as the server receives it."""

    attribute: str
    operation: Operation
    values: tuple[Any, ...] = ()


#: One modify request = the modifications sent together (the server applies them atomically).
Request = list[Modification]

#: Attributes that hold a password or a hash of one: never read into evidence, journal or logs.
SECRET_ATTRIBUTES = frozenset(a.lower() for a in (
    "userPassword", "unicodePwd", "authPassword", "pwdHistory", "passwordHistory", "ntPwdHistory",
    "lmPwdHistory", "supplementalCredentials", "dBCSPwd", "sambaNTPassword", "sambaLMPassword",
    "userPKCS12", "krbPrincipalKey",
))


def without_secrets(attributes: Attributes) -> Attributes:
    return {k: v for k, v in attributes.items() if k.lower() not in SECRET_ATTRIBUTES}


def _first(values: list[str] | None, default: str = "") -> str:
    return values[0] if values else default


#: Active Directory's FILETIME epoch (100-ns intervals since 1601-01-01 UTC) and its "never" values.
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)
_FILETIME_NEVER = (0, 0x7FFFFFFFFFFFFFFF)


def directory_time(value: str) -> datetime | None:
    """A directory timestamp in UTC: LDAP GeneralizedTime (``20261128091403Z``, ``…03.0Z``) or an AD FILETIME
    (``134410172481411730``); None for anything else, and for AD's 0 / 0x7FFFFFFFFFFFFFFF ("never").
    Sliced by hand: strptime would dominate a 100,000-entry sweep."""
    text = value.strip()
    if text.isdigit() and len(text) > 14:
        ticks = int(text)
        return None if ticks in _FILETIME_NEVER else _FILETIME_EPOCH + timedelta(microseconds=ticks // 10)
    if text == "0" or len(text) < 11 or not text[:10].isdigit() or not text.endswith("Z"):
        return None
    try:
        return datetime(int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[8:10]),
                        int(text[10:12]) if text[10:12].isdigit() else 0,
                        int(text[12:14]) if text[12:14].isdigit() else 0, tzinfo=timezone.utc)
    except ValueError:
        return None


class Flavor:
    """What locking, unlocking and forcing a password change mean in one directory product.

    A flavor works on a *view*: the few attributes that carry the lock and reset state,
    normalised so that "the same state" compares equal (that is what makes no-ops, undo
    and read-back verification work). :meth:`requests` turns a wanted view into the exact
    modify requests the product documents.
    """

    name = "generic"
    #: Raw attributes read to compute the view.
    state_attributes: tuple[str, ...] = ()
    #: View keys that say whether the account is locked / must change its password.
    lock_keys: tuple[str, ...] = ()
    reset_keys: tuple[str, ...] = ()
    #: Operational attributes a snapshot asks for by name (servers do not all honour "+").
    snapshot_attributes: tuple[str, ...] = ("memberOf",)
    #: Attributes changed by logins and failed logins, not by people: a reinstate ignores them.
    activity_attributes: tuple[str, ...] = ()
    #: Attributes the server updates when a password is set (read back after a scramble).
    password_stamp_attributes: tuple[str, ...] = ("modifyTimestamp",)
    #: Random passwords a scramble writes one after the other: more than one where the server keeps
    #: accepting the previous password for a while (so the stolen one must be pushed two generations back).
    scramble_writes = 1
    #: Attributes an id holding "@" is also looked up by, besides the site's mail attribute.
    mail_alternatives: tuple[str, ...] = ()
    #: What a lock leaves open on this product, said in the run report's "What remains".
    remains_after_lock: tuple[str, ...] = ()
    #: Hygiene: where the last successful login, the creation time and the last password change are kept.
    login_attributes: tuple[str, ...] = ("pwdLastSuccess", "authTimestamp")
    created_attribute = "createTimestamp"
    password_set_attribute = "pwdChangedTime"
    #: Attributes :meth:`inactive` reads.
    inactive_attributes: tuple[str, ...] = ("pwdAccountLockedTime",)
    #: View keys a password change may set by itself (explains them after a scramble).
    set_by_password_change: tuple[str, ...] = ()
    #: View keys restored by a reinstate besides the lock and reset keys / view keys no client may write.
    extra_restore_keys: tuple[str, ...] = ()
    read_only_keys: tuple[str, ...] = ()
    #: The attribute that holds an entry's own DN and can be used in a filter (to read many entries in one search).
    dn_attribute = "entryDN"

    def view(self, raw: Attributes) -> Attributes:
        return {name: list(raw.get(name, [])) for name in self.state_attributes}

    def locked(self, view: Attributes) -> Attributes:
        raise NotImplementedError

    def unlocked(self, view: Attributes) -> Attributes:
        raise NotImplementedError

    def reset(self, view: Attributes, value: bool) -> Attributes:
        raise NotImplementedError

    def requests(self, current: Attributes, wanted: Attributes) -> list[Request]:
        """Modify requests that take the view from ``current`` to ``wanted`` (default: replace/delete)."""
        request: Request = []
        for name, values in wanted.items():
            if current.get(name, []) == values:
                continue
            if values:
                request.append(Modification(name, "replace", tuple(values)))
            elif current.get(name):
                request.append(Modification(name, "delete"))
        return [request] if request else []

    def password_request(self, dn: str, password: str) -> Request:
        return [Modification("userPassword", "replace", (password,))]

    def inactive(self, raw: Attributes, now: datetime) -> str | None:
        """Why nobody can log in with this account ("locked", "disabled", "expired"), or None (hygiene)."""
        return "locked" if raw.get("pwdAccountLockedTime") else None

    def check_lock_effective(self, client: EntryReader, dn: str, view: Attributes) -> None:
        """Raise UnsafeToChange when a lock written to this entry would be ignored."""

    def check_password_write(self, client: EntryReader, dn: str) -> None:
        """Raise UnsafeToChange when a password written to this entry could not be verified."""

    def password_change_forces_reset(self, client: EntryReader, dn: str, view: Attributes) -> bool:
        """Whether an administrator's password change makes the server demand a new password by itself.

        Then a reset after a scramble is *implied* by it: the plan shows it so, as the run will find it.
        """
        return False


class OpenLdapFlavor(Flavor):
    """OpenLDAP 2.5 with the ppolicy overlay (slapo-ppolicy(5), draft-behera-ldap-password-policy).

    Lock: ``pwdAccountLockedTime: 000001010000Z`` (locked by an administrator, no expiry),
    effective only when the applicable policy has ``pwdLockout: TRUE``. Unlock: delete it, in a
    modify of its own (deleting ``pwdFailureTime`` in the same request would need the Relax
    control and fail the whole request). Force a new password: ``pwdReset: TRUE`` (needs
    ``pwdMustChange: TRUE`` in the policy). Passwords are set with the Password Modify extended
    operation (RFC 3062) so the server hashes them.
    """

    name = "openldap"
    state_attributes = ("pwdAccountLockedTime", "pwdReset", "pwdPolicySubentry")
    lock_keys = ("pwdAccountLockedTime",)
    reset_keys = ("pwdReset",)
    snapshot_attributes = ("memberOf", "pwdAccountLockedTime", "pwdReset", "pwdPolicySubentry", "pwdChangedTime",
                           "pwdFailureTime", "pwdLastSuccess", "pwdGraceUseTime", "createTimestamp",
                           "modifyTimestamp", "entryUUID")
    activity_attributes = ("pwdFailureTime", "pwdLastSuccess", "pwdGraceUseTime", "authTimestamp")
    password_stamp_attributes = ("pwdChangedTime", "modifyTimestamp")
    set_by_password_change = ("pwdReset",)

    def view(self, raw: Attributes) -> Attributes:
        view = super().view(raw)
        view["pwdReset"] = [v.upper() for v in view["pwdReset"]]
        if view["pwdReset"] == ["FALSE"]:
            view["pwdReset"] = []
        return view

    def locked(self, view: Attributes) -> Attributes:
        return {"pwdAccountLockedTime": [ADMIN_LOCK]}

    def unlocked(self, view: Attributes) -> Attributes:
        return {"pwdAccountLockedTime": []}

    def reset(self, view: Attributes, value: bool) -> Attributes:
        return {"pwdReset": ["TRUE"] if value else []}

    def requests(self, current: Attributes, wanted: Attributes) -> list[Request]:
        # Each attribute in its own request: a refused delete must not take the others with it.
        return [[m] for request in super().requests(current, wanted) for m in request]

    def password_request(self, dn: str, password: str) -> Request:
        return [Modification("passwordModify", "replace", (password,))]  # sent as the RFC 3062 extended op

    def check_lock_effective(self, client: EntryReader, dn: str, view: Attributes) -> None:
        policy_dn = _first(view.get("pwdPolicySubentry"), client.config.default_policy_dn or "")
        if not policy_dn:
            raise UnsafeToChange(
                f"{dn} is under no password policy (no pwdPolicySubentry and no default_policy_dn in the site "
                "configuration): a pwdAccountLockedTime would be ignored and the account would still log in",
                system=SYSTEM,
            )
        policy = client.read(policy_dn, ["pwdLockout"])
        if policy is None:
            raise UnsafeToChange(f"password policy {policy_dn} of {dn} does not exist: the lock would be ignored",
                                 system=SYSTEM)
        if _first(policy.get("pwdLockout"), "FALSE").upper() != "TRUE":
            raise UnsafeToChange(
                f"password policy {policy_dn} of {dn} has no pwdLockout: TRUE, so OpenLDAP would ignore the lock "
                "and the account would still log in; set pwdLockout: TRUE on the policy first",
                system=SYSTEM,
            )

    def password_change_forces_reset(self, client: EntryReader, dn: str, view: Attributes) -> bool:
        """slapo-ppolicy: a password changed by someone else sets ``pwdReset`` when the policy has ``pwdMustChange``."""
        policy_dn = _first(view.get("pwdPolicySubentry"), client.config.default_policy_dn or "")
        policy = client.read(policy_dn, ["pwdMustChange"]) if policy_dn else None
        return policy is not None and _first(policy.get("pwdMustChange"), "FALSE").upper() == "TRUE"


class Ds389Flavor(Flavor):
    """389 Directory Server 2.x (Red Hat Directory Server 12/13 "Configuration and schema reference").

    Lock: ``nsAccountLock: true`` (operational; checked before the password, so a bind is refused
    with 53 unwillingToPerform "Account inactivated"). Unlock: delete ``nsAccountLock``. The site's
    password policy should have ``passwordMustChange: on`` (and ``passwordTrackUpdateTime: on`` when the
    service identity may not read password hashes: ``pwdUpdateTime`` then proves a password write). The server
    sets ``pwdReset: TRUE`` itself when an administrator changes the password and the policy has
    ``passwordMustChange: on``; an administrator cannot write ``pwdReset`` (53). So forcing a new
    password on 389-DS *is* ``directory.scramble_password``: ``force_password_reset`` refuses and
    says so instead of pretending.
    """

    name = "389ds"
    dn_attribute = "entrydn"
    state_attributes = ("nsAccountLock", "pwdReset")
    lock_keys = ("nsAccountLock",)
    reset_keys = ("pwdReset",)
    snapshot_attributes = ("memberOf", "nsAccountLock", "nsRoleDN", "nsRole", "pwdReset", "pwdpolicysubentry",
                           "passwordRetryCount", "retryCountResetTime", "accountUnlockTime", "passwordExpirationTime",
                           "pwdUpdateTime", "lastLoginTime", "createTimestamp", "modifyTimestamp", "nsUniqueId")
    activity_attributes = ("passwordRetryCount", "retryCountResetTime", "accountUnlockTime", "lastLoginTime")
    #: pwdUpdateTime is kept only with passwordTrackUpdateTime: on (modifyTimestamp has 1 s resolution and
    #: moves with any change, so it cannot prove a password write); the userPassword hash, when readable, does.
    password_stamp_attributes = ("pwdUpdateTime",)
    set_by_password_change = ("pwdReset",)
    read_only_keys = ("pwdReset",)
    login_attributes = ("lastLoginTime",)
    password_set_attribute = "pwdUpdateTime"
    inactive_attributes = ("nsAccountLock",)

    def inactive(self, raw: Attributes, now: datetime) -> str | None:
        return "locked" if _first(raw.get("nsAccountLock")).lower() == "true" else None

    def view(self, raw: Attributes) -> Attributes:
        lock = [v.lower() for v in raw.get("nsAccountLock", [])]
        reset = [v.upper() for v in raw.get("pwdReset", [])]
        return {"nsAccountLock": ["true"] if "true" in lock else lock, "pwdReset": [] if reset == ["FALSE"] else reset}

    def check_password_write(self, client: EntryReader, dn: str) -> None:
        """Warn when the global policy will not demand a new password after the scramble.

        Observed on 389-DS 2.3.1: the first password write after a server start is sometimes not
        handled by the password policy (no pwdUpdateTime, no pwdReset), so a scramble is verified by
        the stored hash changing (:meth:`DirectoryClient.password_stamp`), not by those attributes.
        """
        try:
            policy = client.read("cn=config", ["passwordMustChange"])
        except PermanentError:
            policy = None  # the service identity may not read cn=config: the read-back still checks
        if policy is None:
            return
        if _first(policy.get("passwordMustChange"), "off").lower() != "on":
            log.warning("directory.389ds_no_must_change", dn=dn,
                        hint="passwordMustChange is off: the server will not set pwdReset after the scramble")

    def password_change_forces_reset(self, client: EntryReader, dn: str, view: Attributes) -> bool:
        """389-DS sets ``pwdReset`` after an administrator's password change with ``passwordMustChange: on``."""
        try:
            policy = client.read("cn=config", ["passwordMustChange"])
        except PermanentError:
            return False  # cannot say: the plan lists the reset as a change of its own
        return policy is not None and _first(policy.get("passwordMustChange"), "off").lower() == "on"

    def locked(self, view: Attributes) -> Attributes:
        return {"nsAccountLock": ["true"]}

    def unlocked(self, view: Attributes) -> Attributes:
        return {"nsAccountLock": []}

    def reset(self, view: Attributes, value: bool) -> Attributes:
        if value and view.get("pwdReset") == ["TRUE"]:
            return {"pwdReset": ["TRUE"]}  # already set: a no-op
        if not value and not view.get("pwdReset"):
            return {"pwdReset": []}
        raise UnsafeToChange(
            "389 Directory Server does not let an administrator write pwdReset: it sets it when an administrator "
            "changes the password (with passwordMustChange: on); use directory.scramble_password instead",
            system=SYSTEM,
        )


#: userAccountControl ACCOUNTDISABLE (MS-ADTS 2.2.16 "userAccountControl Bits").
AD_ACCOUNTDISABLE = 0x2
#: What disabling an AD account does not end (MS-KILE 3.3.5.7.1; MS-NLMP): said in every AD run report.
AD_REMAINS = (
    "Active Directory: a disable refuses new logons but does not end what is already open. Kerberos tickets "
    "issued before it stay valid until they expire (TGTs up to 10 h by default, the domain's MaxTicketAge; a "
    "Windows DC re-checks the account only when a TGT older than 20 minutes asks for a service ticket, and "
    "service tickets already issued keep working), and NTLM or SMB sessions already established stay open. "
    "An administrator can end them: log the account off the machines it uses (logoff / quser for RDP, "
    "Close-SmbSession or `net session /delete` on file servers), purge its tickets there (klist purge), "
    "or isolate those machines until the tickets expire."
)


class ActiveDirectoryFlavor(Flavor):
    """Active Directory (MS-ADTS 2.2.16 userAccountControl; 3.1.1.3.1.5 pwdLastSet; 3.1.1.3.1.5.1 unicodePwd).

    Lock = disable: set bit 0x2 ACCOUNTDISABLE of ``userAccountControl`` (512 → 514), keeping every
    other bit. Unlock: clear that bit. Force a new password: ``pwdLastSet: 0``; clear it with ``-1``
    (the DC then stores the current time, so the view shows any non-zero value as ``-1``).
    ``lockoutTime`` (intruder lockout) can only be written ``0`` (= unlock); the view shows 0 as empty.
    Passwords: ``unicodePwd`` replaced with the UTF-16LE of the quoted password, only over an
    encrypted connection. Kerberos tickets already issued stay valid until they expire.

    Checked on a Samba 4.17 DC (tests/test_directory_ad_*.py): after one password write the DC still
    accepts the *previous* password for simple binds and NTLM for an hour ("old password allowed
    period"; Windows' OldPasswordAllowedPeriod), so a scramble writes two random passwords: the stolen
    one is then two generations back and accepted nowhere, even once ``pwdLastSet`` is cleared by an
    undo or a helpdesk. ``pwdLastSet`` alone cannot prove a password write (a recovery's one-time
    password is followed by ``pwdLastSet: 0``, the value it had before): ``msDS-KeyVersionNumber``, which
    the DC raises on every password write, does. A UPN (``user@realm``) names an account like a mail.
    """

    name = "ad"
    dn_attribute = "distinguishedName"
    state_attributes = ("userAccountControl", "pwdLastSet", "lockoutTime")
    lock_keys = ("userAccountControl",)
    reset_keys = ("pwdLastSet",)
    snapshot_attributes = ("memberOf", "userAccountControl", "pwdLastSet", "lockoutTime", "badPwdCount",
                           "badPasswordTime", "lastLogon", "lastLogonTimestamp", "logonCount", "accountExpires",
                           "whenCreated", "whenChanged", "objectGUID", "objectSid", "sAMAccountName",
                           "userPrincipalName")
    activity_attributes = ("badPwdCount", "badPasswordTime", "lastLogon", "lastLogonTimestamp", "logonCount")
    password_stamp_attributes = ("pwdLastSet", "msDS-KeyVersionNumber")
    set_by_password_change = ("pwdLastSet",)
    extra_restore_keys = ("lockoutTime",)
    scramble_writes = 2
    mail_alternatives = ("userPrincipalName",)
    remains_after_lock = (AD_REMAINS,)
    #: lastLogonTimestamp is replicated but lags by up to 14 days (msDS-LogonTimeSyncInterval): fine for
    #: "dormant for 90 days", unlike lastLogon (one DC's own, not replicated).
    login_attributes = ("lastLogonTimestamp",)
    created_attribute = "whenCreated"
    password_set_attribute = "pwdLastSet"
    inactive_attributes = ("userAccountControl", "accountExpires")

    def inactive(self, raw: Attributes, now: datetime) -> str | None:
        try:
            if int(_first(raw.get("userAccountControl"), "0")) & AD_ACCOUNTDISABLE:
                return "disabled"
        except ValueError:
            pass
        expires = directory_time(_first(raw.get("accountExpires")))
        return "expired" if expires is not None and expires <= now else None

    @staticmethod
    def _control(view: Attributes) -> int:
        try:
            return int(_first(view.get("userAccountControl"), "512"))
        except ValueError:
            raise UnsafeToChange(f"unreadable userAccountControl {view.get('userAccountControl')}", system=SYSTEM) from None

    def view(self, raw: Attributes) -> Attributes:
        last_set = _first(raw.get("pwdLastSet"))
        lockout = _first(raw.get("lockoutTime"))
        return {
            "userAccountControl": list(raw.get("userAccountControl", [])),
            "pwdLastSet": [] if last_set == "" else ["0"] if last_set == "0" else ["-1"],
            "lockoutTime": [] if lockout in ("", "0") else [lockout],
        }

    def locked(self, view: Attributes) -> Attributes:
        return {"userAccountControl": [str(self._control(view) | AD_ACCOUNTDISABLE)]}

    def unlocked(self, view: Attributes) -> Attributes:
        return {"userAccountControl": [str(self._control(view) & ~AD_ACCOUNTDISABLE)]}

    def reset(self, view: Attributes, value: bool) -> Attributes:
        return {"pwdLastSet": ["0"] if value else ["-1"]}

    def requests(self, current: Attributes, wanted: Attributes) -> list[Request]:
        request: Request = []
        for name, values in wanted.items():
            if current.get(name, []) == values:
                continue
            if name == "lockoutTime":
                if values:
                    raise UnsafeToChange("Active Directory only lets lockoutTime be written 0 (unlock)", system=SYSTEM)
                request.append(Modification("lockoutTime", "replace", ("0",)))
            elif name == "pwdLastSet":
                if values not in (["0"], ["-1"]):
                    raise UnsafeToChange("Active Directory only accepts pwdLastSet 0 or -1", system=SYSTEM)
                request.append(Modification("pwdLastSet", "replace", tuple(values)))
            elif name == "userAccountControl":
                if not values:
                    raise UnsafeToChange("userAccountControl cannot be deleted", system=SYSTEM)
                request.append(Modification("userAccountControl", "replace", tuple(values)))
            else:
                for generic in super().requests({name: current.get(name, [])}, {name: values}):
                    request.extend(generic)
        return [request] if request else []

    def password_request(self, dn: str, password: str) -> Request:
        return [Modification("unicodePwd", "replace", (f'"{password}"'.encode("utf-16-le"),))]


FLAVORS: dict[str, type[Flavor]] = {"openldap": OpenLdapFlavor, "389ds": Ds389Flavor, "ad": ActiveDirectoryFlavor}
