"""After containment, across sites: undo, conclude, recover and verify in every region holding a part.

Each is the single-site operation, run region by region; one region failing does not stop the
others (its error is its result). Recovery places every id first — one the incident contained in no
region, or in two unless qualified (``nor:jdupont``), refuses the whole recovery before anything
changes. Verification checks each regional bundle, then the national summary's folder against them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from tourniquet import national
from tourniquet.engine.inputs import check_incident_id
from tourniquet.engine.regions import holding, load_regions, national_folder, resolve_across
from tourniquet.engine.run import Approver, reject_all
from tourniquet.errors import TourniquetError
from tourniquet.regional import working_for
from tourniquet.secrets import mask
from tourniquet.site import Site

__all__ = ["RegionalResult", "undo_across", "conclude_across", "recover_across", "verify_across",
           "anchor_national_everywhere"]

log = structlog.get_logger("tourniquet")


@dataclass
class RegionalResult:
    """What an undo, a recovery or a verification did in one region (or why it could not)."""

    region: str
    result: Any = None
    error: str | None = None


def _in_each(regions: Sequence[Any], incident: str, work: Callable[[Any, Site], Any], *,
             absent: Callable[[Any], str] = lambda region: "no part of this incident here",
             held: Sequence[Any] | None = None) -> list[RegionalResult]:
    """``work(region, site)`` in every region holding a part of the incident (``held``: those with a journal
    unless given), one after the other; a region that fails (or holds nothing: ``absent(region)`` says so) is
    named in its result and the others go on."""
    held = holding(regions, incident) if held is None else held
    results = []
    for region in regions:
        if region not in held:
            results.append(RegionalResult(region.name, error=absent(region)))
            continue
        site = Site(region.config)
        try:
            with working_for(region.name):
                results.append(RegionalResult(region.name, work(region, site)))
        except TourniquetError as exc:
            results.append(RegionalResult(region.name, error=mask(str(exc))))
        finally:
            site.close()
    return results


def undo_across(incident: str, sites: Sequence[str], *, national_dir: str | None = None,
                false_alarm_by: str = "") -> list[RegionalResult]:
    """``undo`` in every region that holds a part of the incident; one region failing does not stop the others."""
    from tourniquet.engine.recover import replaced_passwords
    from tourniquet.engine.undo import undo_incident

    check_incident_id(incident)
    regions = load_regions(sites)

    def undo(region: Any, site: Site) -> dict[str, Any]:
        return {"entries": undo_incident(incident, site, false_alarm_by=false_alarm_by), "replaced": replaced_passwords(site, incident)}

    results = _in_each(regions, incident, undo,
                       absent=lambda region: f"no part of incident {incident} in {region.config.evidence_dir}")
    outcome = {}
    for entry in results:
        if entry.result is not None:
            failed = [e for e in entry.result["entries"] if e["status"] in ("failed", "deferred")]
            outcome[entry.region] = f"{len(failed)} failed or deferred" if failed else "undone"
    folder = national_folder(regions, incident, national_dir)
    if national.record_undo(folder, incident, outcome, anchors_dir=regions[0].config.state_dir):
        anchor_national_everywhere(regions, incident, folder)
    return results


def anchor_national_everywhere(regions: Sequence[Any], incident: str, folder: Path) -> None:
    """The national summary's newest seal, anchored in every region: its anchor log and the incident's ticket."""
    from tourniquet.engine.sealing import anchor_national

    newest = national.newest_manifest(folder)
    if newest is None:
        return
    manifest, digest = newest
    for region in regions:
        site = Site(region.config)
        try:
            with working_for(region.name):
                anchor_national(site, incident, national.national_incident(incident), manifest, digest)
        except (TourniquetError, OSError) as exc:  # that region's anchor is missing: verify will say so
            log.warning("national.not_anchored", region=region.name, error=mask(str(exc)))
        finally:
            site.close()


def conclude_across(incident: str, sites: Sequence[str], *, by: str, finding: str) -> list[RegionalResult]:
    """Record in every region holding a part of the incident that its investigation is over (recover may follow)."""
    from tourniquet.engine.recover import conclude_investigation

    check_incident_id(incident)
    return _in_each(load_regions(sites), incident,
                    lambda region, site: conclude_investigation(site, incident, by=by, finding=finding))


def recover_across(incident: str, ids: Sequence[str], sites: Sequence[str], *, operator: str = "",
                   investigation_approver: Approver = reject_all,
                   replace_owner_password: bool = False) -> list[RegionalResult]:
    """``recover`` each account in the region whose part of the incident contained it.

    Every id is placed before anything changes: one the incident contained in no region, or in two
    (unless qualified, ``nor:jdupont``), refuses the whole recovery. The caller holds the handover.
    """
    from tourniquet.engine.recover import RecoverRefused, contained_accounts, recover_accounts

    check_incident_id(incident)
    regions = load_regions(sites)
    held = holding(regions, incident)
    if not held:
        raise RecoverRefused(f"no region holds incident {incident} ({', '.join(r.name for r in regions)} searched)")
    contained = {}
    for region in held:
        site = Site(region.config)
        try:
            contained[region.name] = contained_accounts(list(_journal_records(site, incident)))
        finally:
            site.close()
    resolution = resolve_across(held, ids, accept=lambda name, account: (account.uid or account.dn) in contained[name])
    by_region = resolution.parts
    refused = [*resolution.refused.values(), *resolution.waiting.values()]
    if refused or not by_region:
        raise RecoverRefused("refusing to recover: " + ("; ".join(refused) or "no account given")
                             + " (nothing was changed)")
    return _in_each([region for region in held if region.name in by_region], incident,
                    lambda region, site: recover_accounts(incident, by_region[region.name], site, operator=operator,
                                                          investigation_approver=investigation_approver,
                                                          replace_owner_password=replace_owner_password))


def _journal_records(site: Site, incident: str) -> Any:
    from tourniquet.journal import read_journal

    return read_journal(site.incident_dir(incident) / "journal.jsonl")


def verify_across(incident: str, sites: Sequence[str], *, national_dir: str | None = None,
                  anchor_path: str | None = None) -> list[RegionalResult]:
    """Each region's bundle (against its manifests, anchor log and ticket), then the national summary's folder.

    A region the national journal lists as holding a part is verified even when its bundle is gone
    (then TAMPERED, naming it), and the national summary is checked against the anchors each region
    keeps of it (anchor log, ticket), so deleting or rewriting it is seen from any region.
    """
    from tourniquet.engine.sealing import national_anchors_problems, verify_incident
    from tourniquet.evidence import Finding

    check_incident_id(incident)
    regions = load_regions(sites)
    folder = national_folder(regions, incident, national_dir)
    listed = national.parts_recorded(folder, incident)
    held = {region.name for region in holding(regions, incident)}

    def verify_region(region: Any, site: Site) -> Any:
        verdict = verify_incident(site, incident, anchor_path=anchor_path)
        why = listed.get(region.name)
        if why and (verdict.facts.get("missing") or region.name not in held):
            verdict.facts.pop("missing", None)
            verdict.findings.insert(0, Finding(str(site.incident_dir(incident)), f"the national journal says "
                                                                                f"{region.name} holds a part of "
                                                                                f"this incident ({why}), but its "
                                                                                "bundle is gone or has no journal"))
        return verdict

    results = _in_each(regions, incident, verify_region, held=[r for r in regions if r.name in held or r.name in listed])
    regional = {region.name: region.config.evidence_dir / incident for region in regions}
    verdict = national.verify_national(folder, incident, anchors_dir=regions[0].config.state_dir, regional=regional)
    for region in regions:
        site = Site(region.config)
        try:
            problems = national_anchors_problems(site, incident, national.national_incident(incident),
                                                 verdict.manifests)
        finally:
            site.close()
        if problems:
            verdict.facts.pop("missing", None)
            verdict.findings.extend(problems)
    results.append(RegionalResult("national", verdict))
    return results
