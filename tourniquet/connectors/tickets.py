"""Ticket connector: one incident ticket per incident key.

Placeholder configuration for the foundation; backends come with the tickets issue.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TicketsConfig"]


class TicketsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["file"] = Field("file", description="Which ticket system.")
    path: str = Field("var/tickets", description="file: folder holding one file per ticket.")
