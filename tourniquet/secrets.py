"""Secrets by reference: a site configuration names where a secret lives, never the secret.

Every value resolved here is registered with :mod:`tourniquet.logs` so that the masking
processor and logging filter replace it before any record reaches a handler, an
artifact or the journal.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tourniquet.errors import ConfigError

__all__ = ["SecretRef", "register_secret", "known_secrets", "mask"]

_KNOWN: set[str] = set()
MASK = "***"


def register_secret(value: str) -> None:
    """Remember a secret value so that it is masked wherever it would be written."""
    if value and len(value) >= 4:
        _KNOWN.add(value)


def known_secrets() -> frozenset[str]:
    return frozenset(_KNOWN)


def mask(text: str) -> str:
    """Replace every known secret in ``text``."""
    for secret in sorted(_KNOWN, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


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

    def get(self) -> str:
        """Read the secret now (not at load time), and register it for masking."""
        value: str | None
        if self.env:
            value = os.environ.get(self.env)
        elif self.file:
            try:
                value = Path(self.file).read_text(encoding="utf-8").splitlines()[0].strip()
            except (OSError, IndexError) as exc:
                raise ConfigError(f"cannot read secret from {self.describe()}: {exc}") from None
        else:
            value = _prefect_secret(self.prefect_secret or "")
        if not value:
            raise ConfigError(f"secret not set: {self.describe()}")
        register_secret(value)
        return value


def _prefect_secret(name: str) -> str:
    try:
        from prefect.blocks.system import Secret

        value = Secret.load(name).get()  # type: ignore[union-attr]  # sync call: a block, not a coroutine
    except Exception as exc:  # Prefect raises ValueError, httpx errors, …: all mean "not available"
        raise ConfigError(f"cannot load Prefect Secret block {name!r}: {exc}") from None
    return str(value)
