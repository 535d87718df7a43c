"""Directory connector (ldap3): find practitioner entries, read and change their lock state.

The only module that speaks LDAP. Every identifier that reaches a filter goes through
``escape_filter_chars``; every ldap3 exception is translated into a Tourniquet error at
this boundary (:func:`_ldap_errors`). Flavors (OpenLDAP ppolicy, 389-DS, Active Directory)
differ only in *which attributes* lock an account and force a reset; :class:`Flavor`
holds those differences.
"""

from __future__ import annotations

import hashlib
import re
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import ldap3
import structlog
from ldap3.core import exceptions as ldap_exc
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn
from pydantic import BaseModel, ConfigDict, Field

from tourniquet.errors import (
    AccountNotFound,
    AmbiguousAccount,
    ConfigError,
    PermanentError,
    TransientError,
    UnsafeToChange,
)
from tourniquet.secrets import SecretRef

__all__ = [
    "DirectoryConfig",
    "Account",
    "Attributes",
    "DirectoryClient",
    "Flavor",
    "OpenLdapFlavor",
    "Ds389Flavor",
    "ActiveDirectoryFlavor",
    "Modification",
    "SECRET_ATTRIBUTES",
    "without_secrets",
    "ADMIN_LOCK",
    "classify_identifier",
]

SYSTEM = "directory"
log = structlog.get_logger("tourniquet")
#: ppolicy's "locked by an administrator, forever" value.
ADMIN_LOCK = "000001010000Z"
RPPS = re.compile(r"^\d{11}$")
IDNAT_PS = re.compile(r"^8\d{11}$")

Attributes = dict[str, list[str]]


class DirectoryConfig(BaseModel):
    """Which directory a site uses and how to reach it."""

    model_config = ConfigDict(extra="forbid")

    flavor: Literal["openldap", "389ds", "ad"] = Field("openldap", description="How accounts are locked.")
    url: str = Field(description="ldap://host:port or ldaps://host:port")
    start_tls: bool = Field(False, description="Upgrade ldap:// with StartTLS.")
    allow_plaintext: bool = Field(
        False, description="Allow ldap:// without StartTLS. Only for a loopback demo or test directory."
    )
    ca_file: str | None = Field(None, description="CA bundle that signed the server certificate.")
    verify_certificates: bool = Field(True, description="Check the server certificate (keep it on).")
    bind_dn: str = Field(description="Service identity with rights to read and modify accounts.")
    bind_password: SecretRef = Field(description="Where the bind password lives.")
    base_dn: str = Field(description="Subtree holding the practitioner accounts.")
    user_filter: str = Field("(objectClass=inetOrgPerson)", description="What an account entry looks like.")
    uid_attribute: str = "uid"
    rpps_attribute: str = Field("employeeNumber", description="Attribute holding the 11-digit RPPS number.")
    mail_attribute: str = "mail"
    default_policy_dn: str | None = Field(
        None, description="OpenLDAP: the ppolicy default (olcPPolicyDefault), for entries without pwdPolicySubentry."
    )
    groups_base_dn: str | None = Field(None, description="Where groups live (default: the parent of base_dn).")
    group_filter: str = Field("(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=group))",
                              description="What a group entry looks like.")
    group_member_attribute: str = Field("member", description="member (groupOfNames, AD) or uniqueMember.")
    timeout: float = Field(10.0, gt=0, description="Seconds for connecting and for each operation.")
    page_size: int = Field(500, ge=1, le=5000)


class Account(BaseModel):
    """A resolved practitioner account, as steps pass it to each other."""

    dn: str
    uid: str | None = None
    rpps: str | None = None
    mail: str | None = None
    name: str | None = None
    groups: list[str] = Field(default_factory=list)
    requested_as: str = ""


# --------------------------------------------------------------------------- error translation


_TLS_WORDS = ("certificate", "ssl", "tls", "handshake", "wrong version number")


