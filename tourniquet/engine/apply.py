"""Apply an approved plan: exactly its changes, each only if the directory is still as the plan saw it.

``tourniquet apply INCIDENT --approver NAME`` and the ``respond`` flow after its approval both come
here. The plan is read back and re-hashed; an expired plan applies nothing. The playbook is planned
again (nothing written) and compared with the approved plan account by account: an account whose
changes now start from another state (someone locked, unlocked or changed it since), or that would
get other changes, is *drifted* — nothing is applied to it, and the drift is listed. The others are
applied by a live run that checks every change against the plan again as it is sent
(:class:`~tourniquet.engine.plans.PlanCheck`). The journal records who approved which plan (its
SHA-256) first, then the drift, then the changes.

A plan's approval covers the approvals it listed (a blast radius over the limit, an approval step):
the person saw them in the plan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import structlog

from tourniquet.config import load_site
from tourniquet.engine.execute import RunObserver, execute_playbook
from tourniquet.engine.plans import Applying, Plan, PlanCheck, PlanExpired, decisions_journal, drift_between, load_plan
from tourniquet.engine.run import ApprovalDecision, ApprovalRequest, Approver, Executor, RunSummary, reject_all
from tourniquet.site import Site

__all__ = ["ApplyResult", "apply_plan", "decide", "replan", "open_plan"]

log = structlog.get_logger("tourniquet")


@dataclass
class ApplyResult:
    """What applying a plan did: the plan, who approved it, which accounts drifted, the live run's summary."""

    plan: Plan
    approver: str
    drift: dict[str, list[str]] = field(default_factory=dict)
    applied: list[str] = field(default_factory=list)
    summary: RunSummary | None = None

    @property
    def status(self) -> str:
        if self.summary is None:
            return "nothing applied: every account drifted" if self.drift else "nothing to apply"
        status = self.summary.status
        return f"{status}; {len(self.drift)} account(s) drifted, not applied" if self.drift else status


def open_plan(incident: str, site: str | None, sha256: str | None = None) -> Plan:
    """The incident's plan (newest, or the one with this hash) on this site."""
    runtime = Site(load_site(site))
    try:
        return load_plan(runtime, incident, sha256)
    finally:
        runtime.close()


def decide(plan: Plan, status: str, *, site: str | None, approver: str = "", comment: str = "",
           run_id: str = "", **extra: Any) -> None:
    """Record a decision about a plan (asked, approved, rejected, expired) next to it."""
    runtime = Site(load_site(site))
    try:
        journal = decisions_journal(runtime, plan.incident, run=run_id)
        journal.write("approval", step="plan", status=status, plan=plan.sha256, plan_file=str(plan.path),
                      approver=approver, comment=comment, expires=plan.data.get("expires"), **extra)
        journal.commit()
    finally:
        runtime.close()


def _covered(plan: Plan, approver: str, comment: str, fallback: Approver) -> Approver:
    """The approvals the plan listed are given by whoever approved the plan; anything else asks ``fallback``."""
    listed = {str(a.get("step")) for a in plan.data.get("approvals", [])}

    def ask(request: ApprovalRequest) -> ApprovalDecision:
        if request.step in listed:
            return ApprovalDecision(True, approver, f"in the approved plan {plan.sha256[:12]}: {comment}".rstrip(": "))
        return fallback(request)

    return ask


def _already_done(site: str | None, incident: str) -> set[tuple[str, str]]:
    """(target, operation) this incident already applied: re-applying after a crash is not drift."""
    runtime = Site(load_site(site))
    try:
        path = runtime.incident_dir(incident) / "journal.jsonl"
        if not path.exists():
            return set()
        from tourniquet.journal import read_journal

        return {(str(r.get("target")), str(r.get("operation"))) for r in read_journal(path)
                if r.get("type") == "change" and r.get("outcome") == "applied"}
    finally:
        runtime.close()


def replan(plan: Plan, *, site: str | None, executor: Executor | None = None, run_id: str = "",
           record: bool = True) -> RunSummary:
    """Plan the same playbook and inputs again, for the same incident (a new plan to approve when ``record``)."""
    return execute_playbook(plan.data["playbook_file"] or plan.data["playbook"], dict(plan.data["inputs"]),
                            dry_run=True, incident=plan.incident, site=site, executor=executor, run_id=run_id,
                            record_plan=record)


def apply_plan(plan: Plan, *, approver: str, comment: str = "", site: str | None = None,
               executor: Executor | None = None, observer: RunObserver | None = None, run_id: str = "",
               fallback: Approver = reject_all, now: datetime | None = None,
               links: Callable[[str], dict[str, str]] | None = None) -> ApplyResult:
    """Apply ``plan`` as approved by ``approver`` (see the module docstring); raises :class:`PlanExpired`."""
    if plan.expired(now):
        decide(plan, "expired", site=site, run_id=run_id, comment=f"not approved before {plan.expires:%Y-%m-%d %H:%M} UTC")
        raise PlanExpired(f"plan {plan.sha256[:12]} of incident {plan.incident} expired at "
                          f"{plan.expires:%Y-%m-%d %H:%M} UTC: nothing applied; make a new one with "
                          f"`tourniquet apply {plan.incident} --replan`")
    fresh = replan(plan, site=site, executor=executor, run_id=run_id, record=False)
    done = _already_done(site, plan.incident)
    drift = drift_between(plan, fresh.results.get("plan") or {}, done=done)
    result = ApplyResult(plan, approver, drift)
    keep = [a for a in plan.accounts() if not a.get("refused") and a.get("account") not in drift]
    decide(plan, "approved", site=site, approver=approver, comment=comment, run_id=run_id,
           applying=[a["account"] for a in keep], drifted=sorted(drift))
    records: list[tuple[str, dict[str, Any]]] = [("approval", {
        "step": "plan", "status": "approved", "approver": approver, "comment": comment, "plan": plan.sha256,
        "plan_file": str(plan.path), "accounts": [a["account"] for a in keep],
        "at": datetime.now(timezone.utc).isoformat()})]
    records += [("drift", {"step": "plan", "account": account, "plan": plan.sha256, "reason": "; ".join(lines),
                           "status": "not applied"}) for account, lines in sorted(drift.items())]
    for account, lines in drift.items():
        log.warning("plan.drift", account=account, drift="; ".join(lines))
    if not keep:
        _journal_only(plan, site, run_id, records)
        return result
    inputs = dict(plan.data["inputs"])
    inputs["accounts"] = [a["named_by"] for a in keep]
    result.applied = [a["account"] for a in keep]
    result.summary = execute_playbook(
        plan.data["playbook_file"] or plan.data["playbook"], inputs, dry_run=False, incident=plan.incident,
        site=site, executor=executor, observer=observer, run_id=run_id,
        approver=_covered(plan, approver, comment, fallback),
        applying=Applying(plan, PlanCheck(plan), records), pages=links)
    return result


def _journal_only(plan: Plan, site: str | None, run_id: str, records: list[tuple[str, dict[str, Any]]]) -> None:
    """Nothing to run: the approval and the drift still go to the incident's journal."""
    from tourniquet.journal import Journal

    runtime = Site(load_site(site))
    try:
        folder = runtime.incident_dir(plan.incident)
        folder.mkdir(parents=True, exist_ok=True)
        journal = Journal(folder / "journal.jsonl", incident=plan.incident, run=run_id or "apply")
        for record_type, fields in records:
            journal.write(record_type, **fields)
        journal.commit()
    finally:
        runtime.close()
