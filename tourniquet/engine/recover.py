"""Recover: give the accounts a real incident contained back to their owners.

Containment made the stolen password useless (scrambled, locked, reset demanded); after a real
incident nothing restores the old state — the owner gets a one-time password instead. This module
decides whether an account may be given back, then runs ``playbooks/recover.yaml`` for the same
incident (one journal, one evidence bundle), through the engine's guardrails like any playbook:

- refused, before anything changes, for an account the incident did not contain (no applied
  lock or scramble for it in the incident's journal);
- while the incident is under investigation (until :func:`conclude_investigation` records its
  conclusion), a person must approve: the approver is asked, and a refusal or no answer changes
  nothing;
- refused for an account this incident already gave back (a one-time password was handed over):
  its owner may have chosen their own password since, which a second recovery would replace —
  unless the caller says so explicitly (``replace_owner_password``, journaled);
- protected accounts are refused and more accounts than the playbook's limit need an approval,
  exactly as in every other run (:meth:`~tourniquet.engine.targets.TargetGuard.admit`).

The one-time password goes to the :mod:`tourniquet.handover` the caller opened for the incident;
this module never sees it. Nothing here imports Prefect (:mod:`tourniquet.flows.recover` does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import structlog

from tourniquet.engine.execute import find_playbook
from tourniquet.engine.expressions import parse_duration
from tourniquet.engine.loader import load_playbook
from tourniquet.engine.report import render_markdown
from tourniquet.engine.run import (
    ApprovalDecision,
    ApprovalRequest,
    Approver,
    Executor,
    PlaybookRun,
    RunSummary,
    ask_with_timeout,
    reject_all,
)
from tourniquet.errors import ApprovalRejected, GuardrailError, NotFound, TourniquetError
from tourniquet.handover import for_incident
from tourniquet.journal import Journal, read_journal
from tourniquet.site import Site

__all__ = [
    "RecoverRefused",
    "Recovery",
    "recover_accounts",
    "conclude_investigation",
    "investigation",
    "contained_accounts",
    "replaced_passwords",
    "given_back",
    "fixed_approver",
]

log = structlog.get_logger("tourniquet")
PLAYBOOK = "recover"
#: Operations by which an incident contained an account.
CONTAINING = ("lock", "scramble_password")


class RecoverRefused(GuardrailError):
    """The account may not be given back (not contained by this incident, or its investigation says no)."""


@dataclass
class Recovery:
    summary: RunSummary
    report: Path | None
    handed_to: str


def _records(site: Site, incident: str) -> list[dict[str, Any]]:
    path = site.incident_dir(incident) / "journal.jsonl"
    if not path.exists():
        raise TourniquetError(f"no journal for incident {incident!r} in {site.config.evidence_dir}")
    return list(read_journal(path))


def contained_accounts(records: list[dict[str, Any]]) -> set[str]:
    """Accounts (their labels) an incident contained: an applied lock or password scramble."""
    return {str(r.get("target")) for r in records
            if r.get("type") == "change" and r.get("outcome") == "applied" and r.get("system") == "directory"
            and r.get("operation") in CONTAINING and not str(r.get("step", "")).startswith("undo:")}


def replaced_passwords(site: Site, incident: str) -> list[str]:
    """Accounts whose password the incident replaced: no undo or reinstate brings the old one back."""
    return sorted({str(r.get("target")) for r in _records(site, incident)
                   if r.get("type") == "change" and r.get("outcome") == "applied"
                   and r.get("operation") == "scramble_password"})


def given_back(records: list[dict[str, Any]]) -> dict[str, str]:
    """Accounts (their labels) this incident already gave back, with when: an applied one-time password."""
    return {str(r.get("target")): str(r.get("time", "")) for r in records
            if r.get("type") == "change" and r.get("outcome") == "applied"
            and r.get("operation") == "set_one_time_password"}


def investigation(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The record that concluded the incident's investigation, or None while it is under investigation."""
    concluded = [r for r in records if r.get("type") == "investigation" and r.get("status") == "concluded"]
    return concluded[-1] if concluded else None


def conclude_investigation(site: Site, incident: str, *, by: str, finding: str) -> dict[str, Any]:
    """Record that the investigation is over (who, what was found): accounts can then be recovered."""
    if not by.strip() or not finding.strip():
        raise TourniquetError("concluding an investigation needs who concludes it and what was found")
    _records(site, incident)
    journal = Journal(site.incident_dir(incident) / "journal.jsonl", incident=incident, run="conclude")
    return journal.write("investigation", status="concluded", by=by.strip(), finding=finding.strip(),
                         at=datetime.now(timezone.utc).isoformat())


def fixed_approver(name: str, comment: str = "") -> Approver:
    """An approver that is a person named up front (``tourniquet recover --approved-by NAME``)."""
    def approve(request: ApprovalRequest) -> ApprovalDecision:
        return ApprovalDecision(True, name.strip(), comment or "approved on the command line")

    return approve


