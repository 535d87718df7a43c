"""Identity provider connector (httpx): end SSO sessions, revoke tokens.

Placeholder configuration for the foundation; the Keycloak, LemonLDAP::NG and OIDC
clients come with the identity issue.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["IdentityConfig"]


class IdentityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["keycloak", "lemonldap", "oidc"] = Field(description="Which identity provider.")
    url: str = Field(description="Base URL of the identity provider.")
