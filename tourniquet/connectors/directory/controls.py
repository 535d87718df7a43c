"""The two LDAP controls that let a chunk of accounts cost a few operations instead of many.

- **Post-read** (RFC 4527, ``1.3.6.1.1.13.2``): the server returns the entry's attributes as they
  are right after a modify, in the modify's own response — the read-back without a second operation.
- **Matched values** (RFC 3876, ``1.2.826.0.1.3344810.2.3``): a search returns only the attribute
  values matching a filter — the groups of a whole chunk of accounts in one search, with each
  group's matching members only (not its thousands of others).

- **Paged results** (RFC 2696, ``1.2.840.113556.1.4.319``): a sweep of a million entries a page at a time.

Post-read and matched values are used only when the server lists them in its root DSE
``supportedControl`` (OpenLDAP does; Active Directory does not, and then each read is its own
operation). Values are BER-encoded and decoded here, a few lines each: the connection passes them
through as bytes (a generic ASN.1 library spent more time on them than the server did).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["POST_READ", "MATCHED_VALUES", "PAGED_RESULTS", "Control", "MalformedControl", "post_read", "matched_values", "paged",
           "post_read_attributes", "parse_entry", "parse_paged"]

POST_READ = "1.3.6.1.1.13.2"
MATCHED_VALUES = "1.2.826.0.1.3344810.2.3"
PAGED_RESULTS = "1.2.840.113556.1.4.319"
#: (OID, criticality, BER-encoded value): a control as it goes on the wire.
Control = tuple[str, bool, bytes]


class MalformedControl(ValueError):
    """A control value the server sent does not parse (the connection reports it as a protocol error)."""


def _tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        length = bytes([size])
    else:
        raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def post_read(attributes: Iterable[str]) -> Control:
    """AttributeSelection ::= SEQUENCE OF LDAPString (the attributes to return after the modify)."""
    return POST_READ, True, _tlv(0x30, b"".join(_tlv(0x04, name.encode("utf-8")) for name in attributes))


def matched_values(attribute: str, values: Iterable[str]) -> Control:
    """ValuesReturnFilter ::= SEQUENCE OF SimpleFilterItem, here equalityMatch [3] (attribute = value) items."""
    name = _tlv(0x04, attribute.encode("utf-8"))
    items = b"".join(_tlv(0xA3, name + _tlv(0x04, value.encode("utf-8"))) for value in values)
    return MATCHED_VALUES, True, _tlv(0x30, items)


def paged(size: int, cookie: bytes = b"") -> Control:
    """realSearchControlValue ::= SEQUENCE { size INTEGER, cookie OCTET STRING }."""
    return PAGED_RESULTS, True, _tlv(0x30, _tlv(0x02, _integer(size)) + _tlv(0x04, cookie))


def _integer(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True)


def _header(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the element at ``at``; definite lengths only (as LDAP requires)."""
    if at + 2 > len(data):
        raise MalformedControl("truncated element")
    tag, size = data[at], data[at + 1]
    at += 2
    if size & 0x80:
        count = size & 0x7F
        if count == 0 or count > 4 or at + count > len(data):
            raise MalformedControl("bad length")
        size = int.from_bytes(data[at:at + count], "big")
        at += count
    if at + size > len(data):
        raise MalformedControl("element longer than the value")
    return tag, at, at + size


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    found = []
    while start < end:
        element = _header(data, start)
        if element[2] > end:
            raise MalformedControl("element longer than its parent")
        found.append(element)
        start = element[2]
    return found


def parse_entry(value: bytes) -> dict[str, list[bytes]]:
    """A SearchResultEntry ([APPLICATION 4] { objectName, attributes }), as the post-read control returns it."""
    tag, start, end = _header(value, 0)
    parts = _children(value, start, end)
    if tag != 0x64 or len(parts) != 2:
        raise MalformedControl("not a search result entry")
    attributes: dict[str, list[bytes]] = {}
    _, first, last = parts[1]
    for _, attribute_start, attribute_end in _children(value, first, last):
        pieces = _children(value, attribute_start, attribute_end)
        if len(pieces) != 2:
            raise MalformedControl("bad attribute")
        _, name_start, name_end = pieces[0]
        name = value[name_start:name_end].decode("utf-8", "replace")
        attributes[name] = [value[a:b] for _, a, b in _children(value, pieces[1][1], pieces[1][2])]
    return attributes


def parse_paged(value: bytes) -> bytes:
    """The cookie of a paged-results response (empty: the last page)."""
    tag, start, end = _header(value, 0)
    parts = _children(value, start, end)
    if tag != 0x30 or len(parts) != 2:
        raise MalformedControl("not a paged results value")
    return value[parts[1][1]:parts[1][2]]


def post_read_attributes(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """The attributes the server returned in a modify's post-read control (decoded by the connection), or None."""
    controls = (result or {}).get("controls") or {}
    value = (controls.get(POST_READ) or {}).get("value")
    if isinstance(value, Mapping) and isinstance(value.get("result"), Mapping):
        return dict(value["result"])
    return None
