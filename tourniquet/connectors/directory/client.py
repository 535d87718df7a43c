"""The directory client: find practitioner entries, read and change their lock state.

The one object the rest of Tourniquet holds for the directory. Connections are
:mod:`.connections`' business, which id names which account :mod:`.accounts`', what a lock is in
each product :mod:`.flavors`'; this module reads and writes entries, and inside :meth:`read_ahead`
reads a chunk of entries in one search (:mod:`.readahead`, :mod:`.controls`). Every identifier that
reaches a filter goes through ``escape_filter_chars``; every library exception is translated at this
boundary (:func:`~tourniquet.connectors.directory.errors.ldap_errors`).

May import: ldap3's filter escaping, the other ``directory`` modules, ``tourniquet.errors``,
``model``. Imported by:
``connectors.directory`` (the package), whose names the rest of Tourniquet imports.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any, Literal

import structlog
from ldap3.utils.conv import escape_filter_chars

from tourniquet.connectors.directory.accounts import BATCH, AccountResolver, classify_identifier, looks_like_dn
from tourniquet.connectors.directory.config import DirectoryConfig
from tourniquet.connectors.directory.connections import Connections
from tourniquet.connectors.directory.controls import (
    MATCHED_VALUES,
    POST_READ,
    matched_values,
    post_read,
    post_read_attributes,
)
from tourniquet.connectors.directory.errors import SYSTEM, NoSuchObject
from tourniquet.connectors.directory.flavors import FLAVORS, Attributes, Modification
from tourniquet.connectors.directory.readahead import ReadAhead
from tourniquet.connectors.directory.transport import BASE, ENTRY, MODIFY, SUBTREE
from tourniquet.errors import AccountNotFound, ConfigError, NotFound, PermanentError, UnsafeToChange
from tourniquet.model import Account, canonical_dn, split_escaped

__all__ = ["DirectoryClient", "classify_identifier"]

log = structlog.get_logger("tourniquet")


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, datetime):
        return value.strftime("%Y%m%d%H%M%SZ")
    return str(value)


def _normalise(attributes: dict[str, Any]) -> Attributes:
    """The connection gives bytes (a contract test's stand-in may give strings or datetimes): lists of strings."""
    result: Attributes = {}
    for name, value in attributes.items():
        values = value if isinstance(value, list) else [value]
        cleaned = [_text(v) for v in values if v not in (None, b"", "")]
        if cleaned:
            result[name] = cleaned
    return result


def _parent(dn: str) -> str:
    """``ou=people,dc=x`` → ``dc=x`` (where groups usually live next to people)."""
    if not looks_like_dn(dn):
        return dn
    return ",".join(part.strip() for part in split_escaped(dn, ",")[1:]) or dn


class DirectoryClient:
    """One directory, one service identity; one connection per thread (the pool a step's chunks share).

    ``connection_factory`` is the seam contract tests use to stand in for a vendor's server
    (389-DS, Active Directory); everything else goes through :class:`.connections.Connections`.
    Inside :meth:`read_ahead` a chunk of entries is read in one search (:mod:`.readahead`).
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
        self._local = threading.local()
        self._controls: frozenset[str] | None = None
        self._batch_reads = True
        self._connections = Connections(config, password, connection_factory)
        self._accounts = AccountResolver(config, self)

    @property
    def encrypted(self) -> bool:
        return self._connections.encrypted

    @property
    def transport(self) -> str:
        """The LDAP library that carries this client's requests: "ldap3" or "libldap"."""
        return self._connections.transport

    # -- connections

    def connection(self) -> Any:
        """This thread's bound connection (opened when it has none, or lost it)."""
        return self._connections.current()

    def close(self) -> None:
        self._connections.close()
        self._local = threading.local()

    def _operation(self, what: str) -> AbstractContextManager[Any]:
        return self._connections.operation(what)

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
                connection.search(dn, "(objectClass=*)", search_scope=BASE, attributes=list(attributes))
            except NoSuchObject:
                return None
            found = [r for r in connection.response or [] if r.get("type") == ENTRY]
            return _normalise(found[0]["attributes"]) if found else None

    def search(self, filter_: str, attributes: list[str], *, base: str | None = None, limit: int = 0,
               scope: Literal["subtree", "base"] = "subtree") -> list[tuple[str, Attributes]]:
        """Matching entries; an alias is never followed (an id must name the entry itself)."""
        with self._operation("searching") as connection:
            try:
                connection.search(
                    base or self.config.base_dn, filter_,
                    search_scope=BASE if scope == "base" else SUBTREE, attributes=attributes, size_limit=limit,
                )
            except NoSuchObject:
                return []
            return [(r["dn"], _normalise(r.get("attributes") or {})) for r in connection.response or []
                    if r.get("type") == ENTRY]

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
                    base or self.config.base_dn, filter_ or self.config.user_filter, search_scope=SUBTREE,
                    attributes=attributes or ["*", "+"], paged_size=self.config.page_size, paged_cookie=cookie,
                )
                page, result = connection.response, connection.result
            controls = result.get("controls") or {}
            cookie = controls.get("1.2.840.113556.1.4.319", {}).get("value", {}).get("cookie")
            for response in page:
                if response.get("type") == ENTRY:
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
                    connection.search("", "(objectClass=*)", search_scope=BASE, attributes=["supportedControl"])
                    entries = [r for r in connection.response or [] if r.get("type") == ENTRY]
                    found = _normalise(entries[0]["attributes"]).get("supportedControl", []) if entries else []
                    self._controls = frozenset(found)
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
                connection.search(base, f"(&{self.config.group_filter}(|{terms}))", search_scope=SUBTREE,
                                  attributes=[member], controls=[matched_values(member, batch)])
                for response in connection.response or []:
                    if response.get("type") != ENTRY:
                        continue
                    values = _normalise(response.get("attributes") or {}).get(member) or []
                    for value in values:
                        groups.setdefault(canonical_dn(value), []).append(response["dn"])
        ahead.put_groups(groups)
        return True

    # -- accounts (the rules are in .accounts)

    def resolve(self, identifier: str) -> Account:
        """One person's account for one uid, RPPS number, mail or DN; never more than one, never anything else.

        Whatever the id's form, the entry found must match the site's ``user_filter``, lie strictly
        below ``base_dn`` and not be a container, group, policy or service object (see
        :class:`.accounts.AccountResolver`).
        """
        return self._accounts.resolve(identifier)

    def resolve_many(self, identifiers: Sequence[str]) -> dict[str, Account | NotFound]:
        """:meth:`resolve` for many ids, a hundred uids (or RPPS numbers, or mails) per search; each id maps to
        its account or to the error :meth:`resolve` would raise for it."""
        return self._accounts.resolve_many(identifiers)

    # -- state

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
            changes.setdefault(m.attribute, []).append((MODIFY[m.operation], list(m.values)))
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
                connection.modify_password(dn, password)
            return
        self.send(dn, request)

    def replace(self, dn: str, changes: Attributes) -> None:
        """Set each attribute to exactly these values ([] deletes it)."""
        self.send(dn, [Modification(k, "replace", tuple(v)) for k, v in changes.items()])

    def modify(self, dn: str, modifications: dict[str, list[tuple[Any, list[str]]]]) -> None:
        """Raw modifications (``{attribute: [(MODIFY_ADD, values)]}``), for group membership and the like."""
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
