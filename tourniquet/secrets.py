"""Secrets by reference, and the one function that masks them wherever text is written.

A site configuration names where a secret lives, never the secret. Every value resolved
here (and every token a connector receives) is registered, and :func:`mask` replaces it in
any text before it reaches a sink: logs, the journal, the report, ticket text, CLI output,
Prefect state messages, artifacts and events.

Why so many forms: an outside system that echoes a secret rarely echoes it as it was sent.
A proxy error page shows the form body (URL-encoded), a debug page the ``Authorization``
header (base64 of ``user:secret``), a dump shows bytes in hex, a Python or JSON message
escapes quotes, an HTML error page uses entities, a proxy URL-encodes an already URL-encoded
body again or logs it in base64, a log line cuts a secret short (``KcCanary/4Rt8+Y...``) or wraps
it across two lines. :func:`forms_of` lists what one secret looks like in each of them (its
prefixes of :data:`MIN_PREFIX` characters or more among them); :func:`mask` replaces all of them,
longest first, and also finds them split by a line break.

Cost: one substring test per form while few forms are known, a lookup per position of the text
once there are many; the line-break pass runs only on text that has a line break.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tourniquet.errors import ConfigError

__all__ = [
    "SecretRef", "register_secret", "secret_in_use", "known_secrets", "mask", "mask_data", "forms_of", "MASK",
    "MIN_SECRET_LENGTH", "MIN_PREFIX",
]

MASK = "***"
#: Shorter values are not masked: "abc" would turn ordinary words into ***.
MIN_SECRET_LENGTH = 4
#: A secret cut short is still masked down to this many first characters (``KcCanary/4Rt...``).
MIN_PREFIX = 12
#: A line break inside a secret as text shows it: a real one (maybe indented after), or JSON's escape.
_BREAK = r"(?:\r?\n[ \t]*|(?:\\r)?\\n[ \t]*)"
#: A base64 fragment shorter than this could match ordinary text by chance: not masked on its own.
_MIN_FRAGMENT = 8

#: Above this many forms, candidates are found by their first characters rather than one by one.
_SCAN_ABOVE = 256
_PREFIX = 8

_guard = threading.Lock()
_KNOWN: dict[str, tuple[str, ...]] = {}  # secret → extra prefixes it is sent with (basic-auth "user:")
_forms: list[str] = []  # every form of every secret, in the order they were registered
_form_set: set[str] = set()
_by_prefix: dict[str, list[str]] = {}  # first _PREFIX characters → forms (for many forms)
_short: list[str] = []  # forms shorter than _PREFIX
_rest_of: dict[str, str] = {}  # a secret's first MIN_PREFIX characters → the secret (a cut secret is masked whole)


def register_secret(value: str, *, user: str | None = None) -> None:
    """Remember a secret so that it is masked wherever it would be written.

    ``user``: the secret is also sent as HTTP basic auth ``user:secret`` (masked as a whole in
    base64, not only the part that depends on the secret alone). Registering is incremental: a
    10,000-account containment registers 10,000 scrambled passwords, each in constant time.
    """
    if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
        return
    with _guard:
        users = _KNOWN.get(value, ())
        if value in _KNOWN and (user is None or user in users):
            return
        _KNOWN[value] = users + ((user,) if user is not None and user not in users else ())
        if len(value) > MIN_PREFIX:
            _rest_of.setdefault(value[:MIN_PREFIX], value)
        for form in sorted(forms_of(value, users=_KNOWN[value]) - _form_set):
            _form_set.add(form)
            _forms.append(form)
            if len(form) >= _PREFIX:
                _by_prefix.setdefault(form[:_PREFIX], []).append(form)
            else:
                _short.append(form)


@contextmanager
def secret_in_use(value: str) -> Iterator[None]:
    """A one-shot secret (a scrambled password nobody will ever know): masked while it exists, then forgotten.

    Forgetting keeps the set of known secrets small: 10,000 scrambled passwords would otherwise make
    every later line of every log and journal record pay for 10,000 secrets.
    """
    known_before = value in _KNOWN
    register_secret(value)
    try:
        yield
    finally:
        if not known_before:
            _forget(value)


def _forget(value: str) -> None:
    global _forms
    with _guard:
        users = _KNOWN.pop(value, None)
        if users is None:
            return
        still = {form for other, others in _KNOWN.items() for form in forms_of(other, users=others)} \
            if len(_KNOWN) < 64 else set()
        gone = forms_of(value, users=users) - still
        if _rest_of.get(value[:MIN_PREFIX]) == value:
            del _rest_of[value[:MIN_PREFIX]]
        _form_set.difference_update(gone)
        _forms = [f for f in _forms if f not in gone]
        for form in gone:
            bucket = _by_prefix.get(form[:_PREFIX])
            if bucket is not None and form in bucket:
                bucket.remove(form)
                if not bucket:
                    del _by_prefix[form[:_PREFIX]]
            if form in _short:
                _short.remove(form)


def _candidates(text: str) -> list[str]:
    if len(_forms) <= _SCAN_ABOVE:
        return [f for f in _forms if f in text]  # a substring test is far cheaper than the regex
    by_prefix = _by_prefix
    found = {form for i in range(len(text) - _PREFIX + 1) for form in by_prefix.get(text[i:i + _PREFIX], ())
             if text.startswith(form, i)}
    found.update(f for f in _short if f in text)
    return list(found)


def known_secrets() -> frozenset[str]:
    return frozenset(_KNOWN)


def _b64_fragments(data: bytes) -> set[str]:
    """The base64 characters that depend on ``data`` alone, at each of the three byte alignments.

    So the secret is found inside any longer base64 text (``user:secret``, a JSON blob, a cookie),
    whatever precedes it: only the one or two characters it shares with its neighbours stay.
    """
    fragments: set[str] = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + data).decode("ascii")
        start = -(-8 * shift // 6)  # first character whose 6 bits are all inside data
        end = (8 * (shift + len(data))) // 6
        fragment = encoded[start:end]
        if len(fragment) >= _MIN_FRAGMENT:
            fragments.add(fragment)
            fragments.add(fragment.replace("+", "-").replace("/", "_"))
    return fragments


def _lower_escapes(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)


def _entities(secret: str) -> set[str]:
    """The secret as an HTML page may show it: escaped, or with its punctuation as numeric entities."""
    def numeric(char: str, style: str) -> str:
        if char.isalnum() and char.isascii():
            return char
        return {"dec": f"&#{ord(char)};", "hex": f"&#x{ord(char):x};", "HEX": f"&#x{ord(char):X};"}[style]

    forms = {html.escape(secret), html.escape(secret, quote=False)}
    forms.update("".join(numeric(c, style) for c in secret) for style in ("dec", "hex", "HEX"))
    forms.add("".join(f"&#{ord(c)};" for c in secret))
    return forms


def forms_of(secret: str, *, users: tuple[str, ...] = ()) -> set[str]:
    """Every form :func:`mask` recognises ``secret`` in: raw, escaped, URL-encoded (once or twice), HTML
    entities, base64 (of the secret, of ``user:secret``, of a URL-encoded form body holding it), hex, and
    its first :data:`MIN_PREFIX` characters (a secret cut short: masked with as much of the rest as follows)."""
    raw = secret.encode("utf-8", "surrogatepass")
    forms = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], repr(secret)[1:-1]}
    escapes = "surrogatepass"
    url_encoded = {quote(secret, safe="", errors=escapes), quote(secret, errors=escapes),
                   quote_plus(secret, errors=escapes), quote_plus(secret, safe="/", errors=escapes)}
    for encoded in url_encoded:
        forms.update({encoded, _lower_escapes(encoded)})
        for twice in (quote(encoded, safe=""), quote_plus(encoded), quote(encoded)):  # a proxy encodes it again
            forms.update({twice, _lower_escapes(twice)})
        forms.update(_b64_fragments(encoded.encode("ascii")))  # base64 of a form body that holds it
    for b64 in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = b64.decode("ascii")
        forms.update({text, text.rstrip("=")})
    forms.update(_b64_fragments(raw))
    for user in users:
        pair = f"{user}:{secret}".encode("utf-8", "surrogatepass")
        for b64 in (base64.b64encode(pair), base64.urlsafe_b64encode(pair)):
            forms.update({b64.decode("ascii"), b64.decode("ascii").rstrip("=")})
    forms.update({raw.hex(), raw.hex().upper()})
    forms.update(_entities(secret))
    if len(secret) > MIN_PREFIX:
        forms.add(secret[:MIN_PREFIX])  # masked with as much of the rest as follows it (see _form_regex)
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


def _form_regex(form: str, *, breaks: bool = False) -> str:
    """The regex of one form; a secret's first characters take as much of the rest as follows them;
    ``breaks``: a line break may split it anywhere."""
    between = f"{_BREAK}?" if breaks else ""
    head = between.join(re.escape(char) for char in form)
    tail = ""
    for char in reversed(_rest_of.get(form, form)[len(form):]):
        tail = f"(?:{between}{re.escape(char)}{tail})?"
    return head + tail


@lru_cache(maxsize=256)
def _pattern_of(forms: tuple[str, ...]) -> re.Pattern[str]:
    """The forms found in one text, longest first (a form inside a longer one is replaced with it)."""
    return re.compile("|".join(_form_regex(f) for f in sorted(forms, key=lambda f: (-len(f), f))))


def mask(text: str) -> str:
    """``text`` with every known secret, in every form :func:`forms_of` lists, replaced by ``***`` — also
    when a line break (or JSON's ``\\n``) splits it."""
    if not _forms or not isinstance(text, str):
        return text
    escaped = "\\n" in text
    split = escaped or "\n" in text
    candidates = _candidates(_without_breaks(text) if split else text)  # one scan finds whole and split forms
    if escaped:  # a secret may hold a backslash and an n itself: look for it as it is too
        candidates = list({*candidates, *_candidates(text)})
    if not candidates:
        return text
    if split:  # breaks are optional in these patterns: whole forms and split ones in one pass
        return _broken(tuple(sorted(candidates))).sub(MASK, text)
    if len(candidates) == 1 and candidates[0] not in _rest_of:
        return text.replace(candidates[0], MASK)
    return _pattern_of(tuple(sorted(candidates))).sub(MASK, text)


def _without_breaks(text: str) -> str:
    """The text with its line breaks (and the indentation after them) taken out; JSON's ``\\n`` too."""
    if "\\n" in text:
        text = text.replace("\\r\\n", "\n").replace("\\n", "\n")
    if "\r" in text:
        text = text.replace("\r", "")
    lines = text.split("\n")
    return lines[0] + "".join([line.lstrip(" \t") for line in lines[1:]])


@lru_cache(maxsize=256)
def _broken(forms: tuple[str, ...]) -> re.Pattern[str]:
    """The forms with an optional line break between any two of their characters, longest first."""
    return re.compile("|".join(_form_regex(f, breaks=True) for f in sorted(forms, key=lambda f: (-len(f), f))))


def mask_data(value: Any) -> Any:
    """A JSON-like value (dicts, lists, text) with :func:`mask` applied to every string in it, keys too."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {mask_data(k) if isinstance(k, str) else k: mask_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_data(v) for v in value]
    return value


class SecretRef(BaseModel):
    """Where a secret lives: ``{env: NAME}``, ``{file: path}`` or ``{prefect_secret: block-name}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = Field(None, description="Environment variable holding the secret.")
    file: str | None = Field(None, description="File holding the secret (first line; keep it mode 0600).")
    prefect_secret: str | None = Field(None, description="Name of a Prefect Secret block.")

    @model_validator(mode="before")
    @classmethod
    def _refuse_inline(cls, data: Any) -> Any:
        if isinstance(data, str):
            raise ValueError(
                "secrets are never written inline: use {env: NAME}, {file: PATH} or {prefect_secret: NAME}"
            )
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> "SecretRef":
        given = [n for n in ("env", "file", "prefect_secret") if getattr(self, n)]
        if len(given) != 1:
            raise ValueError("a secret reference names exactly one of env, file, prefect_secret")
        return self

    def describe(self) -> str:
        if self.env:
            return f"environment variable {self.env}"
        if self.file:
            return f"file {self.file}"
        return f"Prefect Secret block {self.prefect_secret}"

    def get(self, *, user: str | None = None) -> str:
        """Read the secret now (not at load time), and register it for masking.

        ``user``: the secret is sent as basic auth for this user (see :func:`register_secret`).
        """
        value: str | None
        if self.env:
            value = os.environ.get(self.env)
        elif self.file:
            try:
                value = Path(self.file).read_text(encoding="utf-8").splitlines()[0].strip()
            except (OSError, IndexError, UnicodeDecodeError) as exc:
                raise ConfigError(f"cannot read secret from {self.describe()}: {exc}") from None
        else:
            value = _prefect_secret(self.prefect_secret or "")
        if not value:
            raise ConfigError(f"secret not set: {self.describe()}")
        register_secret(value, user=user)
        return value


def _prefect_secret(name: str) -> str:
    try:
        from prefect.blocks.system import Secret

        value = Secret.load(name).get()  # type: ignore[union-attr]  # sync call: a block, not a coroutine
    except Exception as exc:  # Prefect raises ValueError, httpx errors, …: all mean "not available"
        raise ConfigError(f"cannot load Prefect Secret block {name!r}: {exc}") from None
    return str(value)
