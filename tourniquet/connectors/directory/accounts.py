"""From an id (uid, RPPS number, mail or DN) to exactly one person's account, or a reason why not.

An alert names an account however it likes; what gets locked must be one entry that is a person's
account under the site's ``base_dn`` — never an OU, a group, a policy or a service object, never one of
two entries sharing a mail. :class:`AccountResolver` holds those rules and reads the directory through
:class:`EntrySearcher` (a protocol: the client, without an import of it here). Every value that
reaches a filter goes through ``escape_filter_chars``.

May import: ldap3's filter escaping, ``directory.config``, ``directory.errors``, ``directory.flavors``
(``Attributes``), ``tourniquet.errors``, ``model``. Imported by: ``directory.client``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal, Protocol

from ldap3.utils.conv import escape_filter_chars

from tourniquet.connectors.directory.config import DirectoryConfig
from tourniquet.connectors.directory.errors import SYSTEM
from tourniquet.connectors.directory.flavors import FLAVORS, Attributes
from tourniquet.errors import AccountNotFound, AmbiguousAccount, NotAnAccount, NotFound
from tourniquet.model import Account, canonical_dn, dn_within, fold, split_escaped

__all__ = ["AccountResolver", "EntrySearcher", "classify_identifier", "looks_like_dn", "NOT_PERSON_CLASSES", "BATCH"]

RPPS = re.compile(r"^\d{11}$")
IDNAT_PS = re.compile(r"^8\d{11}$")
#: An attribute type in a DN (RFC 4514: a name or a numeric OID), spaces around it allowed as libldap allows them.
_DN_ATTRIBUTE = re.compile(r"\s*(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)*)\s*\Z")
#: The escapes a DN value may hold: a special character or two hex digits after the backslash.
_DN_ESCAPE = re.compile(r'\\(?:[0-9A-Fa-f]{2}|[ "#+,;<=>\\*])')
#: Entries or ids per search when many are read at once (well under the usual server size limit of 500).
BATCH = 100
#: Object classes that are never a person's account, whatever the site's user_filter lets through.
NOT_PERSON_CLASSES = frozenset(c.lower() for c in (
    "organizationalUnit", "organization", "dcObject", "domain", "container", "builtinDomain", "locality",
    "groupOfNames", "groupOfUniqueNames", "groupOfURLs", "group", "posixGroup", "nsContainer", "pwdPolicy",
    "passwordPolicy", "alias", "referral", "subentry", "ldapSubEntry", "applicationProcess", "computer",
    "msDS-GroupManagedServiceAccount", "msDS-ManagedServiceAccount", "device",
))


def classify_identifier(identifier: str) -> Literal["dn", "rpps", "mail", "uid"]:
    """How to look an id up: 11 digits (or 8+RPPS) = RPPS, has @ = mail, parses as a DN = DN, else uid."""
    text = identifier.strip()
    if RPPS.match(text) or IDNAT_PS.match(text):
        return "rpps"
    if "@" in text and "=" not in text:
        return "mail"
    if "=" in text and looks_like_dn(text):
        return "dn"
    return "uid"


def looks_like_dn(text: str) -> bool:
    """RDNs of ``type=value`` pairs, with valid escapes and no NUL: what libldap's DN parser accepts (and no more
    lenient), checked without a library so that both transports classify an id the same way."""
    for rdn in split_escaped(text, ","):
        for ava in split_escaped(rdn, "+"):
            attribute, equals, value = ava.partition("=")
            if not equals or not _DN_ATTRIBUTE.match(attribute) or "\x00" in value or "\\" in _DN_ESCAPE.sub("", value):
                return False
    return True


class EntrySearcher(Protocol):
    """What account resolution reads through: the directory client's search and read."""

    def search(self, filter_: str, attributes: list[str], *, base: str | None = None, limit: int = 0,
               scope: Literal["subtree", "base"] = "subtree") -> list[tuple[str, Attributes]]: ...

    def read(self, dn: str, attributes: Sequence[str] = ...) -> Attributes | None: ...


