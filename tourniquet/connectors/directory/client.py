"""The directory client (ldap3): find practitioner entries, read and change their lock state.

The only module that opens LDAP connections. Every identifier that reaches a filter goes
through ``escape_filter_chars``; every ldap3 exception is translated at this boundary
(:func:`~tourniquet.connectors.directory.errors.ldap_errors`).
"""

from __future__ import annotations

import hashlib
import re
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal

import ldap3
import structlog
from ldap3.core import exceptions as ldap_exc
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from tourniquet.connectors.directory.config import DirectoryConfig
from tourniquet.connectors.directory.controls import (
    MATCHED_VALUES,
    POST_READ,
    matched_values,
    post_read,
    post_read_attributes,
)
from tourniquet.connectors.directory.errors import SYSTEM, ldap_errors
from tourniquet.connectors.directory.flavors import FLAVORS, LDAP3_OPERATION, Attributes, Modification
from tourniquet.connectors.directory.readahead import ReadAhead
from tourniquet.errors import (
    AccountNotFound,
    AmbiguousAccount,
    ConfigError,
    NotAnAccount,
    NotFound,
    PermanentError,
    TransientError,
    UnsafeToChange,
)
from tourniquet.model import Account, canonical_dn, dn_within, fold

__all__ = ["DirectoryClient", "classify_identifier"]

log = structlog.get_logger("tourniquet")
RPPS = re.compile(r"^\d{11}$")
IDNAT_PS = re.compile(r"^8\d{11}$")
#: Entries or ids per search when many are read at once (well under the usual server size limit of 500).
BATCH = 100
#: Object classes that are never a person's account, whatever the site's user_filter lets through.
NOT_PERSON_CLASSES = frozenset(c.lower() for c in (
    "organizationalUnit", "organization", "dcObject", "domain", "container", "builtinDomain", "locality",
    "groupOfNames", "groupOfUniqueNames", "groupOfURLs", "group", "posixGroup", "nsContainer", "pwdPolicy",
    "passwordPolicy", "alias", "referral", "subentry", "ldapSubEntry", "applicationProcess", "computer",
    "msDS-GroupManagedServiceAccount", "msDS-ManagedServiceAccount", "device",
))


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



