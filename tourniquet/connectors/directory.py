"""Directory connector (ldap3): find practitioner entries, read and change their lock state.

The only module that speaks LDAP. Every identifier that reaches a filter goes through
``escape_filter_chars``; every ldap3 exception is translated into a Tourniquet error at
this boundary (:func:`_ldap_errors`). Flavors (OpenLDAP ppolicy, 389-DS, Active Directory)
differ only in *which attributes* lock an account and force a reset; :class:`Flavor`
holds those differences.
"""

from __future__ import annotations

import re
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal

import ldap3
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
    "ADMIN_LOCK",
    "classify_identifier",
]

SYSTEM = "directory"
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


@contextmanager
def _ldap_errors(what: str) -> Iterator[None]:
    """Re-raise ldap3 errors as Tourniquet errors, saying what to fix."""
    try:
        yield
    except ldap_exc.LDAPInvalidCredentialsResult as exc:
        raise PermanentError(f"{what}: the bind identity or password is wrong ({exc})", system=SYSTEM) from exc
    except ldap_exc.LDAPInsufficientAccessRightsResult as exc:
        raise PermanentError(f"{what}: the service identity lacks the rights ({exc})", system=SYSTEM) from exc
    except (ldap_exc.LDAPSocketOpenError, ldap_exc.LDAPSocketReceiveError, ldap_exc.LDAPSocketSendError,
            ldap_exc.LDAPSessionTerminatedByServerError, ldap_exc.LDAPResponseTimeoutError,
            ldap_exc.LDAPBusyResult, ldap_exc.LDAPUnavailableResult,
            ldap_exc.LDAPServerPoolExhaustedError) as exc:
        raise TransientError(f"{what}: directory unreachable or busy ({exc})", system=SYSTEM) from exc
    except ldap_exc.LDAPStartTLSError as exc:
        raise PermanentError(f"{what}: StartTLS failed, check the CA file and certificate ({exc})", system=SYSTEM) from exc
    except ldap_exc.LDAPSSLConfigurationError as exc:
        raise PermanentError(f"{what}: TLS configuration error ({exc})", system=SYSTEM) from exc
    except ldap_exc.LDAPNoSuchObjectResult as exc:
        raise AccountNotFound(f"{what}: no such entry", system=SYSTEM) from exc
    except ldap_exc.LDAPException as exc:
        raise PermanentError(f"{what}: {exc}", system=SYSTEM) from exc


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


class Flavor:
    """What locking, unlocking and forcing a password change mean in one directory product."""

    name = "generic"
    #: Attributes read to decide what to change, and recorded before and after.
    state_attributes: tuple[str, ...] = ()

    def lock_changes(self, state: Attributes) -> Attributes:
        raise NotImplementedError

    def unlock_changes(self, state: Attributes) -> Attributes:
        raise NotImplementedError

    def reset_changes(self, state: Attributes, value: bool) -> Attributes:
        raise NotImplementedError

    def check_lock_effective(self, client: "DirectoryClient", dn: str, state: Attributes) -> None:
        """Raise UnsafeToChange when a lock written to this entry would be ignored."""


class OpenLdapFlavor(Flavor):
    """OpenLDAP with the ppolicy overlay: ``pwdAccountLockedTime`` and ``pwdReset``."""

    name = "openldap"
    state_attributes = ("pwdAccountLockedTime", "pwdReset", "pwdPolicySubentry")

    def lock_changes(self, state: Attributes) -> Attributes:
        return {"pwdAccountLockedTime": [ADMIN_LOCK]}

    def unlock_changes(self, state: Attributes) -> Attributes:
        return {"pwdAccountLockedTime": []}

    def reset_changes(self, state: Attributes, value: bool) -> Attributes:
        return {"pwdReset": ["TRUE"] if value else []}

    def check_lock_effective(self, client: "DirectoryClient", dn: str, state: Attributes) -> None:
        policy_dn = (state.get("pwdPolicySubentry") or [client.config.default_policy_dn or ""])[0]
        if not policy_dn:
            raise UnsafeToChange(
                f"{dn} is under no password policy (no pwdPolicySubentry and no default_policy_dn in the site "
                "configuration): a pwdAccountLockedTime would be ignored and the account would still log in",
                system=SYSTEM,
            )
        policy = client.read(policy_dn, ["pwdLockout"])
        if policy is None:
            raise UnsafeToChange(f"password policy {policy_dn} of {dn} does not exist: the lock would be ignored", system=SYSTEM)
        if (policy.get("pwdLockout") or ["FALSE"])[0].upper() != "TRUE":
            raise UnsafeToChange(
                f"password policy {policy_dn} of {dn} has no pwdLockout: TRUE, so OpenLDAP would ignore the lock "
                "and the account would still log in; set pwdLockout: TRUE on the policy first",
                system=SYSTEM,
            )


