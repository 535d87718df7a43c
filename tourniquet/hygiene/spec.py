"""The hygiene playbook's shape: pydantic models, extra fields forbidden (a typo is an error).

    hygiene: daily                       # name
    version: 1
    title: Daily account hygiene
    platform:                            # what every access check assumes about the platform (optional)
      working_hours: [7, 20]
      utc_offset_hours: 1
    checks:
      - id: not-registered
        check: not_in_register           # a check of the catalogue (tourniquet.hygiene.checks)
        severity: high
        suggest: credential-misuse       # playbook a responder would run (optional)
        with: {extract: register}        # the check's parameters, validated at load time
    respond:
      playbook: credential-misuse
      propose_at: high                   # findings at/above: a dry-run plan of that playbook
      execute_at: critical               # at/above: a real run, behind the approval gate (null: never)

Imports only :mod:`tourniquet.hygiene.findings` (for :class:`Severity`); the loader, the checks and
the runner import it. The check parameters are validated by the loader, against the catalogue.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tourniquet.hygiene.findings import Severity

__all__ = ["CheckSpec", "RespondPolicy", "PlatformSpec", "HygienePlaybook", "working_hours"]

_ID = r"^[a-z][a-z0-9_-]{0,62}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CheckSpec(_Strict):
    """One check to run, with its parameters and the severity of what it finds."""

    id: str = Field(pattern=_ID, description="Unique name; findings carry it.")
    check: str = Field(description="A check of the catalogue: not_in_register, dormant, unprotected, unusual_volume, "
                                   "off_hours, new_source_ip, slow_scraping, night_network, behaviour_change.")
    description: str = ""
    severity: Severity = Field(Severity.medium, description="Severity of each finding of this check.")
    suggest: str | None = Field(None, description="Playbook a responder would run on the account.")
    enabled: bool = True
    with_: dict[str, Any] = Field(default_factory=dict, alias="with", description="Parameters of the check.")


class RespondPolicy(_Strict):
    """How findings turn into response runs: only ever through the guarded response playbooks."""

    playbook: str = Field("credential-misuse", description="Response playbook to plan or run.")
    propose_at: Severity | None = Field(Severity.high, description="Plan a dry run for findings at/above this.")
    execute_at: Severity | None = Field(
        None, description="Start a real run, behind the approval gate, for findings at/above this (null: never)."
    )
    max_accounts: int = Field(20, ge=1, description="At most this many accounts in one proposed run.")
    reason: str = Field("hygiene finding", description="Reason recorded in the response run.")


def working_hours(value: tuple[int, int]) -> tuple[int, int]:
    start, end = value
    if not (0 <= start < end <= 24):
        raise ValueError("working_hours is [start, end) with 0 <= start < end <= 24")
    return value


class PlatformSpec(_Strict):
    """What the access checks assume about the platform: one definition of working hours for all of them,
    how far back they read, the networks that are never suspicious."""

    working_hours: tuple[int, int] = Field((7, 20), description="Local working hours [start, end): outside is off-hours.")
    utc_offset_hours: int = Field(1, ge=-12, le=14, description="Local time = UTC + this (Europe/Paris: 1, 2 in summer).")
    lookback_days: int = Field(
        183, ge=14, le=800,
        description="How far back the access checks read the log (six rolling months are kept): its oldest part is "
                    "the accounts' normal period when no change point says otherwise.")
    known_networks: list[str] = Field(
        default_factory=list,
        description="Hospital, VPN or gateway networks (CIDR): never reported by the network checks.")

    @field_validator("working_hours")
    @classmethod
    def _hours(cls, value: tuple[int, int]) -> tuple[int, int]:
        return working_hours(value)

    @field_validator("known_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for text in value:
            try:
                ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise ValueError(f"{text!r} is not a network (CIDR, e.g. 10.20.0.0/16)") from None
        return value


class HygienePlaybook(_Strict):
    hygiene: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$", description="Name of the hygiene playbook.")
    version: Literal[1] = 1
    title: str
    description: str = ""
    platform: PlatformSpec = Field(default_factory=PlatformSpec)
    checks: list[CheckSpec] = Field(min_length=1)
    respond: RespondPolicy | None = None