class AccountResolver:
    """The site's rules for which entry an id names, applied to one directory."""

    def __init__(self, config: DirectoryConfig, entries: EntrySearcher) -> None:
        self.config = config
        self.entries = entries
        flavor = FLAVORS.get(config.flavor)
        #: Also looked up for a mail-like id (Active Directory: the UPN, ``user@realm``).
        self.mail_alternatives: tuple[str, ...] = flavor.mail_alternatives if flavor else ()

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
        wanted = self.account_attributes()
        kind = classify_identifier(text)
        if kind == "dn":
            return self._resolve_dn(text, identifier, wanted)
        attribute, value = self._lookup(text, kind)
        filter_ = f"(&{self.config.user_filter}{self._terms(attribute, [value])})"
        found = self.entries.search(filter_, wanted, limit=11)
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
                results[identifier] = self._resolve_or_why(identifier)
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
                            results[identifier] = self._resolve_or_why(identifier)
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

    def _resolve_or_why(self, identifier: str) -> Account | NotFound:
        try:
            return self.resolve(identifier)
        except NotFound as exc:
            return exc

    def _entries_by_value(self, attribute: str, values: list[str]) -> dict[str, list[tuple[str, Attributes]]]:
        """Accounts whose ``attribute`` is one of ``values`` (one search), by folded value."""
        found = self.entries.search(f"(&{self.config.user_filter}{self._terms(attribute, values)})",
                                    self.account_attributes(), limit=len(values) * 11)
        names = {a.lower() for a in self._attributes_for(attribute)}
        matches: dict[str, list[tuple[str, Attributes]]] = {}
        for dn, attributes in found:
            held = [v for k, vs in attributes.items() if k.lower() in names for v in vs]
            for value in {fold(v) for v in held}:
                matches.setdefault(value, []).append((dn, attributes))
        return matches

    def _attributes_for(self, attribute: str) -> tuple[str, ...]:
        """The attribute an id is looked up by, and its alternatives (a mail's: the AD UPN)."""
        if attribute == self.config.mail_attribute:
            return (attribute, *self.mail_alternatives)
        return (attribute,)

    def _terms(self, attribute: str, values: list[str]) -> str:
        """``(mail=a)`` — or ``(|(mail=a)(userPrincipalName=a)(mail=b)…)`` — every value escaped."""
        terms = [f"({name}={escape_filter_chars(value)})" for value in values for name in self._attributes_for(attribute)]
        return terms[0] if len(terms) == 1 else f"(|{''.join(terms)})"

    def _lookup(self, text: str, kind: str) -> tuple[str, str]:
        """(attribute, value) an id of this kind is looked up by."""
        if kind == "rpps":
            return self.config.rpps_attribute, text[1:] if IDNAT_PS.match(text) else text
        if kind == "mail":
            return self.config.mail_attribute, text
        return self.config.uid_attribute, text

    def account_attributes(self) -> list[str]:
        """What is read of an entry to make an :class:`Account` of it and check it is a person's."""
        return [self.config.uid_attribute, self.config.rpps_attribute, self.config.mail_attribute,
                *self.mail_alternatives, "cn", "displayName", "memberOf", "objectClass"]

    def _resolve_dn(self, text: str, identifier: str, wanted: list[str]) -> Account:
        base = self.config.base_dn
        if not dn_within(text, base):
            raise NotAnAccount(f"{identifier!r} is outside {base}: not a practitioner account", system=SYSTEM)
        if canonical_dn(text) == canonical_dn(base):
            raise NotAnAccount(f"{identifier!r} is the accounts' container ({base}), not an account", system=SYSTEM)
        found = self.entries.search(self.config.user_filter, wanted, base=text, scope="base")
        if not found:
            entry = self.entries.read(text, ["objectClass"])
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