@contextmanager
def _ldap_errors(what: str) -> Iterator[None]:
    """Re-raise ldap3 errors as Tourniquet errors, saying what to fix."""
    try:
        yield
    except ldap_exc.LDAPInvalidCredentialsResult as exc:
        raise PermanentError(f"{what}: the bind identity or its password is wrong (invalidCredentials)",
                             system=SYSTEM) from exc
    except ldap_exc.LDAPInsufficientAccessRightsResult as exc:
        raise PermanentError(f"{what}: the service identity lacks the rights (insufficientAccessRights: "
                             f"{getattr(exc, 'message', '') or exc})", system=SYSTEM) from exc
    except ldap_exc.LDAPStrongerAuthRequiredResult as exc:
        raise PermanentError(f"{what}: the server requires an encrypted connection ({exc})", system=SYSTEM) from exc
    except (ldap_exc.LDAPSocketOpenError, ldap_exc.LDAPStartTLSError, ldap_exc.LDAPSSLConfigurationError,
            ldap_exc.LDAPCertificateError, ssl.SSLError) as exc:
        text = str(exc)
        if isinstance(exc, ldap_exc.LDAPSocketOpenError) and not any(w in text.lower() for w in _TLS_WORDS):
            raise TransientError(f"{what}: directory unreachable ({text})", system=SYSTEM) from exc
        raise PermanentError(f"{what}: TLS failed: the server certificate is not trusted by the CA file, does not "
                             f"name this host, or TLS is misconfigured ({text[:300]})", system=SYSTEM) from exc
    except (ldap_exc.LDAPSocketReceiveError, ldap_exc.LDAPSocketSendError,
            ldap_exc.LDAPSessionTerminatedByServerError, ldap_exc.LDAPResponseTimeoutError,
            ldap_exc.LDAPBusyResult, ldap_exc.LDAPUnavailableResult, ldap_exc.LDAPTimeLimitExceededResult,
            ldap_exc.LDAPServerPoolExhaustedError) as exc:
        raise TransientError(f"{what}: directory unreachable, too slow or busy ({exc})", system=SYSTEM) from exc
    except ldap_exc.LDAPNoSuchObjectResult as exc:
        raise AccountNotFound(f"{what}: no such entry", system=SYSTEM) from exc
    except ldap_exc.LDAPException as exc:
        raise PermanentError(f"{what}: {exc}", system=SYSTEM) from exc
    except OSError as exc:  # a socket error ldap3 did not wrap
        raise TransientError(f"{what}: directory unreachable ({exc})", system=SYSTEM) from exc


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, datetime):
        return value.strftime("%Y%m%d%H%M%SZ")
    return str(value)


def _normalise(attributes: dict[str, Any]) -> Attributes:
    """ldap3 gives bytes, datetimes or lists: turn everything into lists of strings."""
    result: Attributes = {}
    for name, value in attributes.items():
        values = value if isinstance(value, list) else [value]
        cleaned = [_text(v) for v in values if v not in (None, b"", "")]
        if cleaned:
            result[name] = cleaned
    return result


def _parent(dn: str) -> str:
    """``ou=people,dc=x`` → ``dc=x`` (where groups usually live next to people)."""
    parts = parse_dn(dn, escape=True)
    return ",".join(f"{a}={v}" for a, v, _ in parts[1:]) or dn


def classify_identifier(identifier: str) -> Literal["dn", "rpps", "mail", "uid"]:
    """How to look an id up: 11 digits (or 8+RPPS) = RPPS, has @ = mail, parses as a DN = DN, else uid."""
    text = identifier.strip()
    if RPPS.match(text) or IDNAT_PS.match(text):
        return "rpps"
    if "@" in text and "=" not in text:
        return "mail"
    if "=" in text:
        try:
            if parse_dn(text):
                return "dn"
        except ldap_exc.LDAPInvalidDnError:
            pass
    return "uid"


# --------------------------------------------------------------------------- flavors

Operation = Literal["replace", "add", "delete"]
_LDAP3_OPERATION = {"replace": ldap3.MODIFY_REPLACE, "add": ldap3.MODIFY_ADD, "delete": ldap3.MODIFY_DELETE}


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
    #: View keys a password change may set by itself (explains them after a scramble).
    set_by_password_change: tuple[str, ...] = ()
    #: View keys restored by a reinstate besides the lock and reset keys / view keys no client may write.
    extra_restore_keys: tuple[str, ...] = ()
    read_only_keys: tuple[str, ...] = ()

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

    def check_lock_effective(self, client: "DirectoryClient", dn: str, view: Attributes) -> None:
        """Raise UnsafeToChange when a lock written to this entry would be ignored."""

    def check_password_write(self, client: "DirectoryClient", dn: str) -> None:
        """Raise UnsafeToChange when a password written to this entry could not be verified."""


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

    def check_lock_effective(self, client: "DirectoryClient", dn: str, view: Attributes) -> None:
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

    def view(self, raw: Attributes) -> Attributes:
        lock = [v.lower() for v in raw.get("nsAccountLock", [])]
        reset = [v.upper() for v in raw.get("pwdReset", [])]
        return {"nsAccountLock": ["true"] if "true" in lock else lock, "pwdReset": [] if reset == ["FALSE"] else reset}

    def check_password_write(self, client: "DirectoryClient", dn: str) -> None:
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


