"""What a message may say about a run: :func:`tourniquet.outcomes.fold` of its journal records, in the messages' words.

Each account gets one outcome — ``contained`` (a change applied), ``already so`` (every change was
already in place), ``planned`` (a dry run), ``refused`` (a guardrail), ``failed``, ``waiting`` (its
region was down) — from the fold's own judgement (:meth:`~tourniquet.outcomes.AccountOutcome.reached`),
so that a message can never call an account contained when one of its steps failed or was skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tourniquet.outcomes import Kind, fold

__all__ = ["AccountOutcome", "RunFacts", "run_facts", "CONTAINED", "NOT_CONTAINED"]

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


def _is_account(outcome: Any) -> bool:
    """An account, not the ticket or a notification (their changes name their target as the account)."""
    return not any(e.system.startswith(("tickets", "notify")) for e in outcome.entries.values())


def _word(outcome: Any, dry_run: bool) -> AccountOutcome:
    """One account's outcome in the messages' words, from the fold's."""
    if outcome.reached(dry_run):
        kinds = outcome.kinds()
        word = "planned" if dry_run else ("contained" if Kind.APPLIED in kinds else "already so")
        return AccountOutcome(outcome.account, word)
    kind, phrase = outcome.why_not()
    word = "refused" if kind is Kind.REFUSED else "failed"
    return AccountOutcome(outcome.account, word, phrase.removeprefix(outcome.account).strip(" ()") or kind.value)


def run_facts(records: Iterable[dict[str, Any]], run: str) -> RunFacts:
    """The facts of run ``run``: its accounts as :func:`tourniquet.outcomes.fold` sees them, its scope, its status."""
    mine = [r for r in records if r.get("run") == run]
    start = next((r for r in mine if r.get("type") == "run" and r.get("status") == "started"), {})
    dry_run = bool(start.get("dry_run"))
    folded = fold(mine, dry_run=dry_run)
    accounts = [_word(o, dry_run) for o in folded.accounts.values() if _is_account(o)]
    scope = next((r for r in reversed(mine) if r.get("type") == "scope"), None)
    planned = sum(1 for r in mine if r.get("type") == "change" and r.get("outcome") == "planned"
                  and not str(r.get("system", "")).startswith(("tickets", "notify")))
    return RunFacts(incident=str(start.get("incident", mine[0].get("incident", "") if mine else "")), run=run,
                    playbook=str(start.get("playbook", "")), site=str(start.get("site", "")), dry_run=dry_run,
                    status=folded.status or "running", error=folded.error,
                    accounts=tuple(sorted(accounts, key=lambda a: a.account)), scope=scope, planned_changes=planned)
