"""Protected-account patterns: which accounts no playbook may ever change.

The pattern language (also in docs/explanation/guardrails.md):

- ``memberOf=<group DN glob>`` — any account whose ``memberOf`` matches the glob;
- ``<attr>=<value>[,...]`` — a DN glob. It matches the account's DN when it matches the
  whole DN, its leading RDNs (``uid=breakglass-*`` matches ``uid=breakglass-x,ou=people,…``)
  or the subtree it lives in (``ou=services,dc=sante,dc=example`` protects everything below).
  A ``uid=<glob>`` pattern also matches the account's uid attribute;
- anything else — a glob on the uid.

Globs know only ``*`` (any run of characters, commas included) and ``?`` (one character);
``[``, ``]`` and every other character are literal. Matching is case-insensitive and
Unicode-normalised (NFKC), and DNs are compared in a canonical form: no spaces around
``,``, ``=`` or ``+``, attribute names lower-cased, hex escapes (``\\2d``) and backslash
escapes decoded — so ``UID=BreakGlass\\2dAdmin , OU=People`` is the same entry as
``uid=breakglass-admin,ou=people``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from tourniquet.model import canonical_dn, escape_value, fold, split_escaped

__all__ = ["canonical_dn", "is_protected", "glob_match", "identity_of"]

@lru_cache(maxsize=512)
def _glob(pattern: str) -> re.Pattern[str]:
    """``*`` and ``?`` are wildcards; a backslash-escaped character is literal; nothing else is special."""
    out = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            out.append(re.escape(pattern[index:index + 2]))
            index += 2
            continue
        out.append(".*" if char == "*" else "." if char == "?" else re.escape(char))
        index += 1
    return re.compile("".join(out), re.DOTALL)


def glob_match(text: str, pattern: str) -> bool:
    return _glob(pattern).fullmatch(text) is not None


def _dn_matches(dn: str, pattern: str) -> bool:
    """The whole DN, its leading RDNs, or the subtree it is in."""
    return glob_match(dn, pattern) or glob_match(dn, pattern + ",*") or glob_match(dn, "*," + pattern)


def identity_of(account: Any) -> dict[str, Any]:
    """dn / uid / groups of an account given as an Account, a dict, a DN or a uid."""
    if isinstance(account, BaseModel):
        account = account.model_dump()
    if isinstance(account, str):
        text = account.strip()
        return {"dn": text if "=" in text else "", "uid": "" if "=" in text else text, "groups": []}
    if not isinstance(account, dict):
        return {"dn": "", "uid": str(account or ""), "groups": []}
    groups = account.get("groups") or account.get("memberOf") or []
    if isinstance(groups, str):
        groups = [groups]
    return {"dn": str(account.get("dn") or ""), "uid": str(account.get("uid") or ""), "groups": list(groups)}


def is_protected(account: Any, patterns: Sequence[str], *, also: Iterable[Any] = ()) -> str | None:
    """The first pattern that protects the account (or any of ``also``, e.g. its live entry), else None."""
    identities = [identity_of(account)] + [identity_of(a) for a in also]
    for pattern in patterns:
        text = pattern.strip()
        if not text:
            continue
        for identity in identities:
            if _matches(identity, text):
                return pattern
    return None


def _matches(identity: dict[str, Any], pattern: str) -> bool:
    dn = canonical_dn(identity["dn"]) if identity["dn"] else ""
    uid = fold(identity["uid"].strip())
    head = pattern.split("=", 1)[0].strip()
    if "=" in pattern and fold(head) == "memberof":
        wanted = canonical_dn(pattern.split("=", 1)[1], pattern=True)
        return any(_dn_matches(canonical_dn(str(g)), wanted) for g in identity["groups"])
    if "=" in pattern:
        wanted = canonical_dn(pattern, pattern=True)
        if dn and _dn_matches(dn, wanted):
            return True
        first = split_escaped(wanted, ",")[0]
        if first.startswith("uid=") and "+" not in first and uid:
            value = first[4:]
            return glob_match(escape_value(uid, False), value)
        return False
    return bool(uid) and glob_match(escape_value(uid, False), escape_value(fold(pattern), True))