class ActiveDirectoryFlavor(Flavor):
    """Active Directory (MS-ADTS 2.2.16 userAccountControl; 3.1.1.3.1.5 pwdLastSet; 3.1.1.3.1.5.1 unicodePwd).

    Lock = disable: set bit 0x2 ACCOUNTDISABLE of ``userAccountControl`` (512 → 514), keeping every
    other bit. Unlock: clear that bit. Force a new password: ``pwdLastSet: 0``; clear it with ``-1``
    (the DC then stores the current time, so the view shows any non-zero value as ``-1``).
    ``lockoutTime`` (intruder lockout) can only be written ``0`` (= unlock); the view shows 0 as empty.
    Passwords: ``unicodePwd`` replaced with the UTF-16LE of the quoted password, only over an
    encrypted connection. Kerberos tickets already issued stay valid until they expire.
    """

    name = "ad"
    state_attributes = ("userAccountControl", "pwdLastSet", "lockoutTime")
    lock_keys = ("userAccountControl",)
    reset_keys = ("pwdLastSet",)
    snapshot_attributes = ("memberOf", "userAccountControl", "pwdLastSet", "lockoutTime", "badPwdCount",
                           "badPasswordTime", "lastLogon", "lastLogonTimestamp", "logonCount", "accountExpires",
                           "whenCreated", "whenChanged", "objectGUID", "objectSid", "sAMAccountName",
                           "userPrincipalName")
    activity_attributes = ("badPwdCount", "badPasswordTime", "lastLogon", "lastLogonTimestamp", "logonCount")
    password_stamp_attributes = ("pwdLastSet",)
    set_by_password_change = ("pwdLastSet",)
    extra_restore_keys = ("lockoutTime",)

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


# --------------------------------------------------------------------------- the client


