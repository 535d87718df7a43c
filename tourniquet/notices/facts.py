"""What a message may say about a run, folded from the journal's records (never from counters kept aside).

Each account gets one outcome — ``contained`` (a change applied), ``already so`` (every change was
already in place), ``planned`` (a dry run), ``refused`` (a guardrail), ``failed``, ``waiting`` (its region was down) — the worst one
winning, so that a message can never call an account contained when one of its steps failed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AccountOutcome", "RunFacts", "run_facts", "CONTAINED", "NOT_CONTAINED"]

#: Outcomes, worst first.
_RANK = {"refused": 0, "failed": 1, "waiting": 2, "planned": 3, "contained": 4, "already so": 5}
CONTAINED = frozenset({"contained", "already so"})
#: ``waiting``: an id no site could be searched for (a region down): not contained yet.
NOT_CONTAINED = frozenset({"refused", "failed", "waiting"})


@dataclass(frozen=True)
class AccountOutcome:
    account: str
    outcome: str
    why: str = ""
    dn: str = ""


@dataclass(frozen=True)
class RunFacts:
    incident: str
    run: str
    playbook: str
    site: str
    dry_run: bool
    status: str
    error: str
    accounts: tuple[AccountOutcome, ...]
    scope: dict[str, Any] | None = None
    planned_changes: int = 0
    resolved: dict[str, str] = field(default_factory=dict)

    def with_outcome(self, *outcomes: str) -> list[AccountOutcome]:
        return [a for a in self.accounts if a.outcome in outcomes]

    @property
    def verdict(self) -> str:
        """``planned``, ``contained``, ``partially contained`` or ``failed``, from the accounts and the run."""
        if self.dry_run:
            return "planned"
        done = self.with_outcome(*CONTAINED)
        missing = self.with_outcome(*NOT_CONTAINED)
        if done and missing:
            return "partially contained"
        if done and not self.status.startswith(("failed", "rolled back")):
            return "contained" if not missing else "partially contained"
        if done:
            return "partially contained"
        return "failed"


def _is_account_change(record: dict[str, Any]) -> bool:
    return bool(record.get("account")) and not str(record.get("system", "")).startswith(("tickets", "notify"))


def run_facts(records: Iterable[dict[str, Any]], run: str) -> RunFacts:
    """The facts of run ``run`` (its records only) in one pass."""
    best: dict[str, AccountOutcome] = {}
    start: dict[str, Any] = {}
    end: dict[str, Any] = {}
    scope: dict[str, Any] | None = None
    planned = 0
    incident = ""

    def note(account: str, outcome: str, why: str = "") -> None:
        known = best.get(account)
        if known is None or _RANK[outcome] < _RANK[known.outcome]:
            best[account] = AccountOutcome(account, outcome, why)

    for record in records:
        if record.get("run") != run:
            continue
        incident = incident or str(record.get("incident", ""))
        kind = record.get("type")
        if kind == "run":
            (start if record.get("status") == "started" else end).update(record)
        elif kind == "change" and _is_account_change(record):
            outcome = {"applied": "contained", "noop": "already so", "planned": "planned"}.get(
                str(record.get("outcome")), "failed")
            planned += outcome == "planned"
            note(str(record["account"]), outcome, str(record.get("error", "")) if outcome == "failed" else "")
        elif kind == "failure" and record.get("account"):
            note(str(record["account"]), "failed", f"{record.get('step')}: {record.get('error')}")
        elif kind == "refused" and record.get("account"):
            note(str(record["account"]), "refused", str(record.get("reason", "")))
        elif kind == "scope":
            scope = record
    return RunFacts(incident=incident, run=run, playbook=str(start.get("playbook", "")), site=str(start.get("site", "")),
                    dry_run=bool(start.get("dry_run")), status=str(end.get("status", "running")),
                    error=str(end.get("error") or ""), accounts=tuple(sorted(best.values(), key=lambda a: a.account)),
                    scope=scope, planned_changes=planned)
