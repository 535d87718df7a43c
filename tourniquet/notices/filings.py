"""Record what the DPO filed (CNIL Art. 33, CERT Santé) in the incident's journal: it stops the reminders."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from tourniquet.errors import ConfigError
from tourniquet.notices.dispatch import journal_of
from tourniquet.site import Site
from tourniquet.untrusted import text_problem

__all__ = ["record_filings"]

MAX_REFERENCE = 200


def _checked(what: str, value: str) -> str:
    value = value.strip()
    problem = text_problem(value) if value else "empty"
    if problem or len(value) > MAX_REFERENCE:
        raise ConfigError(f"{what} {ascii(value[:60])}: not a usable value ({problem or f'over {MAX_REFERENCE} characters'})")
    return value


def record_filings(site: Site, incident: str, *, cnil: str | None, cert_sante: str | None, by: str,
                   at: datetime | None = None) -> list[dict[str, Any]]:
    """One ``filing`` record per authority; the incident must exist here (its journal)."""
    if not (site.incident_dir(incident) / "journal.jsonl").is_file():
        raise ConfigError(f"incident {incident}: no journal at {site.incident_dir(incident)} (nothing to record)")
    by = _checked("--by", by)
    when = (at or datetime.now(timezone.utc)).isoformat()
    journal = journal_of(site, incident, "filings")
    records = []
    for authority, reference in (("cnil", cnil), ("cert-sante", cert_sante)):
        if reference is not None:
            records.append(journal.write("filing", authority=authority, reference=_checked(f"--{authority}", reference),
                                         by=by, at=when))
    if not records:
        raise ConfigError("nothing to record: give --cnil REF and/or --cert-sante REF")
    return records
