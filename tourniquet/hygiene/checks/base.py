"""What every hygiene check is and gets: the run's context, the two kinds of check, their evidence.

Two kinds of check:

- **directory checks** see every account once, during one streaming paged sweep of the
  directory (:meth:`DirectoryCheck.inspect` per entry); they may prepare something first
  (the register's RPPS numbers, the set of accounts active in the access log);
- **access checks** read aggregates of the access log — a few ``GROUP BY`` queries shared by
  all of them (:mod:`tourniquet.hygiene.checks.activity`) — and turn the accounts that stand
  out into findings (:meth:`AccessCheck.run`).

A check class names itself (``name``) and its parameter model (``parameters``); the catalogue
(:mod:`tourniquet.hygiene.checks`) lists the classes. Each check writes
``evidence/<check id>.json`` in the run folder (parameters, window, queries, source files,
counts) and every finding points at it.

Imports the spec models, findings, the site and the access-log reader; imported by the check
modules, the catalogue and the runner — never by the spec.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from tourniquet.connectors.audit.aggregates import AuditDb
from tourniquet.errors import ConfigError
from tourniquet.hygiene.findings import Finding
from tourniquet.hygiene.spec import CheckSpec, PlatformSpec
from tourniquet.site import Site

#: Flagged accounts listed in a check's evidence file (all of them are in findings.jsonl).
FLAGGED_IN_EVIDENCE = 1000

__all__ = ["CheckDef", "Check", "DirectoryCheck", "AccessCheck", "HygieneContext", "Params", "FLAGGED_IN_EVIDENCE"]


class Params(BaseModel):
    """Base of every check's parameters: a misspelt parameter is an error, not a default."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class HygieneContext:
    """One hygiene run: the site, the reference day, the platform's assumptions, where evidence goes.

    ``shared`` holds what several access checks read (the per-account daily activity, the
    addresses): computed by the first check that needs it, reused by the others.
    """

    site: Site
    as_of: datetime
    run_dir: Path
    register: str | None = None
    platform: PlatformSpec = field(default_factory=PlatformSpec)
    shared: dict[Any, Any] = field(default_factory=dict)
    _audit: AuditDb | None = None

    @property
    def end_day(self) -> date:
        """Windows end at midnight UTC of the reference day (exclusive): whole days only."""
        return self.as_of.astimezone(timezone.utc).date()

    def day(self, days_before: int) -> str:
        return (self.end_day - timedelta(days=days_before)).isoformat()

    @property
    def audit(self) -> AuditDb:
        if self._audit is None:
            if self.site.config.audit is None:
                raise ConfigError(f"the site {self.site.name!r} has no audit section: access checks need the access log")
            self._audit = AuditDb(self.site.config.audit)
        return self._audit

    @property
    def has_audit(self) -> bool:
        return self.site.config.audit is not None

    def close(self) -> None:
        if self._audit is not None:
            self._audit.close()
            self._audit = None


class Check:
    """Base: the spec from the playbook, the validated parameters, evidence to write."""

    #: Name in the catalogue (``check:`` in the playbook).
    name: ClassVar[str]
    #: The parameter model (``with:`` in the playbook).
    parameters: ClassVar[type[BaseModel]]

    def __init__(self, spec: CheckSpec, params: Any, ctx: HygieneContext) -> None:
        self.spec = spec
        self.params = params
        self.ctx = ctx
        self.evidence: dict[str, Any] = {"check": spec.id, "kind": spec.check, "severity": spec.severity.value,
                                         "parameters": params.model_dump(mode="json"),
                                         "as_of": ctx.as_of.isoformat()}
        self.flagged: list[dict[str, Any]] = []
        self.flagged_count = 0

    @property
    def ref(self) -> str:
        return f"evidence/{self.spec.id}.json"

    def finding(self, account: str, summary: str, evidence: dict[str, Any], dn: str | None = None) -> Finding:
        self.flagged_count += 1
        if len(self.flagged) < FLAGGED_IN_EVIDENCE:
            self.flagged.append({"account": account, **evidence})
        # Built from typed values the check computed: no validation pass (a first run may make 1,000,000).
        return Finding.model_construct(account=account, dn=dn, check=self.spec.id, kind=self.spec.check,
                                       severity=self.spec.severity, summary=summary, evidence=evidence,
                                       evidence_ref=self.ref, suggested_playbook=self.spec.suggest)

    def write_evidence(self) -> Path:
        path = self.ctx.run_dir / self.ref
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**self.evidence, "flagged_count": self.flagged_count, "flagged": self.flagged,
                                    "flagged_note": "" if self.flagged_count <= len(self.flagged) else
                                    f"first {len(self.flagged)} listed; every finding is in findings.jsonl"},
                                   indent=2, default=str,
                                   ensure_ascii=False), encoding="utf-8")
        return path


class DirectoryCheck(Check):
    #: Directory attributes this check reads (besides uid and the RPPS attribute).
    attributes: tuple[str, ...] = ()

    def prepare(self) -> None:
        """Anything to load before the sweep (kept compact: the sweep sees 100,000 entries)."""

    def inspect(self, dn: str, account: str, attributes: dict[str, list[str]]) -> Iterable[Finding]:
        raise NotImplementedError

    def done(self, inspected: int) -> None:
        self.evidence["accounts_inspected"] = inspected


class AccessCheck(Check):
    def run(self) -> Iterable[Finding]:
        raise NotImplementedError

    def record_queries(self, since: int) -> None:
        self.evidence["queries"] = self.ctx.audit.queries[since:]


@dataclass(frozen=True)
class CheckDef:
    """A catalogue entry: what the loader validates and the runner instantiates."""

    name: str
    kind: Literal["directory", "access"]
    params: type[BaseModel]
    factory: type[Check]
    doc: str = ""

    @classmethod
    def of(cls, check: type[Check]) -> "CheckDef":
        kind: Literal["directory", "access"] = "directory" if issubclass(check, DirectoryCheck) else "access"
        return cls(check.name, kind, check.parameters, check, (check.__doc__ or "").strip().splitlines()[0])
