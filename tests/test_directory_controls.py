"""The BER of the three LDAP controls the connector encodes and decodes itself (post-read, matched values, paged).

Round trips against an independent encoder (pyasn1, which python-ldap ships), and hostile bytes from a server:
whatever arrives, the decoder returns or raises ``MalformedControl`` — which the connector reports as a
permanent error naming the operation — never another exception.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ldap.controls.pagedresults import SimplePagedResultsControl
from ldap.controls.readentry import PostReadControl
from pyasn1.codec.ber import encoder
from pyasn1_modules.rfc2251 import LDAPDN, AttributeDescription, AttributeValue, PartialAttributeList, SearchResultEntry

from tourniquet.connectors.directory.controls import (
    MalformedControl,
    paged,
    parse_entry,
    parse_paged,
    post_read,
)
from tourniquet.connectors.directory.errors import ldap_errors
from tourniquet.errors import PermanentError

NAMES = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"), min_size=1, max_size=20)
VALUES = st.lists(st.binary(max_size=300), max_size=5)


def _entry(dn: str, attributes: dict[str, list[bytes]]) -> bytes:
    """A SearchResultEntry encoded by pyasn1 (RFC 2251's module), as a server would send it in a post-read."""
    entry = SearchResultEntry()
    entry.setComponentByName("objectName", LDAPDN(dn.encode("utf-8")))
    listed = PartialAttributeList()
    for index, (name, values) in enumerate(attributes.items()):
        attribute = listed.componentType.clone()
        attribute.setComponentByName("type", AttributeDescription(name.encode("utf-8")))
        vals = attribute.getComponentByName("vals")
        for position, value in enumerate(values):
            vals.setComponentByPosition(position, AttributeValue(value))
        listed.setComponentByPosition(index, attribute)
    entry.setComponentByName("attributes", listed)
    return encoder.encode(entry)  # type: ignore[no-any-return]


@given(st.dictionaries(NAMES, VALUES, max_size=8), st.text(max_size=200))
def test_a_post_read_entry_decodes_to_what_was_encoded(attributes: dict[str, list[bytes]], dn: str) -> None:
    assert parse_entry(_entry(dn, attributes)) == attributes


@given(st.integers(min_value=0, max_value=2**31 - 1), st.binary(max_size=300))
def test_the_paged_results_value_matches_python_ldaps_and_its_cookie_comes_back(size: int, cookie: bytes) -> None:
    oid, critical, value = paged(size, cookie)
    reference = SimplePagedResultsControl(True, size=size, cookie=cookie)
    assert (oid, value) == (reference.controlType, reference.encodeControlValue())
    assert parse_paged(value) == cookie


def test_the_post_read_request_matches_python_ldaps() -> None:
    oid, critical, value = post_read(["pwdAccountLockedTime", "pwdReset"])
    reference = PostReadControl(criticality=True, attrList=["pwdAccountLockedTime", "pwdReset"])
    assert (oid, critical, value) == (reference.controlType, True, reference.encodeControlValue())


@given(st.binary(max_size=400))
def test_hostile_bytes_either_decode_or_are_malformed_never_a_crash(data: bytes) -> None:
    for decode in (parse_entry, parse_paged):
        try:
            decode(data)
        except MalformedControl:
            pass


@pytest.mark.parametrize("data", [b"", b"\x64", b"\x64\x84\xff\xff\xff\xff", b"\x64\x02\x04\x05", b"\x30\x00"])
def test_a_malformed_answer_is_a_permanent_error_naming_the_operation(data: bytes) -> None:
    with pytest.raises(PermanentError, match="modifying uid=x.*does not parse"):
        with ldap_errors("modifying uid=x"):
            parse_entry(data)


def test_a_name_that_is_not_utf8_is_a_permanent_error_not_a_traceback() -> None:
    with pytest.raises(PermanentError, match="searching: the directory sent a name that is not UTF-8"):
        with ldap_errors("searching"):
            b"uid=\xff".decode("utf-8")
