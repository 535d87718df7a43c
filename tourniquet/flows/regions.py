"""One incident across several sites as Prefect runs: a subflow per site, all at once, under one flow run.

The incident's flow run (``tourniquet-regions``, or ``respond`` given several sites) resolves the ids
across the sites (:mod:`tourniquet.engine.regions`), then (:mod:`tourniquet.engine.regions_run`) starts
one subflow per site that holds some — ``inc-…-hdf-contain``, ``inc-…-nor-contain`` … — on threads of
its own, so the regions are contained at the same time and each shows its own steps, task runs,
artifacts and approvals in the UI. A region's subflow ends as a single-site run does (*Contained*,
*Partially contained*; Failed when its part contained nothing or failed, its message says why). The
incident's flow run ends after every region, named after the regions' outcomes merged
(:func:`~tourniquet.engine.regions_run.merged_outcomes`): *Contained*, *Partially contained* (a region
down while the others contained theirs: Completed, not Failed), or Failed when nothing was contained;
its message is the incident's headline. The national summary is the incident run's artifact ``tourniquet-<incident>-national``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog
from prefect import flow
from prefect.runtime import flow_run as current_run
from prefect.states import Failed, State

from tourniquet.engine.regions import Region
from tourniquet.engine.regions_run import NationalRun, Part, RunPart, execute_across, part_of
from tourniquet.errors import TourniquetError
from tourniquet.exit_codes import ExitCode
from tourniquet.flows.events import emit_incident
from tourniquet.flows.form import run_name
from tourniquet.flows.running import execute_in_flow, name_from_parameters, not_started, tag_run
from tourniquet.flows.states import run_state
from tourniquet.outcomes import Outcomes
from tourniquet.regional import artifact_key, working_for
from tourniquet.secrets import mask

__all__ = ["run_regions", "region_part", "run_across_in_flow", "national_run_dict"]

log = structlog.get_logger("tourniquet")


def _region_run_name() -> str:
    parameters = current_run.parameters
    incident = str(parameters.get("incident") or "invalid-input")
    return run_name(f"{incident}-{parameters.get('region', '')}", bool(parameters.get("dry_run")),
                    str(parameters.get("live_word") or "contain"))


@flow(name="tourniquet-region", log_prints=False, flow_run_name=_region_run_name)
def region_part(region: str, site: str, playbook: str, inputs: dict[str, Any], incident: str, dry_run: bool = False,
                live_word: str = "contain") -> dict[str, Any] | State[Any]:
    """One region's part of an incident across sites: the playbook on that site, for the ids it holds.

    Args:
        region: The site's name
        site: Its site configuration file
        playbook: Playbook name or path
        inputs: The playbook's inputs, with this region's accounts
        incident: The incident id, the same in every region
        dry_run: Plan only: list every change, change nothing
        live_word: What the run is called when it changes things (contain)
    """
    tag_run(dry_run, f"region:{region}")  # the runs list filters one region's parts
    ids = [str(i) for i in inputs.get("accounts") or []]
    with working_for(region):
        try:
            summary = execute_in_flow(playbook, inputs, dry_run=dry_run, incident=incident, site=site)
        except TourniquetError as exc:  # its site file, its storage: this region only
            part = Part(region=region, ids=ids, status="failed", error=mask(str(exc)))
        else:
            part = part_of(region, ids, summary)
    data = {**_part_dict(part), "outcome": part.outcome}
    if part.outcome is not None and part.outcome.exit_code() is not ExitCode.NONE and not part.outcome.stopped:
        return run_state(part.outcome, data)  # Contained, Partially contained, Planned …
    if part.status in ("completed", "planned"):
        return data
    return Failed(message=mask(f"{region}: {part.status}: {part.error}"), data=data)


def _part_dict(part: Part) -> dict[str, Any]:
    return {"region": part.region, "ids": part.ids, "status": part.status, "error": part.error,
            "journal": part.journal, "report": part.report, "scope": part.scope, "refused": part.refused,
            "headline": part.outcome.headline() if part.outcome is not None else None}


def _subflows(playbook: str, live_word: str) -> RunPart:
    """Each region's part as a subflow of the current flow run."""

    def run(region: Region, ids: list[str], inputs: dict[str, Any], incident: str, dry_run: bool) -> Part:
        state = region_part(region.name, region.path, playbook, inputs, incident, dry_run, live_word,
                            return_state=True)
        data = state.result(raise_on_failure=False)
        if isinstance(data, dict):
            return Part(region=region.name, ids=ids, status=str(data.get("status")), error=data.get("error"),
                        journal=data.get("journal"), report=data.get("report"), scope=data.get("scope"),
                        refused=list(data.get("refused") or []),
                        outcome=data["outcome"] if isinstance(data.get("outcome"), Outcomes) else None)
        return Part(region=region.name, ids=ids, status="failed", error=mask(str(data or state.message)))

    return run


