"""The check registry and what a check gets to work with.

Two kinds of check:

- **directory checks** see every account once, during one streaming paged sweep of the
  directory (:meth:`DirectoryCheck.inspect` per entry); they may prepare something first
  (the register's RPPS numbers, the set of accounts active in the access log);
- **access checks** send one or two GROUP BY queries to the access log and turn the rows
  that stand out into findings (:meth:`AccessCheck.run`).

Each check writes ``evidence/<check id>.json`` in the run folder (parameters, window,
queries, source files, counts) and every finding points at it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel

from tourniquet.connectors.audit.sql import AuditDb
from tourniquet.errors import ConfigError
from tourniquet.hygiene.findings import Finding
from tourniquet.hygiene.playbook import CheckSpec
from tourniquet.site import Site

#: Flagged accounts listed in a check's evidence file (all of them are in findings.jsonl).
FLAGGED_IN_EVIDENCE = 1000

__all__ = ["CHECKS", "CheckDef", "Check", "DirectoryCheck", "AccessCheck", "HygieneContext", "check"]


@dataclass
class HygieneContext:
    """One hygiene run: the site, the reference day, where evidence goes."""

    site: Site
    as_of: datetime
    run_dir: Path
    register: str | None = None
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


class Check:
    """Base: the spec from the playbook, the validated parameters, evidence to write."""

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
        return Finding(account=account, dn=dn, check=self.spec.id, kind=self.spec.check, severity=self.spec.severity,
                       summary=summary, evidence=evidence, evidence_ref=self.ref, suggested_playbook=self.spec.suggest)

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


@dataclass
class CheckDef:
    name: str
    kind: Literal["directory", "access"]
    params: type[BaseModel]
    factory: Callable[[CheckSpec, Any, HygieneContext], Check]
    doc: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


CHECKS: dict[str, CheckDef] = {}


def check(name: str, params: type[BaseModel]) -> Callable[[type[Check]], type[Check]]:
    """Register a check class under ``name`` with its parameter model."""

    def register(cls: type[Check]) -> type[Check]:
        kind: Literal["directory", "access"] = "directory" if issubclass(cls, DirectoryCheck) else "access"
        CHECKS[name] = CheckDef(name, kind, params, cls, (cls.__doc__ or "").strip().splitlines()[0])
        return cls

    return register


def _load_builtin() -> None:
    from tourniquet.hygiene import access_checks, directory_checks  # noqa: F401  (they register themselves)


_load_builtin()