class DirectoryClient:
    """One directory, one service identity; one connection per thread, reused across a step.

    ``connection_factory`` is the seam contract tests use to stand in for a vendor's server
    (389-DS, Active Directory); everything else goes through :meth:`_open`.
    """

    def __init__(
        self,
        config: DirectoryConfig,
        password: str | None = None,
        *,
        connection_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.config = config
        flavor = FLAVORS.get(config.flavor)
        if flavor is None:
            raise ConfigError(f"directory flavor {config.flavor!r} is not supported")
        self.flavor = flavor()
        self._password = password
        self._factory = connection_factory or self._open
        self._local = threading.local()
        self._connections: list[Any] = []
        self._guard = threading.Lock()
        self._check_transport()

    @property
    def encrypted(self) -> bool:
        return self.config.url.lower().startswith("ldaps://") or self.config.start_tls

    def _check_transport(self) -> None:
        if not self.encrypted and not self.config.allow_plaintext:
            raise ConfigError(
                f"{self.config.url} would send the bind password in clear: use ldaps://, start_tls: true, "
                "or (loopback test directories only) allow_plaintext: true"
            )
        if self.encrypted and not self.config.verify_certificates:
            log.warning("directory.tls_unverified", url=self.config.url)

    # -- connections

    def _server(self) -> ldap3.Server:
        tls = None
        if self.encrypted:
            tls = ldap3.Tls(
                validate=ssl.CERT_REQUIRED if self.config.verify_certificates else ssl.CERT_NONE,
                ca_certs_file=self.config.ca_file,
                version=ssl.PROTOCOL_TLS_CLIENT,
            )
        return ldap3.Server(self.config.url, connect_timeout=self.config.timeout, tls=tls, get_info=ldap3.NONE)

    def _open(self) -> ldap3.Connection:
        if self._password is None:
            self._password = self.config.bind_password.get()
        connection = ldap3.Connection(
            self._server(),
            user=self.config.bind_dn,
            password=self._password,
            receive_timeout=max(1, int(self.config.timeout)),
            raise_exceptions=True,
            auto_bind=ldap3.AUTO_BIND_NONE,
            read_only=False,
        )
        connection.open()
        if self.config.start_tls and not self.config.url.lower().startswith("ldaps://"):
            connection.start_tls()
        connection.bind()
        return connection

    def connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is not None and connection.bound and not connection.closed:
            return connection
        with _ldap_errors(f"connecting to {self.config.url} as {self.config.bind_dn}"):
            connection = self._factory()
        self._local.connection = connection
        with self._guard:
            self._connections.append(connection)
        return connection

    def _drop_connection(self) -> None:
        self._local.connection = None

    def close(self) -> None:
        with self._guard:
            for connection in self._connections:
                try:
                    connection.unbind()
                except Exception:  # closing is best effort: the socket may be gone already
                    pass
            self._connections.clear()
        self._local = threading.local()

    @contextmanager
    def _operation(self, what: str) -> Iterator[Any]:
        try:
            with _ldap_errors(what):
                yield self.connection()
        except TransientError:
            self._drop_connection()  # next call opens a fresh one
            raise

    # -- reads

    def read(self, dn: str, attributes: list[str] | tuple[str, ...] = ("*", "+")) -> Attributes | None:
        """The entry's attributes, or None when it does not exist."""
        with self._operation(f"reading {dn}") as connection:
            try:
                connection.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=list(attributes))
            except ldap_exc.LDAPNoSuchObjectResult:
                return None
            found = [r for r in connection.response or [] if r.get("type") == "searchResEntry"]
            return _normalise(found[0]["attributes"]) if found else None

    def search(self, filter_: str, attributes: list[str], *, base: str | None = None, limit: int = 0) -> list[tuple[str, Attributes]]:
        with self._operation("searching") as connection:
            connection.search(
                base or self.config.base_dn, filter_, search_scope=ldap3.SUBTREE,
                attributes=attributes, size_limit=limit,
            )
            return [(r["dn"], _normalise(r.get("attributes") or {})) for r in connection.response or []
                    if r.get("type") == "searchResEntry"]

    def iter_entries(self, filter_: str | None = None, attributes: list[str] | None = None,
                     *, base: str | None = None) -> Iterator[tuple[str, Attributes]]:
        """Every matching entry, one page at a time: at most ``page_size`` entries in memory.

        Each page's responses and cookie are taken from the connection right after the search,
        so the caller may use the same (thread's) connection between two entries — e.g. to lock
        what it just found — without cutting the sweep short.
        """
        cookie: Any = None
        while True:
            with self._operation("paged search") as connection:
                connection.search(
                    base or self.config.base_dn, filter_ or self.config.user_filter, search_scope=ldap3.SUBTREE,
                    attributes=attributes or ["*", "+"], paged_size=self.config.page_size, paged_cookie=cookie,
                )
                page, result = connection.response, connection.result
            controls = result.get("controls") or {}
            cookie = controls.get("1.2.840.113556.1.4.319", {}).get("value", {}).get("cookie")
            for response in page:
                if response.get("type") == "searchResEntry":
                    yield response["dn"], _normalise(response["attributes"])
            del page
            if not cookie:
                break

    def _account(self, dn: str, attributes: Attributes, requested_as: str) -> Account:
        def first(name: str) -> str | None:
            return (attributes.get(name) or [None])[0]  # type: ignore[list-item]

        return Account(
            dn=dn,
            uid=first(self.config.uid_attribute),
            rpps=first(self.config.rpps_attribute),
            mail=first(self.config.mail_attribute),
            name=first("cn") or first("displayName"),
            groups=attributes.get("memberOf", []),
            requested_as=requested_as,
        )

    def resolve(self, identifier: str) -> Account:
        """One account for one uid, RPPS number, mail or DN; never more than one."""
        text = identifier.strip()
        if not text:
            raise AccountNotFound("empty account identifier", system=SYSTEM)
        wanted = [self.config.uid_attribute, self.config.rpps_attribute, self.config.mail_attribute,
                  "cn", "displayName", "memberOf"]
        kind = classify_identifier(text)
        if kind == "dn":
            if not text.lower().endswith(self.config.base_dn.lower()):
                raise AccountNotFound(f"{text!r} is outside {self.config.base_dn}", system=SYSTEM)
            attributes = self.read(text, wanted)
            if attributes is None:
                raise AccountNotFound(f"no entry {text!r}", system=SYSTEM)
            return self._account(text, attributes, identifier)
        if kind == "rpps":
            value, attribute = (text[1:] if IDNAT_PS.match(text) else text), self.config.rpps_attribute
        elif kind == "mail":
            value, attribute = text, self.config.mail_attribute
        else:
            value, attribute = text, self.config.uid_attribute
        filter_ = f"(&{self.config.user_filter}({attribute}={escape_filter_chars(value)}))"
        found = self.search(filter_, wanted, limit=11)
        if not found:
            raise AccountNotFound(f"no account with {attribute}={value!r} under {self.config.base_dn}", system=SYSTEM)
        if len(found) > 1:
            raise AmbiguousAccount(identifier, [dn for dn, _ in found], system=SYSTEM)
        dn, attributes = found[0]
        return self._account(dn, attributes, identifier)

    def raw_state(self, dn: str, extra: tuple[str, ...] = ()) -> Attributes:
        names = list(dict.fromkeys(self.flavor.state_attributes + extra))
        attributes = self.read(dn, names)
        if attributes is None:
            raise AccountNotFound(f"no entry {dn!r}", system=SYSTEM)
        return attributes

    def state(self, dn: str) -> Attributes:
        """The flavor's view of the lock and reset attributes as they are now (absent ones as [])."""
        return self.flavor.view(self.raw_state(dn))

    def password_stamp(self, dn: str) -> str:
        """A fingerprint of the stored password (its hash, when this identity may read it) and of the time
        stamps the server keeps for password changes: it changes when a password write took effect.

        Only a SHA-256 of those values leaves this method — never the hash itself — and it is only
        compared, never journaled or logged. "" when the server shows none of them.
        """
        names = ["userPassword", *self.flavor.password_stamp_attributes]
        attributes = self.read(dn, names) or {}
        found = [f"{name}\0" + "\0".join(sorted(attributes[name])) for name in names if attributes.get(name)]
        return hashlib.sha256("\n".join(found).encode()).hexdigest() if found else ""

    def groups_of(self, dn: str) -> list[str]:
        """DNs of the groups that list ``dn`` as a member (searched, so it works without memberOf)."""
        member = self.config.group_member_attribute
        filter_ = f"(&{self.config.group_filter}({member}={escape_filter_chars(dn)}))"
        base = self.config.groups_base_dn or _parent(self.config.base_dn)
        return sorted(found for found, _ in self.search(filter_, ["1.1"], base=base))

    # -- writes

    def apply(self, dn: str, current: Attributes, wanted: Attributes) -> None:
        """Send the flavor's modify requests that take the state view from ``current`` to ``wanted``."""
        for request in self.flavor.requests(current, wanted):
            self.send(dn, request)

    def send(self, dn: str, request: list[Modification]) -> None:
        """One modify request, exactly as given."""
        changes: dict[str, list[tuple[Any, list[Any]]]] = {}
        for m in request:
            changes.setdefault(m.attribute, []).append((_LDAP3_OPERATION[m.operation], list(m.values)))
        with self._operation(f"modifying {dn}") as connection:
            connection.modify(dn, changes)

    def set_password(self, dn: str, password: str) -> None:
        """Replace the password (the server hashes it); never logged, never returned."""
        request = self.flavor.password_request(dn, password)
        if request and request[0].attribute == "unicodePwd" and not self.encrypted:
            raise UnsafeToChange("Active Directory accepts password writes only over ldaps:// or StartTLS",
                                 system=SYSTEM)
        if request and request[0].attribute == "passwordModify":
            with self._operation(f"setting the password of {dn}") as connection:
                connection.extend.standard.modify_password(dn, None, password)
            return
        self.send(dn, request)

    def replace(self, dn: str, changes: Attributes) -> None:
        """Set each attribute to exactly these values ([] deletes it)."""
        self.send(dn, [Modification(k, "replace", tuple(v)) for k, v in changes.items()])

    def modify(self, dn: str, modifications: dict[str, list[tuple[Any, list[str]]]]) -> None:
        """Raw ldap3 modifications (add/delete values), for group membership and the like."""
        with self._operation(f"modifying {dn}") as connection:
            connection.modify(dn, modifications)

    def add_member(self, group: str, dn: str) -> None:
        self.send(group, [Modification(self.config.group_member_attribute, "add", (dn,))])

    def remove_member(self, group: str, dn: str) -> None:
        self.send(group, [Modification(self.config.group_member_attribute, "delete", (dn,))])

    def __enter__(self) -> "DirectoryClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
