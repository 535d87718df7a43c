"""The site's ``audit:`` section: where the access log lives, and the platform's own vocabulary.

A platform's log rarely has a column listing the fields each screen shows. It has an action code per
access, and a patient table where many people have no phone, e-mail or NIR. The vocabulary says both:

    audit:
      table: journal_acces
      columns: {timestamp: horodatage, account: utilisateur, subject: id_patient, action: code_action,
                source_ip: ip_source}
      action_fields: {CONSULT_FICHE: [nom, prenom, age, telephone, email]}
      subjects: {table: patient, key: id_patient,
                 fields: {nom: nom, prenom: prenom, age: date_naissance, telephone: telephone, nir: nir}}
      categories: {nom: identity, prenom: identity, age: identity, telephone: contact, nir: social_security_number}

A field counts for a person only when their row in the subject table holds a value for it; a field with
no subject column counts whenever the action shows it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tourniquet.attribution import AttributionSettings
from tourniquet.connectors._http import HttpSettings, plaintext_problem
from tourniquet.scope import CONTACT, IDENTITY, SSN
from tourniquet.secrets import SecretRef

__all__ = ["AuditConfig", "ColumnMapping", "SubjectTable", "SQL_KINDS", "DEFAULT_CATEGORIES", "IDENTITY",
           "CONTACT", "SSN"]

SQL_KINDS = ("sqlite", "postgresql")
DEFAULT_CATEGORIES = {
    "last_name": IDENTITY, "first_name": IDENTITY, "birth_date": IDENTITY, "age": IDENTITY,
    "phone": CONTACT, "email": CONTACT, "address": CONTACT, "nir": SSN,
}


class ColumnMapping(BaseModel):
    """The platform's own column (or JSON field) name for each canonical field."""

    model_config = ConfigDict(extra="forbid")

    timestamp: str = Field("ts", description="When the access happened (UTC; see time_format).")
    account: str = Field("account", description="Who accessed: the account as account_key says.")
    subject: str = Field("patient_id", description="Whom the access was about: the patient's id.")
    action: str = Field("action", description="The platform's action code (see action_fields).")
    fields: str | None = Field("fields", description="Column listing the data fields shown (comma-separated or "
                                                     "JSON list); not read when action_fields is given.")
    source_ip: str = Field("source_ip", description="The address the access came from.")
    may_hold_nir: list[str] = Field(
        default_factory=list,
        description="Columns whose value may be a social security number (a search query, an identifier "
                    "field): an event where one holds a valid NIR counts as showing social_security_number.",
    )


class SubjectTable(BaseModel):
    """The people the log is about: the platform's patient table, joined in SQL."""

    model_config = ConfigDict(extra="forbid")

    table: str = Field(description="Table (or view) of the people, in the same database as the log.")
    key: str = Field(description="Its column matching the log's subject column.")
    fields: dict[str, str] = Field(default_factory=dict,
                                   description="Data field (as action_fields and categories name it) → column.")
    national_id: str | None = Field(
        None, description="Field holding a national identifier (INS, NIR): each person's record carries its "
                          "keyed hash (national_id_key), never the value, to count people once across sites.")


class AuditConfig(BaseModel):
    """Where the platform's access log lives, and how to read it."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["sqlite", "postgresql", "jsonl", "csv", "opensearch"] = Field(
        "sqlite", description="Where the access log lives."
    )
    path: str | None = Field(None, description="sqlite: database file; jsonl/csv: export file or folder.")
    dsn: str | None = Field(None, description="postgresql: connection string without the password.")
    password: SecretRef | None = Field(None, description="postgresql/opensearch: where the password lives.")
    username: str | None = Field(None, description="opensearch: user for basic authentication.")
    url: str | None = Field(None, description="opensearch: base URL.")
    engine: Literal["opensearch", "elasticsearch"] = Field(
        "opensearch", description="opensearch: which point-in-time API the cluster speaks."
    )
    page_size: int = Field(5000, ge=1, le=10000, description="opensearch: hits per page; SQL: rows per fetch.")
    ca_file: str | None = Field(None, description="opensearch: CA bundle for https.")
    verify_certificates: bool = Field(True, description="opensearch: check the cluster's TLS certificate (keep it on).")
    allow_plaintext: bool = Field(
        False, description="opensearch: allow http:// to a host that is not loopback (the password travels in "
        "clear). Test clusters only.")
    connect_timeout: float = Field(5.0, gt=0, description="opensearch: seconds to connect.")
    table: str = Field("access_log", description="sqlite/postgresql: table (or view); opensearch: index pattern.")
    columns: ColumnMapping = Field(default_factory=ColumnMapping)  # type: ignore[arg-type]
    account_key: Literal["uid", "rpps", "mail", "dn"] = Field(
        "uid", description="Which account attribute the log's account column holds."
    )
    actions: dict[str, str] = Field(
        default_factory=dict, description="Platform action code → canonical action (view, search, export …)."
    )
    action_fields: dict[str, list[str]] | None = Field(
        None, description="Action code → the data fields its screen shows; replaces the fields column. "
                          "A code not listed shows nothing (the scope lists such codes).")
    subjects: SubjectTable | None = Field(None, description="sqlite/postgresql: the people, joined in SQL.")
    categories: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_CATEGORIES),
        description="Data field → category (identity, contact, social_security_number, …); others → 'other'.",
    )
    field_labels: dict[str, str] = Field(
        default_factory=dict, description="Data field → the words a patient's letter uses for it (French).")
    national_id_key: SecretRef | None = Field(None, description="Key of the national identifier's keyed hash.")
    attribution: AttributionSettings = Field(default_factory=AttributionSettings)  # type: ignore[arg-type]
    time_format: str = Field(
        "%Y-%m-%d %H:%M:%S",
        description="sqlite: how the timestamp column is written (strftime, UTC), or 'epoch' for seconds.",
    )
    timezone: str = Field("Europe/Paris", description="Time zone the drafts give times in.")
    timeout: float = Field(30.0, gt=0, description="Seconds for each query.")

    @model_validator(mode="after")
    def _consistent(self) -> "AuditConfig":
        if self.subjects is not None:
            if self.kind not in SQL_KINDS:
                raise ValueError(f"subjects: joining a subject table needs an SQL log (sqlite, postgresql), "
                                 f"not {self.kind}")
            if self.subjects.national_id is not None:
                if self.subjects.national_id not in self.subjects.fields:
                    raise ValueError(f"subjects.national_id: {self.subjects.national_id!r} is not one of "
                                     f"subjects.fields ({', '.join(self.subjects.fields) or 'none'})")
                if self.national_id_key is None:
                    raise ValueError("subjects.national_id needs national_id_key (a secret reference): the "
                                     "identifier is only ever kept as a keyed hash")
        if self.action_fields is None and not self.columns.fields:
            raise ValueError("say what each access shows: columns.fields (a column) or action_fields (per code)")
        problem = self.kind == "opensearch" and self.url and plaintext_problem(
            self.url, allow_plaintext=self.allow_plaintext, section="audit")
        if problem:
            raise ValueError(problem)
        return self

    def http_settings(self) -> HttpSettings:
        return HttpSettings("audit", timeout=self.timeout, connect_timeout=self.connect_timeout,
                            verify_certificates=self.verify_certificates, ca_file=self.ca_file,
                            allow_plaintext=self.allow_plaintext)

    @property
    def reads_fields_column(self) -> bool:
        return self.action_fields is None and bool(self.columns.fields)

    def subject_column(self, field: str) -> str | None:
        """The subject-table column holding ``field``, or None when the field has none."""
        return self.subjects.fields.get(field) if self.subjects is not None else None
