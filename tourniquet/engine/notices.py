"""Notifications written outside a run (reminders, filings, outbox deliveries) sealed like any other record.

A record appended after an incident's last seal leaves its bundle "not sealed" (``evidence verify``
exit 3): whatever writes one outside a run seals the incident afterwards, here, once per incident.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import structlog

from tourniquet.errors import TourniquetError
from tourniquet.evidence import SealFailed
from tourniquet.notices.dispatch import check_deadlines, deliver_outbox
from tourniquet.notices.filings import record_filings
from tourniquet.site import Site

__all__ = ["seal_after", "remind_deadlines", "deliver_notifications", "record_and_seal_filings"]

log = structlog.get_logger("tourniquet")


def seal_after(site: Site, incidents: Iterable[str], *, note: str) -> None:
    """Seal each incident whose journal got records (a failure is logged: the records are there, unsealed)."""
    from tourniquet.engine.sealing import seal_incident

    for incident in sorted(set(incidents)):
        if not (site.incident_dir(incident) / "journal.jsonl").is_file():
            continue
        try:
            seal_incident(site, incident, note=note)
        except (SealFailed, TourniquetError, OSError) as exc:
            log.error("notify.not_sealed", incident=incident, error=str(exc))


def remind_deadlines(site: Site, now: datetime | None = None) -> list[dict[str, Any]]:
    """The deadlines check, then a seal of each incident it reminded about."""
    sent = check_deadlines(site, now)
    seal_after(site, (s["incident"] for s in sent), note="Art. 33 reminders")
    return sent


def deliver_notifications(site: Site, *, skip_seal: str = "") -> dict[str, Any]:
    """Deliver the notify outbox, then seal the incidents whose messages went out (but ``skip_seal``)."""
    report = deliver_outbox(site)
    seal_after(site, (i for i in report["incidents"] if i != skip_seal), note="notifications delivered")
    return report


def record_and_seal_filings(site: Site, incident: str, *, cnil: str | None, cert_sante: str | None,
                            by: str) -> list[dict[str, Any]]:
    records = record_filings(site, incident, cnil=cnil, cert_sante=cert_sante, by=by)
    seal_after(site, [incident], note="filings recorded")
    return records
