"""Audit connector: the platform's access log, read-only.

Placeholder configuration for the foundation; sources come with the data-scope issue.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AuditConfig"]


class AuditConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["sqlite"] = Field("sqlite", description="Where the access log lives.")
    path: str = Field(description="sqlite: the database file.")