def national_run_dict(run: NationalRun) -> dict[str, Any]:
    """What the CLI prints and the flow run returns: each region, the refusals, the national summary."""
    summary = run.summary
    regions = []
    for name in run.resolution.regions:
        part = run.parts.get(name)
        if part is not None:
            regions.append({**_part_dict(part), "accounts": part.accounts, "skipped": part.skipped})
        elif name in run.resolution.unreachable:
            regions.append({"region": name, "status": "not run", "accounts": [], "skipped": False,
                            "error": f"its directory could not be searched: {run.resolution.unreachable[name]}"})
        else:
            regions.append({"region": name, "status": "no account of this incident", "accounts": [],
                            "skipped": False, "error": None})
    national = None
    if summary is not None:
        national = {"folder": str(run.folder), "root": run.root, "people": summary.people, "exact": summary.exact,
                    "complete": summary.complete, "explanation": summary.explanation,
                    "in_several_regions": summary.in_several_regions, "people_by_category": summary.people_by_category,
                    "regions": {r.region: {"people": r.people, "people_by_category": r.people_by_category,
                                           "records": r.records} for r in summary.regions}}
    outcome = run.outcomes
    return {"outcome": {**outcome.as_dict(), "lines": outcome.lines()},
            "incident": run.incident, "playbook": run.playbook, "status": run.status, "dry_run": run.dry_run,
            "error": run.error, "regions": regions, "refused": run.resolution.refused,
            "waiting": run.resolution.waiting, "notes": run.resolution.notes, "national": national}


def _publish(run: NationalRun) -> None:
    """The national summary as the incident run's artifact (the regions' own artifacts are on their subflows)."""
    if run.folder is None:
        return
    try:
        from prefect.artifacts import create_markdown_artifact

        report = (run.folder / "report.md").read_text(encoding="utf-8")
        create_markdown_artifact(mask(report), key=artifact_key(run.incident, "national"),
                                 description=mask(f"National summary of {run.incident}: {run.status}"))
    except Exception as exc:  # an artifact is a courtesy: the summary is sealed in its folder
        log.warning("national.artifact_failed", error=str(exc))


def run_across_in_flow(playbook: str, inputs: dict[str, Any], sites: list[str], *, dry_run: bool, incident: str = "",
                       national_dir: str = "", live_word: str = "contain") -> dict[str, Any] | State[Any]:
    """Inside a flow run: resolve across ``sites``, a subflow per region, then the national summary."""
    tag_run(dry_run)
    try:
        run = execute_across(playbook, inputs, sites, dry_run=dry_run, incident=incident or None,
                             national_dir=national_dir or None, run_part=_subflows(playbook, live_word))
    except TourniquetError as exc:  # a site file, the playbook, an input: nothing ran anywhere
        return not_started(f"{playbook}: not started: {exc}")
    _publish(run)
    from tourniquet.flows.running import in_flow_run_id
    from tourniquet.flows.story import publish_story, run_links

    publish_story(run.incident, list(sites), links=run_links(run.incident, in_flow_run_id()))
    emit_incident(run.status, run.incident, run.playbook, dry_run=dry_run, error=run.error,
                  regions={name: part.status for name, part in run.parts.items()}, root=run.root or None)
    data = national_run_dict(run)
    if run.outcomes.exit_code() is not ExitCode.NONE:  # Contained, Partially contained (a region down) …
        return run_state(run.outcomes, data)
    return Failed(message=mask(f"{run.playbook} across {len(run.resolution.regions)} sites: "
                               f"{run.outcomes.headline()}"), data=data)


def _regions_run_name() -> str:
    return name_from_parameters(None)


@flow(name="tourniquet-regions", log_prints=False, flow_run_name=_regions_run_name)
def run_regions(playbook: str, sites: list[str], inputs: dict[str, Any] | None = None, dry_run: bool = False,
                incident: str = "", national_dir: str = "") -> dict[str, Any] | State[Any]:
    """Run a playbook for one incident across several sites (regions), a subflow per site.

    Args:
        playbook: Playbook name or path
        sites: The sites' configuration files; ids qualified by a site's name (nor:jdupont) go to it
        inputs: The playbook's inputs, by name (accounts: ids from every region)
        dry_run: Plan only: list every change, change nothing
        incident: Incident id; empty = derived from the playbook, the inputs and the day
        national_dir: Where the national summary folder goes; empty = the first site's evidence_dir
    """
    return run_across_in_flow(playbook, dict(inputs or {}), list(sites), dry_run=dry_run, incident=incident,
                              national_dir=national_dir, live_word=Path(playbook).stem)
