"""Audit connector: the platform's access log, read-only.

The access log is seen through one canonical event model, whatever the platform:

    timestamp   when the record was accessed (UTC)
    account     who accessed it (the practitioner's uid, or whatever the platform logs; see account_key)
    subject     the data subject (patient) id
    action      the platform's action code (view, search, export …), mapped by ``actions``
    fields      the data fields shown, mapped to categories by ``categories``
    source_ip   where the request came from

:class:`AuditConfig` says where the log lives and how its columns map onto that model.
Sources (SQLite, PostgreSQL, JSON lines / CSV exports, OpenSearch) and the scope
computation come with the data-scope issue.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tourniquet.secrets import SecretRef

__all__ = ["AuditConfig", "ColumnMapping"]


class ColumnMapping(BaseModel):
    """The platform's own column (or JSON field) name for each canonical field."""

    model_config = ConfigDict(extra="forbid")

    timestamp: str = "ts"
    account: str = "account"
    subject: str = "patient_id"
    action: str = "action"
    fields: str = Field("fields", description="Column listing the data fields shown (comma-separated or JSON list).")
    source_ip: str = "source_ip"


class AuditConfig(BaseModel):
    """Where the platform's access log lives, and how to read it."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["sqlite", "postgresql", "jsonl", "csv", "opensearch"] = Field(
        "sqlite", description="Where the access log lives."
    )
    path: str | None = Field(None, description="sqlite: database file; jsonl/csv: export file or folder.")
    dsn: str | None = Field(None, description="postgresql: connection string without the password.")
    password: SecretRef | None = Field(None, description="postgresql/opensearch: where the password lives.")
    url: str | None = Field(None, description="opensearch: base URL.")
    table: str = Field("access_log", description="sqlite/postgresql: table (or view); opensearch: index pattern.")
    columns: ColumnMapping = Field(default_factory=ColumnMapping)  # type: ignore[arg-type]
    account_key: Literal["uid", "rpps", "mail", "dn"] = Field(
        "uid", description="Which account attribute the log's account column holds."
    )
    categories: dict[str, str] = Field(
        default_factory=lambda: {
            "last_name": "identity", "first_name": "identity", "birth_date": "identity", "age": "identity",
            "phone": "contact", "email": "contact", "address": "contact",
            "nir": "social_security_number",
        },
        description="Data field → category (identity, contact, social_security_number, …).",
    )
    timeout: float = Field(30.0, gt=0, description="Seconds for each query.")