def _check(site: Site, incident: str, ids: list[str], records: list[dict[str, Any]]) -> list[str]:
    """The accounts' labels; refuses any id that names no account or one the incident did not contain."""
    contained = contained_accounts(records)
    labels: list[str] = []
    refused: list[str] = []
    for identifier in [i for i in ids if i.strip()]:
        try:
            account = site.directory.resolve(identifier)
        except NotFound as exc:
            refused.append(exc.detail)
            continue
        label = account.uid or account.dn
        if label not in contained:
            refused.append(f"{identifier!r} ({label}) was not contained by incident {incident}")
        labels.append(label)
    if not labels and not refused:
        raise RecoverRefused("no account given: name the account to give back (--account ID)")
    if refused:
        raise RecoverRefused("refusing to recover: " + "; ".join(refused) + " (nothing was changed)")
    return labels


def _ask_investigation(incident: str, labels: list[str], approver: Approver, journal: Journal,
                       timeout_seconds: float) -> ApprovalDecision:
    request = ApprovalRequest(
        incident=incident, playbook=PLAYBOOK, step="investigation",
        reason=f"incident {incident} is still under investigation: giving back {', '.join(labels)} "
               "needs a person's approval",
        accounts=labels, limit=0, timeout_seconds=timeout_seconds)
    journal.write("approval", step="investigation", status="requested", reason=request.reason, accounts=labels)
    decision = ask_with_timeout(approver, request)
    journal.write("approval", step="investigation", status="approved" if decision.approved else "rejected",
                  approver=decision.approver, comment=decision.comment, reason=request.reason)
    return decision


def recover_accounts(
    incident: str,
    ids: list[str],
    site: Site,
    *,
    operator: str = "",
    investigation_approver: Approver = reject_all,
    approver: Approver = reject_all,
    executor: Executor | None = None,
    run_id: str = "",
    dry_run: bool = False,
    on_started: Callable[[PlaybookRun], None] | None = None,
    replace_owner_password: bool = False,
) -> Recovery:
    """Give ``ids`` back to their owners after incident ``incident``; raises :class:`RecoverRefused` before any change.

    ``investigation_approver`` is asked while the investigation is open; ``approver`` answers the
    playbook's own guardrails (blast radius), as in any run.
    """
    records = _records(site, incident)
    labels = _check(site, incident, ids, records)
    earlier = {label: when for label, when in given_back(records).items() if label in labels}
    if earlier and not replace_owner_password:
        raise RecoverRefused(
            "refusing to recover: " + "; ".join(f"{label} was already given back by this incident ({when})"
                                                for label, when in sorted(earlier.items()))
            + ": its owner may have chosen their own password since, and a new one-time password would replace "
            "it. Nothing was changed. If the owner lost the one-time password (or it leaked), say so with "
            "--replace-owner-password")
    box = for_incident(incident)
    if box is None and not dry_run:
        raise RecoverRefused("nobody to hand the one-time password to: open a handover (tourniquet recover does, "
                             "the recover flow needs password_file)")
    journal = Journal(site.incident_dir(incident) / "journal.jsonl", incident=incident, run=run_id or "recover")
    if earlier and not dry_run:
        journal.write("replace_owner_password", accounts=sorted(earlier), operator=operator,
                      reason="asked explicitly (--replace-owner-password): the password the owner may have chosen "
                             "since the earlier recovery is replaced")
    concluded = investigation(records)
    loaded = load_playbook(find_playbook(PLAYBOOK))
    if concluded is None and not dry_run:
        timeout = min(parse_duration(loaded.playbook.limits.approval_timeout).total_seconds(),
                      parse_duration(site.config.limits.approval_timeout_ceiling).total_seconds())
        decision = _ask_investigation(incident, labels, investigation_approver, journal, timeout)
        if not decision.approved:
            why = decision.comment or "no approval"
            raise ApprovalRejected(f"incident {incident} is still under investigation and giving back "
                                   f"{', '.join(labels)} was not approved ({why}): nothing was changed. Conclude it "
                                   f"with `tourniquet conclude {incident} --by NAME --finding TEXT`, or have a "
                                   "person approve (--approved-by NAME, or the recover flow's approval form)")
    handed_to = box.where if box is not None else "not handed over (dry run)"
    inputs = {"accounts": labels, "operator": operator, "handed_to": handed_to}
    run = PlaybookRun(loaded, inputs, site, incident=incident, dry_run=dry_run, run_id=run_id,
                      executor=executor, approver=approver)
    if on_started is not None:
        on_started(run)
    summary = run.execute()
    if not dry_run:
        from tourniquet.notices.dispatch import after_recovery

        after_recovery(site, run.journal, run.run_id, evidence=str(site.incident_dir(incident)))
    if summary.refused and summary.status.startswith("completed"):
        summary.status = "refused"
        summary.error = "; ".join(f"{r['account']}: {r['reason']}" for r in summary.refused)
    report = None
    if not dry_run:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        report = site.incident_dir(incident) / "recover" / f"{stamp}-{'-'.join(labels)[:80]}.md"
        for again in range(2, 100):  # two recoveries in one second: a second report, never a sealed one rewritten
            if not report.exists():
                break
            report = report.with_name(f"{stamp}-{'-'.join(labels)[:80]}-{again}.md")
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(render_markdown(summary, inputs), encoding="utf-8")
        summary.report = report
        from tourniquet.engine.sealing import seal_incident

        seal_incident(site, incident, note=f"recover {', '.join(labels)}: {summary.status}")
    log.info("recover.finished", accounts=labels, status=summary.status)
    return Recovery(summary=summary, report=report, handed_to=handed_to)
