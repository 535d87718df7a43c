"""The encodings a chatty outside system adds on the way: property tests, written independently of the code.

An identity provider's proxy, an HTML error page or a log collector echoes a client secret — not
as it was sent, but URL-encoded a second time, with HTML entities, inside the base64 of the whole
URL-encoded form body (``client_id=…&client_secret=…&grant_type=…``, at any byte alignment), cut
short after 12 or more characters (``KcCanary/4Rt8+Y...``), or wrapped onto the next line (a real
line break, CRLF and indentation, or JSON's ``\\n``). Hypothesis generates secrets and where they
sit; each encoding is built here with the standard library, and :func:`~tourniquet.secrets.mask`
must leave none of it. The same with enough other secrets registered that masking switches to its
index of first characters (more than 256 forms), as in a run scrambling many passwords.
"""

from __future__ import annotations

import base64
import html
import secrets as random_secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tourniquet import secrets as registry
from tourniquet.secrets import MASK, MIN_PREFIX, mask, register_secret

SECRETS = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "S")), min_size=13,
                  max_size=44).filter(lambda s: "*" not in s and "\\" not in s)
AROUND = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "Zs")), max_size=24)
CROWDS = [0, 40]  # other secrets registered first: 40 of them is well over the 256 forms of the index path


@contextmanager
def isolated(crowd: int) -> Iterator[None]:
    """Generated secrets must not stay registered for the rest of the session (they would mask other tests)."""
    names = ("_KNOWN", "_forms", "_form_set", "_by_prefix", "_short", "_rest_of")
    saved = {name: getattr(registry, name) for name in names}
    for name, empty in zip(names, ({}, [], set(), {}, [], {})):
        setattr(registry, name, empty)
    try:
        for _ in range(crowd):
            register_secret(random_secrets.token_urlsafe(24))
        yield
    finally:
        for name, value in saved.items():
            setattr(registry, name, value)


def _double_url(secret: str) -> list[str]:
    return [quote(quote(secret, safe=""), safe=""), quote_plus(quote_plus(secret)), quote(quote(secret)),
            quote(quote_plus(secret), safe="")]


def _entities(secret: str) -> list[str]:
    return [html.escape(secret), html.escape(secret, quote=False), "".join(f"&#{ord(c)};" for c in secret),
            "".join(c if c.isascii() and c.isalnum() else f"&#x{ord(c):x};" for c in secret)]


@pytest.mark.parametrize("crowd", CROWDS)
@settings(max_examples=120, deadline=None)
@given(secret=SECRETS, before=AROUND, after=AROUND, which=st.integers(min_value=0, max_value=7))
def test_double_url_encoding_and_html_entities_are_masked(crowd: int, secret: str, before: str, after: str,
                                                          which: int) -> None:
    encoded = (_double_url(secret) + _entities(secret))[which]
    with isolated(crowd):
        register_secret(secret)
        masked = mask(f"{before}<pre>{encoded}</pre>{after}")
    assert encoded not in masked and MASK in masked, (encoded, masked)


@pytest.mark.parametrize("crowd", CROWDS)
@settings(max_examples=120, deadline=None)
@given(secret=SECRETS, client=st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_.", min_size=1, max_size=20),
       plus=st.booleans(), urlsafe=st.booleans())
def test_base64_of_the_url_encoded_form_body_is_masked_at_any_alignment(crowd: int, secret: str, client: str,
                                                                       plus: bool, urlsafe: bool) -> None:
    value = quote_plus(secret) if plus else quote(secret, safe="")
    head = f"client_id={client}&client_secret=".encode()
    body = head + value.encode() + b"&grant_type=client_credentials"
    b64 = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(body).decode()
    first, last = -(-8 * len(head) // 6), 8 * (len(head) + len(value)) // 6  # characters that are the secret's only
    inner = b64[first:last]
    with isolated(crowd):
        register_secret(secret)
        masked = mask(f"proxy log: body(base64)={b64}")
    assert inner not in masked and MASK in masked, (inner, masked)
    assert not any(inner[i:i + 10] in masked for i in range(len(inner) - 9)), (inner, masked)


@pytest.mark.parametrize("crowd", CROWDS)
@settings(max_examples=120, deadline=None)
@given(secret=SECRETS, before=AROUND, cut=st.integers(min_value=MIN_PREFIX), ellipsis=st.sampled_from(["...", "…", ""]))
def test_a_secret_cut_short_after_twelve_characters_or_more_is_masked(crowd: int, secret: str, before: str,
                                                                      cut: int, ellipsis: str) -> None:
    shown = secret[:min(cut, len(secret) - 1)]
    with isolated(crowd):
        register_secret(secret)
        masked = mask(f"{before} invalid_client: {shown}{ellipsis} (truncated)")
    assert secret[:MIN_PREFIX] not in masked, (shown, masked)
    assert MASK in masked and masked.endswith(" (truncated)"), (shown, masked)
    assert masked.startswith(before) or secret[0] in before, (shown, masked)  # nothing else was eaten


@pytest.mark.parametrize("crowd", CROWDS)
@settings(max_examples=160, deadline=None)
@given(secret=SECRETS, before=AROUND, after=AROUND, data=st.data(),
       line_break=st.sampled_from(["\n", "\r\n", "\n    ", "\n\t", "\\n", "\\r\\n"]),
       which=st.sampled_from(["raw", "url", "base64"]))
def test_a_secret_split_by_a_line_break_is_masked(crowd: int, secret: str, before: str, after: str,
                                                  data: st.DataObject, line_break: str, which: str) -> None:
    form = {"raw": secret, "url": quote(secret, safe=""),
            "base64": base64.b64encode(secret.encode()).decode()}[which]
    at = data.draw(st.integers(min_value=1, max_value=len(form) - 1))
    split = form[:at] + line_break + form[at:]
    with isolated(crowd):
        register_secret(secret)
        masked = mask(f"{before} error:\n{split}\n{after}")
    assert split not in masked and MASK in masked, (split, masked)
    for piece in (form[:at], form[at:]):
        if len(piece) >= 8:
            assert piece not in masked, (piece, masked)


def test_the_canary_of_the_issue_in_each_form() -> None:
    """The secret the issue found leaking, in the five forms it leaked in."""
    secret = "KcCanary/4Rt8+Y=qZ&x 0b5e-long"
    body = f"client_id=tourniquet&client_secret={quote_plus(secret)}&grant_type=client_credentials"
    echoes = [quote(quote(secret, safe=""), safe=""), html.escape(secret), base64.b64encode(body.encode()).decode(),
              "KcCanary/4Rt8+Y...", "KcCanary/4R\nt8+Y=qZ&x 0b5e-long"]
    with isolated(0):
        register_secret(secret)
        for echo in echoes:
            masked = mask(f"upstream said: {echo}")
            assert MASK in masked and "KcCanary" not in masked and "4Rt8" not in masked, (echo, masked)
            if echo.startswith("Y2"):
                assert base64.b64encode(body.encode()).decode() not in masked
