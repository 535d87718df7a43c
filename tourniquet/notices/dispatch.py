"""When each message goes out: after a run, from a playbook step, and from the deadlines check.

All of it runs after the changes it reports, never raises (a channel that fails leaves the message in
the outbox), and journals what it did. Dry runs send one thing: the SOC's plan-awaiting-approval.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import structlog

from tourniquet.clock import Clock, clock_of
from tourniquet.connectors.notify import ChannelRef, Message, Notifier, SendReport, Target
from tourniquet.journal import Journal, read_journal
from tourniquet.notices import compose
from tourniquet.notices.facts import CONTAINED, run_facts
from tourniquet.regional import current_region
from tourniquet.site import Site

__all__ = ["after_run", "after_recovery", "approval_awaited", "scope_message", "practitioner_messages", "incident_records", "incident_clock",
           "check_deadlines", "deliver_outbox", "report_lines", "journal_of"]

log = structlog.get_logger("tourniquet")


def journal_of(site: Site, incident: str, run: str = "notify") -> Journal:
    return Journal(site.incident_dir(incident) / "journal.jsonl", incident=incident, run=run)


def incident_records(site: Site, incident: str) -> Iterator[dict[str, Any]]:
    """The incident's journal and its plans' records (the clock starts at the first plan)."""
    plans = site.plan_dir(incident)
    if plans.is_dir():
        for path in sorted(plans.glob("plan-*.jsonl")):
            yield from read_journal(path)
    yield from read_journal(site.incident_dir(incident) / "journal.jsonl")


def incident_clock(site: Site, incident: str) -> Clock:
    return clock_of(incident, incident_records(site, incident))


def deliver_outbox(site: Site) -> dict[str, Any]:
    """Deliver the messages that waited (each journaled in its incident's journal when it goes out).

    ``incidents``: whose journals got records (the caller seals them: :mod:`tourniquet.engine.notices`).
    """
    notifier: Notifier = site.notify
    journals: dict[str, Journal] = {}

    def journal_for(incident: str) -> Journal:
        if incident not in journals:
            journals[incident] = journal_of(site, incident, "outbox")
        return journals[incident]

    report: dict[str, Any] = dict(notifier.deliver_pending(journal_for))
    report["incidents"] = sorted(i for i, j in journals.items() if j.kept("notification", run="outbox"))
    return report


def after_run(site: Site, journal: Journal, run: str, *, evidence: str) -> list[SendReport]:
    """The SOC's message about the run that just ended (a plan awaiting approval, or its outcome)."""
    notifier: Notifier = site.notify
    if not notifier.config.soc or current_region():
        return []  # a region's part: the national run tells the SOC once for the whole incident
    reports = []
    try:
        facts = run_facts(journal.records(), run)
        link = compose.run_link(notifier.config, run, evidence)
        message = compose.plan_awaiting(facts, notifier.config, link) if facts.dry_run else \
            compose.outcome(facts, notifier.config, link)
        # A dry run's plan message is the one thing a dry run sends: it asks for the approval.
        reports.append(notifier.send(message, journal))
    except Exception as exc:  # a notification never fails a run
        log.error("notify.failed", error=str(exc))
    return reports


def approval_awaited(site: Site, journal: Journal, *, playbook: str, reason: str, timeout_seconds: float) -> None:
    """The SOC hears that a live run waits for an approval, with the link to answer it; never raises."""
    notifier: Notifier = site.notify
    if not notifier.config.soc:
        return
    try:
        until = datetime.now(timezone.utc) + timedelta(seconds=timeout_seconds)
        link = compose.run_link(notifier.config, journal.run, str(journal.path.parent))
        notifier.send(compose.approval_needed(journal.incident, playbook, journal.run, reason, until,
                                              notifier.config, link), journal)
    except Exception as exc:  # a notification never fails a run
        log.error("notify.failed", error=str(exc))


def after_recovery(site: Site, journal: Journal, run: str, *, evidence: str) -> None:
    """The SOC hears which accounts were given back (and which could not be); never raises."""
    notifier: Notifier = site.notify
    if not notifier.config.soc:
        return
    try:
        facts = run_facts(journal.records(), run)
        done = [a.account for a in facts.with_outcome(*CONTAINED)]
        failed = [a.account for a in facts.with_outcome("failed", "refused")]
        notifier.send(compose.recovered(journal.incident, done, failed, notifier.config,
                                        compose.run_link(notifier.config, run, evidence)), journal)
    except Exception as exc:  # a notification never fails a run
        log.error("notify.failed", error=str(exc))


def scope_message(site: Site, journal: Journal, *, link: str) -> Message | None:
    """The DPO's message for the scope this run froze (None when it froze none)."""
    notifier: Notifier = site.notify
    frozen = journal.kept("scope", run=journal.run)
    if not frozen:
        return None
    scope = frozen[-1]
    folder = Path(str(scope.get("folder", "")))
    drafts = [str(folder / name) for name in ("notification.md", "declaration-cert-sante.md")
              if (folder / name).is_file()]
    clock = incident_clock(site, journal.incident)
    return compose.scope_frozen(journal.incident, scope, clock, notifier.config, site=site.name, link=link,
                                attachments=drafts)


def practitioner_messages(site: Site, journal: Journal, accounts: Iterable[dict[str, Any]]) -> list[Message]:
    """One message per account this run contained, to its establishment's referent (or the site's contact)."""
    notifier: Notifier = site.notify
    route = notifier.config.practitioner
    if route is None:
        return []
    facts = run_facts(journal.records(), journal.run)
    outcomes = {a.account: a.outcome for a in facts.accounts}
    establishment = notifier.config.establishment or site.name
    messages = []
    for account in accounts:
        label = str(account.get("uid") or account.get("dn") or "")
        if outcomes.get(label) not in CONTAINED and not (journal_is_plan(journal) and outcomes.get(label) == "planned"):
            continue
        targets = _practitioner_targets(notifier, str(account.get("dn") or ""), list(account.get("groups") or []))
        own = str(account.get("mail") or "").casefold()
        # Never the account's own mailbox, even when a referent's row names it: the attacker may read it.
        kept = [t for t in targets if not own or (own not in t.to.casefold()
                                                  and own not in (t.channel.url or "").casefold())]
        if len(kept) < len(targets):
            log.warning("notify.own_mailbox_refused", account=label)
        targets = kept
        for target in targets:
            messages.append(compose.practitioner(journal.incident, label, name=str(account.get("name") or ""),
                                                 call=route.call, target=target, recipient=target.label,
                                                 establishment=establishment))
    return messages


def journal_is_plan(journal: Journal) -> bool:
    return journal.path.name.startswith("plan-")


def _practitioner_targets(notifier: Notifier, dn: str, groups: list[str]) -> list[Target]:
    route = notifier.config.practitioner
    assert route is not None
    if route.via == "referent" and notifier.referents is not None:
        referent = notifier.referents.for_account(dn, groups)
        if referent is not None:
            label = f"referent {referent.name}"
            if referent.url:
                return [Target(ChannelRef(url=referent.url), label=label)]
            if route.mail is not None and referent.email:
                return [Target(route.mail, to=referent.email, label=label)]
    return [Target(channel, label=f"contact {channel.describe()}") for channel in route.to]


def check_deadlines(site: Site, now: datetime | None = None) -> list[dict[str, Any]]:
    """Remind the DPO and the SOC of each incident whose CNIL filing is due (48 h, 70 h) or late, once each."""
    now = now or datetime.now(timezone.utc)
    notifier: Notifier = site.notify
    folder = site.config.evidence_dir
    done: list[dict[str, Any]] = []
    if not folder.is_dir():
        return done
    for journal_path in sorted(folder.glob("*/journal.jsonl")):
        incident = journal_path.parent.name
        clock = incident_clock(site, incident)
        for key in clock.due(now):
            journal = journal_of(site, incident, "deadlines")
            link = str(journal_path.parent)
            for role in ("dpo", "soc"):
                report = notifier.send(compose.reminder(clock, key, role, notifier.config, now, link), journal)
                done.append({"incident": incident, "reminder": key, "role": role, "status": report.status})
    return done


def report_lines(journal: Journal) -> list[str]:
    """What this run sent, queued or would send, for its report (the run says so)."""
    lines = []
    for record in journal.kept("notification", run=journal.run):
        what = f"{record.get('role')} {record.get('kind')}" + (f" ({record['recipient']})" if record.get("recipient") else "")
        error = f" — {record['error']}" if record.get("error") else ""
        status = {"planned": "would be sent", "queued": "NOT delivered, waits in the outbox"}.get(
            str(record.get("status")), str(record.get("status")))
        lines.append(f"{what} via {record.get('channel') or 'no channel'}: {status}{error}")
    return lines
