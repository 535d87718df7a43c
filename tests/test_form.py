"""The respond form and the alert forgive how the accounts are written, and say clearly what they refuse.

A responder pastes accounts from a mail (one per line, commas, spaces), an alert sends a list, a
string, or nothing at all (as JSON text, see ``prefect.yaml``): each comes out as the same ids,
in order, once each — or as an :class:`AccountsError` that says what was given.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tourniquet.flows.form import AccountsError, parse_accounts, run_name


@pytest.mark.parametrize("given_value", [
    ["jdupont", "10101010104", "mmartin@sante.example"],
    "jdupont\n10101010104\nmmartin@sante.example\n",
    "jdupont, 10101010104; mmartin@sante.example",
    "  jdupont 10101010104\tmmartin@sante.example  ",
    '["jdupont", "10101010104", "mmartin@sante.example"]',  # what the alert trigger renders
    '"jdupont 10101010104 mmartin@sante.example"',
    ["jdupont, 10101010104", "mmartin@sante.example", "jdupont"],
])
def test_a_list_or_a_block_of_text_gives_the_same_ids(given_value: object) -> None:
    assert parse_accounts(given_value) == ["jdupont", "10101010104", "mmartin@sante.example"]


def test_an_rpps_number_alone_is_an_id_not_a_number() -> None:
    assert parse_accounts("10101010104") == ["10101010104"]
    assert parse_accounts([10101010104]) == ["10101010104"]


@pytest.mark.parametrize("given_value, said", [
    (None, "no accounts were given"),
    ("null", "no accounts were given"),
    ("", "no accounts were given"),
    (" , ;\n", "no accounts were given"),
    ("[]", "no accounts were given"),
    ('{"uid": "jdupont"}', 'not an object: {"uid": "jdupont"}'),
    ("true", "not true/false"),
    ([["nested"]], "not list"),
    ([{"uid": "x"}], "not an object"),
])
def test_what_cannot_be_read_as_accounts_is_refused_saying_what_it_was(given_value: object, said: str) -> None:
    with pytest.raises(AccountsError, match=said.replace("[", r"\[").replace("{", r"\{")):
        parse_accounts(given_value)


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                                   max_size=3), max_leaves=8)


@given(st.one_of(JSONISH, JSONISH.map(json.dumps), st.text()))
def test_any_alert_payload_gives_ids_or_an_accounts_error_never_anything_else(payload: object) -> None:
    try:
        ids = parse_accounts(payload)
    except AccountsError as exc:
        assert str(exc)
        return
    assert ids and len(ids) == len(set(ids))
    assert all(id_ and not any(c.isspace() or c in ",;" for c in id_) for id_ in ids)


def test_run_names_tell_a_plan_from_a_containment() -> None:
    assert run_name("inc-20261201-624586d0", dry_run=True) == "inc-20261201-624586d0-DRY-RUN"
    assert run_name("inc-20261201-624586d0", dry_run=False) == "inc-20261201-624586d0-contain"