class DirectoryClient:
    """One directory, one service identity; one connection per thread (the pool a step's chunks share).

    ``connection_factory`` is the seam contract tests use to stand in for a vendor's server
    (389-DS, Active Directory); everything else goes through :meth:`_open`. Inside
    :meth:`read_ahead` a chunk of entries is read in one search (:mod:`.readahead`).
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
        self._controls: frozenset[str] | None = None
        self._batch_reads = True
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
        with ldap_errors(f"connecting to {self.config.url} as {self.config.bind_dn}"):
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
            with ldap_errors(what):
                yield self.connection()
        except TransientError:
            self._drop_connection()  # next call opens a fresh one
            raise

    # -- reads

    def read(self, dn: str, attributes: Sequence[str] = ("*", "+")) -> Attributes | None:
        """The entry's attributes, or None when it does not exist."""
        ahead: ReadAhead | None = getattr(self._local, "ahead", None)
        if ahead is None:
            return self._read_one(dn, attributes)
        found, values = ahead.get(dn, attributes)
        if found:
            return values
        if ahead.is_listed(dn) and self._batch_reads:
            self._read_many(ahead, attributes)
            found, values = ahead.get(dn, attributes)
            if found:
                return values
        values = self._read_one(dn, attributes)
        ahead.put(dn, attributes, values)
        return values

    def _read_one(self, dn: str, attributes: Sequence[str]) -> Attributes | None:
        with self._operation(f"reading {dn}") as connection:
            try:
                connection.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=list(attributes))
            except ldap_exc.LDAPNoSuchObjectResult:
                return None
            found = [r for r in connection.response or [] if r.get("type") == "searchResEntry"]
            return _normalise(found[0]["attributes"]) if found else None

    def search(self, filter_: str, attributes: list[str], *, base: str | None = None, limit: int = 0,
               scope: Literal["subtree", "base"] = "subtree") -> list[tuple[str, Attributes]]:
        """Matching entries; an alias is never followed (an id must name the entry itself)."""
        with self._operation("searching") as connection:
            try:
                connection.search(
                    base or self.config.base_dn, filter_,
                    search_scope=ldap3.BASE if scope == "base" else ldap3.SUBTREE,
                    attributes=attributes, size_limit=limit, dereference_aliases=ldap3.DEREF_NEVER,
                )
            except ldap_exc.LDAPNoSuchObjectResult:
                return []
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

    # -- many entries at once

    @contextmanager
    def read_ahead(self, dns: Iterable[str]) -> Iterator[None]:
        """Within the block, this thread reads the listed entries in one search each (see :mod:`.readahead`)."""
        previous = getattr(self._local, "ahead", None)
        self._local.ahead = ReadAhead(dns)
        try:
            yield
        finally:
            self._local.ahead = previous

    def supported_controls(self) -> frozenset[str]:
        """The controls the server lists in its root DSE (empty when it cannot be read)."""
        if self._controls is None:
            try:
                with self._operation("reading the root DSE") as connection:
                    connection.search("", "(objectClass=*)", search_scope=ldap3.BASE, attributes=["supportedControl"])
                    entries = [r for r in connection.response or [] if r.get("type") == "searchResEntry"]
                    found = entries[0]["attributes"].get("supportedControl", []) if entries else []
                    self._controls = frozenset(str(c) for c in (found if isinstance(found, list) else [found]))
            except Exception:  # a server (or a test double) that will not say: use no control
                self._controls = frozenset()
        return self._controls

    def _read_many(self, ahead: ReadAhead, attributes: Sequence[str]) -> None:
        """Read every listed entry not read yet, ``BATCH`` per search, by the flavor's DN attribute."""
        missing = ahead.missing(attributes)
        names = list(dict.fromkeys([*attributes, self.flavor.dn_attribute]))
        for start in range(0, len(missing), BATCH):
            batch = missing[start:start + BATCH]
            terms = "".join(f"({self.flavor.dn_attribute}={escape_filter_chars(dn)})" for dn in batch)
            try:
                found = self.search(f"(|{terms})", names, limit=len(batch) + 1)
            except (PermanentError, AccountNotFound) as exc:  # e.g. a server that cannot filter on the DN
                log.info("directory.batch_reads_off", reason=str(exc))
                self._batch_reads = False
                return
            by_key = {canonical_dn(dn): values for dn, values in found}
            for dn in batch:
                values = by_key.get(canonical_dn(dn))
                if values is not None:
                    values = {k: v for k, v in values.items() if k.lower() != self.flavor.dn_attribute.lower()
                              or self.flavor.dn_attribute.lower() in {a.lower() for a in attributes}}
                ahead.put(dn, attributes, values)
            ahead.batched_reads += 1

    def _groups_many(self, ahead: ReadAhead) -> bool:
        """The groups of every listed entry, in one matched-values search per ``BATCH``; False if not possible."""
        if MATCHED_VALUES not in self.supported_controls():
            return False
        member = self.config.group_member_attribute
        base = self.config.groups_base_dn or _parent(self.config.base_dn)
        dns = list(ahead.listed.values())
        groups: dict[str, list[str]] = {}
        for start in range(0, len(dns), BATCH):
            batch = dns[start:start + BATCH]
            terms = "".join(f"({member}={escape_filter_chars(dn)})" for dn in batch)
            with self._operation("searching groups") as connection:
                connection.search(base, f"(&{self.config.group_filter}(|{terms}))", search_scope=ldap3.SUBTREE,
                                  attributes=[member], controls=[matched_values(member, batch)])
                for response in connection.response or []:
                    if response.get("type") != "searchResEntry":
                        continue
                    values = _normalise(response.get("attributes") or {}).get(member) or []
                    for value in values:
                        groups.setdefault(canonical_dn(value), []).append(response["dn"])
        ahead.put_groups(groups)
        return True

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
        """One person's account for one uid, RPPS number, mail or DN; never more than one, never anything else.

        Whatever the id's form, the entry found must match the site's ``user_filter``, lie strictly
        below ``base_dn`` and not be a container, group, policy or service object: an OU given as a
        DN would otherwise be "locked" and reported as a contained practitioner.
        """
        text = identifier.strip()
        if not text:
            raise AccountNotFound("empty account identifier", system=SYSTEM)
        if any(ord(c) < 32 for c in text):
            raise AccountNotFound(f"{identifier!r} has control characters: not an account id", system=SYSTEM)
        wanted = [self.config.uid_attribute, self.config.rpps_attribute, self.config.mail_attribute,
                  "cn", "displayName", "memberOf", "objectClass"]
        kind = classify_identifier(text)
        if kind == "dn":
            return self._resolve_dn(text, identifier, wanted)
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
        self._check_person(identifier, dn, attributes)
        return self._account(dn, attributes, identifier)

    def resolve_many(self, identifiers: Sequence[str]) -> dict[str, Account | NotFound]:
        """:meth:`resolve` for many ids, ``BATCH`` uids (or RPPS numbers, or mails) per search.

        Each id maps to its account or to the error :meth:`resolve` would raise for it (not found,
        ambiguous); DNs are read one by one (alerts name accounts by uid, RPPS or mail).
        """
        results: dict[str, Account | NotFound] = {}
        # attribute → folded value → (the value as sent, the ids asking for it)
        lookups: dict[str, dict[str, tuple[str, list[str]]]] = {}
        for identifier in dict.fromkeys(identifiers):
            text = identifier.strip()
            kind = classify_identifier(text) if text else "dn"
            if kind == "dn" or any(ord(c) < 32 for c in text):  # one by one: resolve says what is wrong
                try:
                    results[identifier] = self.resolve(identifier)
                except NotFound as exc:
                    results[identifier] = exc
                continue
            attribute, value = self._lookup(text, kind)
            lookups.setdefault(attribute, {}).setdefault(fold(value), (value, []))[1].append(identifier)
        for attribute, values in lookups.items():
            keys = list(values)
            for start in range(0, len(keys), BATCH):
                batch = keys[start:start + BATCH]
                matches = self._entries_by_value(attribute, [values[key][0] for key in batch])
                for key in batch:
                    value, asking = values[key]
                    entries = matches.get(key, [])
                    for identifier in asking:
                        if not entries:  # the server's matching rule may be looser than ours: ask it alone
                            try:
                                results[identifier] = self.resolve(identifier)
                            except NotFound as exc:
                                results[identifier] = exc
                        elif len(entries) > 1:
                            results[identifier] = AmbiguousAccount(identifier, [dn for dn, _ in entries], system=SYSTEM)
                        else:
                            dn, attributes = entries[0]
                            try:
                                self._check_person(identifier, dn, attributes)
                                results[identifier] = self._account(dn, attributes, identifier)
                            except NotFound as exc:
                                results[identifier] = exc
        return {identifier: results[identifier] for identifier in dict.fromkeys(identifiers)}

    def _entries_by_value(self, attribute: str, values: list[str]) -> dict[str, list[tuple[str, Attributes]]]:
        """Accounts whose ``attribute`` is one of ``values`` (one search), by folded value."""
        terms = "".join(f"({attribute}={escape_filter_chars(value)})" for value in values)
        found = self.search(f"(&{self.config.user_filter}(|{terms}))", self._account_attributes(),
                            limit=len(values) * 11)
        matches: dict[str, list[tuple[str, Attributes]]] = {}
        for dn, attributes in found:
            held = next((v for k, v in attributes.items() if k.lower() == attribute.lower()), [])
            for value in {fold(v) for v in held}:
                matches.setdefault(value, []).append((dn, attributes))
        return matches

    def _lookup(self, text: str, kind: str) -> tuple[str, str]:
        """(attribute, value) an id of this kind is looked up by."""
        if kind == "rpps":
            return self.config.rpps_attribute, text[1:] if IDNAT_PS.match(text) else text
        if kind == "mail":
            return self.config.mail_attribute, text
        return self.config.uid_attribute, text

    def _account_attributes(self) -> list[str]:
        return [self.config.uid_attribute, self.config.rpps_attribute, self.config.mail_attribute,
                "cn", "displayName", "memberOf", "objectClass"]

    def _resolve_dn(self, text: str, identifier: str, wanted: list[str]) -> Account:
        base = self.config.base_dn
        if not dn_within(text, base):
            raise NotAnAccount(f"{identifier!r} is outside {base}: not a practitioner account", system=SYSTEM)
        if canonical_dn(text) == canonical_dn(base):
            raise NotAnAccount(f"{identifier!r} is the accounts' container ({base}), not an account", system=SYSTEM)
        found = self.search(self.config.user_filter, wanted, base=text, scope="base")
        if not found:
            entry = self.read(text, ["objectClass"])
            if entry is None:
                raise AccountNotFound(f"no entry {text!r}", system=SYSTEM)
            classes = ", ".join(entry.get("objectClass", [])) or "no object class"
            raise NotAnAccount(f"{identifier!r} is not a practitioner account: it is a {classes} entry "
                               f"(accounts match {self.config.user_filter})", system=SYSTEM)
        dn, attributes = found[0]
        self._check_person(identifier, dn, attributes)
        return self._account(dn, attributes, identifier)

    def _check_person(self, identifier: str, dn: str, attributes: Attributes) -> None:
        """Belt and braces after the filter: below base_dn, and not a container, group or policy object."""
        if not dn_within(dn, self.config.base_dn) or canonical_dn(dn) == canonical_dn(self.config.base_dn):
            raise NotAnAccount(f"{identifier!r} names {dn}, outside {self.config.base_dn}", system=SYSTEM)
        classes = {c.lower() for c in attributes.get("objectClass", [])}
        other = sorted(classes & NOT_PERSON_CLASSES)
        if other:
            raise NotAnAccount(f"{identifier!r} names {dn}, a {', '.join(other)} entry, not a practitioner account",
                               system=SYSTEM)

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
        ahead: ReadAhead | None = getattr(self._local, "ahead", None)
        if ahead is not None and ahead.is_listed(dn):
            if ahead.groups_loaded or self._groups_many(ahead):
                found = ahead.groups(dn)
                if found is not None:
                    return found
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
        """One modify request, exactly as given.

        With the post-read control (when the server has it, inside a read-ahead block) the entry's
        state attributes come back in the same response, and the next read of them is that answer.
        """
        changes: dict[str, list[tuple[Any, list[Any]]]] = {}
        for m in request:
            changes.setdefault(m.attribute, []).append((LDAP3_OPERATION[m.operation], list(m.values)))
        ahead: ReadAhead | None = getattr(self._local, "ahead", None)
        if ahead is not None:
            ahead.forget(dn)
            ahead.forget_groups(dn)
        names = list(self.flavor.state_attributes)
        controls = [post_read(names)] if ahead is not None and POST_READ in self.supported_controls() else None
        with self._operation(f"modifying {dn}") as connection:
            if controls:
                connection.modify(dn, changes, controls=controls)
            else:
                connection.modify(dn, changes)
            returned = post_read_attributes(connection.result) if controls else None
        if ahead is not None and returned is not None:
            ahead.put(dn, names, _normalise(returned))

    def set_password(self, dn: str, password: str) -> None:
        """Replace the password (the server hashes it); never logged, never returned."""
        ahead: ReadAhead | None = getattr(self._local, "ahead", None)
        if ahead is not None:
            ahead.forget(dn)
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
        ahead: ReadAhead | None = getattr(self._local, "ahead", None)
        if ahead is not None:
            ahead.forget(dn)
        with self._operation(f"modifying {dn}") as connection:
            connection.modify(dn, modifications)

    def add_member(self, group: str, dn: str) -> None:
        self._forget_groups(dn)
        self.send(group, [Modification(self.config.group_member_attribute, "add", (dn,))])

    def remove_member(self, group: str, dn: str) -> None:
        self._forget_groups(dn)
        self.send(group, [Modification(self.config.group_member_attribute, "delete", (dn,))])

    def _forget_groups(self, dn: str) -> None:
        ahead: ReadAhead | None = getattr(self._local, "ahead", None)
        if ahead is not None:
            ahead.forget_groups(dn)

    def __enter__(self) -> "DirectoryClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
