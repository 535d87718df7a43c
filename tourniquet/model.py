"""Small shared models: the resolved account every layer passes around, DNs in canonical form, approvals.

Imported by every layer; imports nothing of Tourniquet's (so it can never be part of a circle).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from pydantic import BaseModel, Field

__all__ = ["Account", "canonical_dn", "dn_within", "fold", "split_escaped", "escape_value", "INCIDENT_ID",
           "ApprovalRequest", "ApprovalDecision", "Approver"]

#: Incident ids name the evidence folder and go into ticket searches (TicketSQL, JQL): a safe alphabet only,
#: at most 128 characters (checked by :func:`tourniquet.untrusted.check_incident_id`, the one check).
INCIDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


class Account(BaseModel):
    """A resolved practitioner account, as steps pass it to each other."""

    dn: str
    uid: str | None = None
    rpps: str | None = None
    mail: str | None = None
    name: str | None = None
    groups: list[str] = Field(default_factory=list)
    requested_as: str = ""


_HEX = re.compile(r"\\([0-9a-fA-F]{2})")


def fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def split_escaped(text: str, separators: str) -> list[str]:
    """Split on separators that are not backslash-escaped (escapes kept)."""
    parts: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            current.append(text[index:index + 2])
            index += 2
            continue
        if char in separators:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    """Decode ``\\XX`` hex escapes (as UTF-8 bytes) and ``\\c`` escapes of an RDN value."""
    out = bytearray()
    index = 0
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            match = _HEX.match(value, index)
            if match:
                out.append(int(match.group(1), 16))
                index += 3
                continue
            out += value[index + 1].encode()
            index += 2
            continue
        out += char.encode()
        index += 1
    return out.decode("utf-8", "replace")


def escape_value(value: str, keep_wildcards: bool) -> str:
    """Re-escape the characters that structure a DN, so a value cannot fake one."""
    special = ',+="\\<>;#'
    out = []
    for char in value:
        if char in special:
            out.append("\\" + char)
        elif not keep_wildcards and char in "*?":
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


@lru_cache(maxsize=1 << 16)
def canonical_dn(dn: str, *, pattern: bool = False) -> str:
    """``UID=A\\2dB , OU=People`` → ``uid=a-b,ou=people``; with pattern=True ``*``/``?`` stay wildcards."""
    rdns = []
    for rdn in split_escaped(dn.strip(), ","):
        pairs = []
        for ava in split_escaped(rdn, "+"):
            if "=" not in ava:
                pairs.append(escape_value(fold(_unescape(ava.strip())), pattern))
                continue
            attribute, value = ava.split("=", 1)
            value = value.strip()
            decoded = value if pattern else _unescape(value)
            if pattern:
                decoded = _unescape(value.replace("\\*", "\x00").replace("\\?", "\x01"))
                escaped = escape_value(fold(decoded), True).replace("\x00", "\\*").replace("\x01", "\\?")
            else:
                escaped = escape_value(fold(decoded), False)
            pairs.append(f"{fold(attribute.strip())}={escaped}")
        rdns.append("+".join(sorted(pairs)))
    return ",".join(rdns)


def dn_within(dn: str, base: str) -> bool:
    """``dn`` is ``base`` or an entry below it (both compared in canonical form)."""
    canonical, root = canonical_dn(dn), canonical_dn(base)
    return canonical == root or canonical.endswith("," + root)


@dataclass(frozen=True)
class ApprovalRequest:
    """What a person is asked to approve (a blast radius over the limit)."""

    incident: str
    playbook: str
    step: str
    reason: str
    accounts: list[str]
    limit: int
    timeout_seconds: float
    #: Markdown to show as it is (an approval step's own summary); empty: the engine describes the request.
    description: str = ""


@dataclass(frozen=True)
class ApprovalDecision:
    """A person's answer; a timeout or a failing approver is a decision too (a no)."""

    approved: bool
    approver: str = ""
    comment: str = ""


#: Who decides: a request in, a decision out (the Prefect form in a flow run; "no" elsewhere).
Approver = Callable[[ApprovalRequest], ApprovalDecision]
