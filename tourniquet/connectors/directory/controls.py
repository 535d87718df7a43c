"""The two LDAP controls that let a chunk of accounts cost a few operations instead of many.

- **Post-read** (RFC 4527, ``1.3.6.1.1.13.2``): the server returns the entry's attributes as they
  are right after a modify, in the modify's own response — the read-back without a second operation.
- **Matched values** (RFC 3876, ``1.2.826.0.1.3344810.2.3``): a search returns only the attribute
  values matching a filter — the groups of a whole chunk of accounts in one search, with each
  group's matching members only (not its thousands of others).

Both are used only when the server lists them in its root DSE ``supportedControl`` (OpenLDAP does;
Active Directory does not, and then each read is its own operation). Values are BER-encoded here:
ldap3 passes a control's value through as bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["POST_READ", "MATCHED_VALUES", "post_read", "matched_values", "post_read_attributes"]

POST_READ = "1.3.6.1.1.13.2"
MATCHED_VALUES = "1.2.826.0.1.3344810.2.3"
Control = tuple[str, bool, bytes]


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


def post_read_attributes(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """The attributes the server returned in a modify's post-read control (ldap3 decodes it), or None."""
    controls = (result or {}).get("controls") or {}
    value = (controls.get(POST_READ) or {}).get("value")
    if isinstance(value, Mapping) and isinstance(value.get("result"), Mapping):  # ldap3: a case-insensitive mapping
        return dict(value["result"])
    return None
