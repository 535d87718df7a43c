"""Findings: what a hygiene check raised about one account, and the evidence that raised it.

A finding names the account (as the directory or the access log knows it), the check, a
severity, one line a responder reads, the numbers behind it, and ``evidence_ref``: the file
(relative to the run folder) holding the query, its window and parameters, or the register
file and its date. ``suggested_playbook`` is what a responder would run next.

Imports nothing of Tourniquet; everything in the hygiene package may import it.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Severity", "Finding", "SEVERITIES"]


class Severity(str, Enum):
    """Ordered: info < low < medium < high < critical."""

    info = "info"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"

    @property
    def rank(self) -> int:
        return SEVERITIES.index(self.value)

    def at_least(self, other: "Severity | str") -> bool:
        return self.rank >= Severity(other).rank


SEVERITIES: tuple[str, ...] = ("info", "low", "medium", "high", "critical")


class Finding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account: str = Field(description="uid (or the access log's account id) of the account.")
    dn: str | None = Field(None, description="Directory entry, when the check read it.")
    check: str = Field(description="Id of the check in the hygiene playbook.")
    kind: str = Field(description="Which check ran (not_in_register, dormant, …).")
    severity: Severity
    summary: str = Field(description="One line, in the responder's words.")
    evidence: dict[str, Any] = Field(default_factory=dict, description="The numbers that raised the finding.")
    evidence_ref: str = Field("", description="Evidence file (relative to the run folder) with query, window, source.")
    suggested_playbook: str | None = Field(None, description="Playbook a responder would run next.")

    def row(self) -> dict[str, str]:
        """One row of the table artifact."""
        return {
            "account": self.account, "check": self.check, "severity": self.severity.value,
            "summary": self.summary, "suggested playbook": self.suggested_playbook or "",
            "evidence": self.evidence_ref,
        }
