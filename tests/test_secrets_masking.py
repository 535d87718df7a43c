"""The one masking function, against generated secrets and the texts that carry them.

Property tests (hypothesis): whatever a secret is made of — letters, ``/ + = & %``, quotes, spaces,
accents, emoji — and wherever it sits in a longer text, each form an outside system may echo it in
(raw, URL-encoded, base64 alone or as basic auth, hex, JSON-escaped) is replaced; text without
a secret is left exactly as it was; masking twice changes nothing more.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, quote_plus

from hypothesis import given, settings
from hypothesis import strategies as st

from tourniquet import secrets as registry
from tourniquet.secrets import MASK, mask, mask_data, register_secret

SECRETS = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")), min_size=10,
                  max_size=40).filter(lambda s: s.strip() == s and "*" not in s)
AROUND = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "Zs")), max_size=30)


@contextmanager
def isolated() -> Iterator[None]:
    """Generated secrets must not stay registered for the rest of the session (they would mask other tests)."""
    names = ("_KNOWN", "_forms", "_form_set", "_by_prefix", "_short", "_rest_of")
    saved = {name: getattr(registry, name) for name in names}
    for name, empty in zip(names, ({}, [], set(), {}, [], {})):
        setattr(registry, name, empty)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(registry, name, value)


def _forms(secret: str, user: str) -> list[str]:
    raw = secret.encode()
    return [secret, quote(secret, safe=""), quote_plus(secret), base64.b64encode(raw).decode(),
            base64.urlsafe_b64encode(raw).decode().rstrip("="), base64.b64encode(f"{user}:{secret}".encode()).decode(),
            raw.hex(), raw.hex().upper(), json.dumps(secret)[1:-1]]


@settings(max_examples=200, deadline=None)
@given(secret=SECRETS, before=AROUND, after=AROUND, which=st.integers(min_value=0, max_value=8))
def test_every_form_of_a_secret_is_masked_wherever_it_is(secret: str, before: str, after: str, which: int) -> None:
    with isolated():
        register_secret(secret, user="svc-tourniquet")
        form = _forms(secret, "svc-tourniquet")[which]
        text = f"{before}{form}{after}"

        masked = mask(text)

        assert form not in masked and MASK in masked
        assert mask(masked) == masked


@settings(max_examples=100, deadline=None)
@given(secret=SECRETS, prefix=st.binary(min_size=0, max_size=5))
def test_a_secret_inside_any_longer_base64_is_masked(secret: str, prefix: bytes) -> None:
    """``Authorization: Basic`` of a user we never heard of, a cookie, a JSON blob: base64 of secret-plus-anything."""
    with isolated():
        register_secret(secret)
        encoded = base64.b64encode(prefix + secret.encode() + b"!").decode()

        masked = mask(encoded)

        assert MASK in masked
        assert not any(encoded[i:i + 12] in masked for i in range(4, len(encoded) - 16, 4)), (encoded, masked)


def test_many_secrets_are_found_the_same_way_as_few() -> None:
    """Past a few hundred forms candidates are found by their first characters: same answers."""
    with isolated():
        many = [f"tok-{n:04d}-{'x' * (n % 7)}-secret" for n in range(120)]
        for secret in many:
            register_secret(secret)
        assert len(registry._forms) > 256
        text = " | ".join(f"{s} and {quote_plus(s)} and {s.encode().hex()}" for s in many[::7])
        masked = mask(text)
        assert all(s not in masked for s in many) and masked.count(MASK) == 3 * len(many[::7])


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet="abcdefghij .,:;-_()[]{}\"'0123456789", max_size=200))
def test_text_without_a_secret_is_left_as_it_was(text: str) -> None:
    with isolated():
        register_secret("zz-only-this-one-is-secret-zz")
        assert mask(text) == text


def test_nested_data_is_masked_keys_and_values() -> None:
    with isolated():
        register_secret("n3sted-s3cret-value")
        data = {"url": "https://x/?t=n3sted-s3cret-value", "n3sted-s3cret-value": [1, {"deep": "n3sted-s3cret-value"}]}

        assert mask_data(data) == {"url": "https://x/?t=***", "***": [1, {"deep": "***"}]}