FLAVORS: dict[str, type[Flavor]] = {"openldap": OpenLdapFlavor}


# --------------------------------------------------------------------------- the client


class DirectoryClient:
    """One directory, one service identity; one connection per thread, reused across a step."""

    def __init__(self, config: DirectoryConfig, password: str | None = None) -> None:
        self.config = config
        flavor = FLAVORS.get(config.flavor)
        if flavor is None:
            raise ConfigError(f"directory flavor {config.flavor!r} is not supported yet")
        self.flavor = flavor()
        self._password = password
        self._local = threading.local()
        self._connections: list[ldap3.Connection] = []
        self._guard = threading.Lock()
        self._check_transport()

    def _check_transport(self) -> None:
        url = self.config.url.lower()
        if url.startswith("ldap://") and not self.config.start_tls and not self.config.allow_plaintext:
            raise ConfigError(
                f"{self.config.url} would send the bind password in clear: use ldaps://, start_tls: true, "
                "or (loopback test directories only) allow_plaintext: true"
            )

    # -- connections

    def _server(self) -> ldap3.Server:
        tls = None
        if self.config.url.lower().startswith("ldaps://") or self.config.start_tls:
            tls = ldap3.Tls(
                validate=ssl.CERT_REQUIRED if self.config.verify_certificates else ssl.CERT_NONE,
                ca_certs_file=self.config.ca_file,
                version=ssl.PROTOCOL_TLS_CLIENT,
            )
        return ldap3.Server(self.config.url, connect_timeout=self.config.timeout, tls=tls, get_info=ldap3.NONE)

    def connection(self) -> ldap3.Connection:
        connection: ldap3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None and connection.bound and not connection.closed:
            return connection
        if self._password is None:
            self._password = self.config.bind_password.get()
        with _ldap_errors(f"connecting to {self.config.url}"):
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
            if self.config.start_tls:
                connection.start_tls()
            connection.bind()
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
                except ldap_exc.LDAPException:
                    pass
            self._connections.clear()
        self._local = threading.local()

    @contextmanager
    def _operation(self, what: str) -> Iterator[ldap3.Connection]:
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
            if not connection.entries:
                return None
            return _normalise(connection.response[0]["attributes"])

    def search(self, filter_: str, attributes: list[str], *, base: str | None = None, limit: int = 0) -> list[tuple[str, Attributes]]:
        with self._operation("searching") as connection:
            connection.search(
                base or self.config.base_dn, filter_, search_scope=ldap3.SUBTREE,
                attributes=attributes, size_limit=limit,
            )
            return [(r["dn"], _normalise(r["attributes"])) for r in connection.response if r.get("type") == "searchResEntry"]

    def iter_entries(self, filter_: str | None = None, attributes: list[str] | None = None) -> Iterator[tuple[str, Attributes]]:
        """Every matching entry, one page at a time, never the whole directory in memory."""
        with self._operation("paged search") as connection:
            cookie: Any = None
            while True:
                connection.search(
                    self.config.base_dn, filter_ or self.config.user_filter, search_scope=ldap3.SUBTREE,
                    attributes=attributes or ["*", "+"], paged_size=self.config.page_size, paged_cookie=cookie,
                )
                for response in connection.response:
                    if response.get("type") == "searchResEntry":
                        yield response["dn"], _normalise(response["attributes"])
                controls = connection.result.get("controls", {})
                cookie = controls.get("1.2.840.113556.1.4.319", {}).get("value", {}).get("cookie")
                if not cookie:
                    break

    def _account(self, dn: str, attributes: Attributes, requested_as: str) -> Account:
        first = lambda name: (attributes.get(name) or [None])[0]  # noqa: E731
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

    def state(self, dn: str) -> Attributes:
        """The flavor's lock and reset attributes as they are now (absent ones as [])."""
        attributes = self.read(dn, list(self.flavor.state_attributes))
        if attributes is None:
            raise AccountNotFound(f"no entry {dn!r}", system=SYSTEM)
        return {name: attributes.get(name, []) for name in self.flavor.state_attributes}

    # -- writes

    def replace(self, dn: str, changes: Attributes) -> None:
        """Set each attribute to exactly these values ([] deletes it)."""
        modifications: dict[str, list[tuple[Any, list[str]]]] = {}
        for name, values in changes.items():
            modifications[name] = [(ldap3.MODIFY_REPLACE, values)]
        with self._operation(f"modifying {dn}") as connection:
            connection.modify(dn, modifications)

    def modify(self, dn: str, modifications: dict[str, list[tuple[Any, list[str]]]]) -> None:
        """Raw ldap3 modifications (add/delete values), for group membership and the like."""
        with self._operation(f"modifying {dn}") as connection:
            connection.modify(dn, modifications)

    def __enter__(self) -> "DirectoryClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
