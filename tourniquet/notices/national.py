"""One incident across regions: the SOC hears once, for the whole incident; each region's DPO hears its own.

Inside a region's part (:func:`tourniquet.regional.current_region` is set) a run sends its DPO and
practitioner messages as usual but not the SOC's outcome: the national run sends that once, from the
parts' journals (each account named ``region:account``), plus a "region down" message for each region
that could not be searched or whose part failed without a journal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog

from tourniquet.config import SiteConfig
from tourniquet.connectors.notify import Notifier
from tourniquet.journal import Journal, read_journal
from tourniquet.notices import compose
from tourniquet.notices.facts import AccountOutcome, RunFacts, run_facts
from tourniquet.site import Site

__all__ = ["notify_across", "last_run"]

log = structlog.get_logger("tourniquet")


def last_run(records: list[dict[str, Any]]) -> str:
    """The run id of the last run started in a journal ("" if none)."""
    started = [r for r in records if r.get("type") == "run" and r.get("status") == "started"]
    return str(started[-1].get("run", "")) if started else ""


def _merged(incident: str, playbook: str, dry_run: bool, status: str, error: str,
            parts: Sequence[Any], resolution: Any) -> RunFacts:
    accounts: list[AccountOutcome] = [AccountOutcome(i, "waiting", why) for i, why in resolution.waiting.items()]
    accounts += [AccountOutcome(i, "refused", why) for i, why in resolution.refused.items()]
    planned = 0
    for part in parts:
        if not part.journal or not Path(part.journal).is_file():
            continue
        records = list(read_journal(part.journal))
        facts = run_facts(records, last_run(records))
        planned += facts.planned_changes
        accounts += [replace(a, account=f"{part.region}:{a.account}") for a in facts.accounts]
    return RunFacts(incident=incident, run="", playbook=playbook, site="+".join(p.region for p in parts),
                    dry_run=dry_run, status=status, error=error, accounts=tuple(accounts), planned_changes=planned)


def notify_across(configs: Sequence[tuple[str, SiteConfig]], run: Any) -> str | None:
    """Send the SOC one message for the incident (and one per region down); never raises.

    Returns the region whose journal recorded the messages (its bundle is to be sealed again), if any.
    """
    try:
        chosen = next(((name, config) for name, config in configs if config.notify and config.notify.soc), None)
        if chosen is None:
            return None
        name, config = chosen
        site = Site(config)
        try:
            return _send(site, name, run)
        finally:
            site.close()
    except Exception as exc:  # a notification never fails a run
        log.error("notify.failed", error=str(exc))
        return None


def _send(site: Site, region: str, run: Any) -> str | None:
    notifier: Notifier = site.notify
    parts = list(run.parts.values())
    home = next((p for p in parts if p.region == region and p.journal), None) or \
        next((p for p in parts if p.journal), None)
    if home is None or home.journal is None:
        return None
    journal = Journal(home.journal, incident=run.incident, run="national")
    link = str(run.folder or Path(home.journal).parent)
    facts = _merged(run.incident, run.playbook, run.dry_run, run.status, run.error or "", parts, run.resolution)
    message = compose.plan_awaiting(facts, notifier.config, link) if run.dry_run else \
        compose.outcome(facts, notifier.config, link)
    notifier.send(message, journal)
    down = dict(run.resolution.unreachable)
    down.update({p.region: p.error or p.status for p in parts if p.status == "failed" and not p.journal})
    for name, why in sorted(down.items()):
        notifier.send(compose.region_down(run.incident, name, why, notifier.config, link), journal)
    return str(home.region)
