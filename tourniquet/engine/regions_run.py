"""A run across several sites: each site's part at once, then the national summary sealed over them.

Per site, the part is an ordinary :func:`~tourniquet.engine.execute.execute_playbook` with that site
and the ids it holds (resolved first, :mod:`tourniquet.engine.regions`) — so guardrails (protected
accounts, ceiling), journal, evidence bundle, ticket and drafts stay per region, as each region is its
own controller. What this module adds:

- **the parts run at once** (threads here; a Prefect subflow per site in :mod:`tourniquet.flows.regions`,
  through the ``run_part`` hook), and a site that is down does not stop the others: the run ends
  "completed with errors" naming it;
- **re-runs finish the job**: a region whose part completed in an earlier run of the incident is not
  run again (the national journal says so), the others are;
- the **national summary** (:mod:`tourniquet.national`), sealed over the regional bundles.
- **one outcome for the incident** (:func:`merged_outcomes`): each region's fold of its own journal, merged
  with the ids no region ran (refused, or waiting for a region that is down), so the headline, the lines
  and the exit code are the single-site ones (:class:`~tourniquet.outcomes.Outcomes`), in the same words.

Nothing here imports Prefect.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from tourniquet import national
from tourniquet.engine.execute import execute_playbook, find_playbook, planned_incident
from tourniquet.engine.inputs import resolve_inputs
from tourniquet.engine.loader import load_playbook
from tourniquet.engine.regions import Region, Resolution, load_regions, national_folder, resolve_across
from tourniquet.engine.regions_after import anchor_national_everywhere
from tourniquet.engine.run import Approver, RunSummary, reject_all
from tourniquet.errors import ConfigError, PlaybookError, TourniquetError
from tourniquet.evidence import SealFailed
from tourniquet.outcomes import REGION_STEP, AccountOutcome, Entry, Kind, Outcomes
from tourniquet.regional import working_for
from tourniquet.secrets import mask
from tourniquet.site import Site

__all__ = ["Part", "NationalRun", "RunPart", "part_of", "run_part_here", "checked_inputs", "execute_across",
           "merged_outcomes", "ACCOUNTS_INPUT"]

log = structlog.get_logger("tourniquet")

#: The playbook input that names the accounts: what is resolved across the sites.
ACCOUNTS_INPUT = "accounts"


@dataclass
class Part:
    """One site's part of the incident, as it ended."""

    region: str
    ids: list[str]
    status: str
    error: str | None = None
    journal: str | None = None
    report: str | None = None
    accounts: list[str] = field(default_factory=list)
    #: completed by an earlier run of the incident: not run again
    skipped: bool = False
    scope: dict[str, Any] | None = None
    #: accounts its guardrails refused (protected): {"account", "step", "reason"}
    refused: list[dict[str, Any]] = field(default_factory=list)
    #: what its run did per account, folded from its journal (None when it did not run)
    outcome: Outcomes | None = None

    def as_record(self) -> dict[str, Any]:
        return {"region": self.region, "ids": self.ids, "status": self.status, "error": self.error,
                "journal": self.journal, "accounts": self.accounts, "skipped": self.skipped, "refused": self.refused}


def part_of(region: str, ids: list[str], summary: RunSummary) -> Part:
    """A site's run summary as its part of the incident."""
    scope = summary.results.get("scope")
    refused: dict[str, dict[str, str]] = {}  # once per account: the first step that refused it
    for refusal in summary.refused:
        refused.setdefault(str(refusal.get("account")),
                           {key: str(refusal.get(key, "")) for key in ("account", "step", "reason")})
    return Part(region=region, ids=ids, status=summary.status, error=summary.error,
                journal=str(summary.journal) if summary.journal else None,
                report=str(summary.report) if summary.report else None,
                scope=scope if isinstance(scope, dict) else None,
                refused=list(refused.values()), outcome=summary.outcomes)


#: Runs one site's part: (region, its ids, the playbook inputs for it, incident, dry_run) → its Part.
RunPart = Callable[[Region, list[str], dict[str, Any], str, bool], Part]


def run_part_here(playbook: str, approver: Approver = reject_all) -> RunPart:
    """Parts on threads of this process, without Prefect (``tourniquet plan``, tests)."""

    def run(region: Region, ids: list[str], inputs: dict[str, Any], incident: str, dry_run: bool) -> Part:
        with working_for(region.name):
            try:
                summary = execute_playbook(playbook, inputs, dry_run=dry_run, incident=incident, site=region.path,
                                           approver=approver)
            except TourniquetError as exc:  # its storage, its site file: this region only
                return Part(region=region.name, ids=ids, status="failed", error=mask(str(exc)))
        return part_of(region.name, ids, summary)

    return run


@dataclass
class NationalRun:
    """What a run across sites did, region by region, and the national summary it sealed."""

    incident: str
    playbook: str
    dry_run: bool
    status: str
    resolution: Resolution
    parts: dict[str, Part]
    error: str | None = None
    summary: national.NationalSummary | None = None
    folder: Path | None = None
    root: str = ""
    #: every region's outcome merged (:func:`merged_outcomes`): the incident's headline and exit code
    outcomes: Outcomes = field(default_factory=Outcomes)

    @property
    def problems(self) -> list[str]:
        """Each thing that keeps the run from being complete, in the responder's words."""
        problems = []
        for name in self.resolution.regions:
            part = self.parts.get(name)
            if name in self.resolution.unreachable:
                problems.append(f"{name}: not run: its directory could not be searched: "
                                f"{self.resolution.unreachable[name]}")
            elif part is not None and part.status not in ("completed", "planned"):
                problems.append(f"{name}: {part.status}: {part.error}")
        problems += [f"refused {why}" for why in self.resolution.refused.values()]
        problems += [f"waiting {why}" for why in self.resolution.waiting.values()]
        return problems


def checked_inputs(playbook: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The playbook's inputs, checked; a run across sites needs an ``accounts`` input to resolve."""
    loaded = load_playbook(find_playbook(playbook))
    if ACCOUNTS_INPUT not in loaded.playbook.inputs:
        raise PlaybookError(f"{loaded.playbook.playbook} has no {ACCOUNTS_INPUT!r} input: a run across several sites "
                            "resolves the accounts it is given in each of them")
    resolved = resolve_inputs(loaded.playbook, inputs)
    if not any(str(i).strip() for i in resolved.get(ACCOUNTS_INPUT) or []):
        raise PlaybookError("no account given: name at least one uid, RPPS number, e-mail or DN")
    return resolved


def execute_across(
    playbook: str,
    inputs: dict[str, Any],
    sites: Sequence[str],
    *,
    dry_run: bool,
    incident: str | None = None,
    national_dir: str | None = None,
    run_part: RunPart | None = None,
) -> NationalRun:
    """Resolve across ``sites``, run each site's part at once, then seal the national summary (not in a dry run)."""
    regions = load_regions(sites)
    resolved = checked_inputs(playbook, inputs)
    incident = planned_incident(playbook, inputs, incident)
    playbook_name = load_playbook(find_playbook(playbook)).playbook.playbook
    folder = national_folder(regions, incident, national_dir)
    if not dry_run:  # a national folder that cannot be made is said before anything changes
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the national summary's folder in {folder.parent}: "
                              f"{exc.strerror or exc}") from None
    earlier = national.earlier_runs(folder, incident)
    with structlog.contextvars.bound_contextvars(incident=incident):
        resolution = resolve_across(regions, [str(i) for i in resolved[ACCOUNTS_INPUT]], earlier=earlier.assigned)
        log.info("regions.resolved", parts={k: len(v) for k, v in resolution.parts.items()},
                 refused=len(resolution.refused), waiting=len(resolution.waiting),
                 unreachable=list(resolution.unreachable))
        parts = _run_parts(regions, resolution, inputs, incident, dry_run, earlier,
                           run_part or run_part_here(playbook))
    run = NationalRun(incident=incident, playbook=playbook_name, dry_run=dry_run, status="", resolution=resolution,
                      parts=parts)
    run.status = _status(run)
    run.outcomes = merged_outcomes(run)
    problems = run.problems
    run.error = "; ".join(problems) if problems else None
    if not dry_run:
        run.summary = national.summarise(incident, [_source(r, run, earlier) for r in regions])
        run.folder = folder
        try:
            run.root = national.write_and_seal(folder, incident, run.summary, resolution=resolution.as_record(),
                                               parts=[p.as_record() for p in parts.values()], status=run.status,
                                               problems=problems, anchors_dir=regions[0].config.state_dir)
            anchor_national_everywhere(regions, incident, folder)
        except (OSError, SealFailed) as exc:  # the regions are contained: say what is missing, do not lose it
            why = f"cannot write {getattr(exc, 'filename', None) or folder}: {getattr(exc, 'strerror', None) or exc}"
            run.status = run.status if run.status.endswith("with errors") else f"{run.status} with errors"
            run.error = "; ".join([*problems, f"national summary not sealed: {why}"])
            log.error("national.not_sealed", error=why)
    from tourniquet.notices.national import notify_across

    told_in = notify_across([(region.name, region.config) for region in regions], run)  # the SOC hears once
    if told_in is not None and not dry_run:
        from tourniquet.engine.notices import seal_after

        home = next(region for region in regions if region.name == told_in)
        site = Site(home.config)
        try:
            seal_after(site, [incident], note="national notification")
        finally:
            site.close()
    return run


def _source(region: Region, run: NationalRun, earlier: national.Earlier) -> national.RegionSource:
    """How the region stands in the incident, for the national summary."""
    part = run.parts.get(region.name)
    accounts = sorted(set(run.resolution.accounts.get(region.name, {}).values()))
    if part is not None:
        status = "completed by an earlier run" if part.skipped else part.status
    elif region.name in run.resolution.unreachable:
        status = "not run: its directory could not be searched"
    elif region.name in earlier.completed:
        status = "completed by an earlier run"
    else:
        status = national.NO_ACCOUNT
    return national.RegionSource(name=region.name, config=region.config, status=status, accounts=accounts)


def _run_parts(regions: Sequence[Region], resolution: Resolution, inputs: dict[str, Any], incident: str,
               dry_run: bool, earlier: national.Earlier, run_part: RunPart) -> dict[str, Part]:
    parts: dict[str, Part] = {}
    work = []
    for region in regions:
        ids = resolution.parts.get(region.name)
        if not ids:
            continue
        done = earlier.completed.get(region.name)
        if not dry_run and done is not None and set(ids) <= set(done):
            parts[region.name] = Part(region=region.name, ids=ids, status="completed", skipped=True,
                                      accounts=sorted(resolution.accounts.get(region.name, {}).values()),
                                      error=None)
            log.info("regions.skipped", region=region.name, why="completed by an earlier run of this incident")
            continue
        work.append((region, ids))
    with ThreadPoolExecutor(max_workers=max(1, len(work)), thread_name_prefix="region") as pool:
        futures = {region.name: pool.submit(contextvars.copy_context().run, run_part, region, ids,
                                            {**inputs, ACCOUNTS_INPUT: ids}, incident, dry_run)
                   for region, ids in work}
        for region, ids in work:
            try:
                part = futures[region.name].result()
            except Exception as exc:  # a bug in one region's part: the others' results and the summary stay
                log.exception("regions.part_crashed", region=region.name)
                part = Part(region=region.name, ids=ids, status="failed",
                            error=f"internal error: {type(exc).__name__}: {mask(str(exc))[:300]} (a bug: please "
                                  "report it)")
            part.accounts = sorted(set(resolution.accounts.get(region.name, {}).values()))
            parts[region.name] = part
    return {name: parts[name] for name in resolution.regions if name in parts}


def _status(run: NationalRun) -> str:
    ended = [p.status for p in run.parts.values()]
    good = "planned" if run.dry_run else "completed"
    if not ended:
        return "failed"
    if all(status == good for status in ended) and not run.problems:
        return good
    if not any(status.startswith(good) for status in ended):
        return "failed"
    return f"{good} with errors"


def merged_outcomes(run: NationalRun) -> Outcomes:
    """Every region's outcome (folded from its own journal) as one, plus the ids no region ran: refused ones
    (unknown, ambiguous) and waiting ones (their region down). Its headline, lines and exit code are the
    single-site ones (:class:`~tourniquet.outcomes.Outcomes`), so the wording cannot differ."""
    merged = Outcomes(dry_run=run.dry_run)
    owners: dict[str, list[str]] = {}
    for name, part in run.parts.items():
        for account in (part.outcome.accounts if part.outcome is not None else {}) or part.accounts:
            owners.setdefault(account, []).append(name)
    for name, part in run.parts.items():
        outcome = part.outcome
        if outcome is not None:
            merged.word = outcome.word
            for step, action in outcome.steps.items():
                merged.steps.setdefault(step, action)
            merged.approvals += [{**a, "reason": f"{name}: {a.get('reason', '')}"} for a in outcome.approvals]
            merged.problems += [f"{name}: {problem}" for problem in outcome.problems]
            merged.others += outcome.others
            if outcome.stopped and not merged.stopped:
                merged.status, merged.error = outcome.status, f"{name}: {outcome.error}"
        done = outcome.accounts if outcome is not None else {}
        for account in part.accounts:  # assigned to the region, yet its journal has nothing for it
            if account not in done:
                kind, why = ((Kind.ALREADY, "contained by an earlier run of this incident") if part.skipped else
                             (Kind.FAILED, f"region {name} {part.status}: {part.error or 'nothing was done'}"))
                _put(merged, _named(account, name, owners), Entry(REGION_STEP, name, account, kind, why))
        for account, found in done.items():
            _put(merged, _named(account, name, owners), *found.entries.values())
    for identifier, why in run.resolution.refused.items():
        _put(merged, identifier, Entry("resolve", "directory", identifier, Kind.REFUSED, _without_id(why)))
    for identifier, why in run.resolution.waiting.items():
        down = [name for name in run.resolution.unreachable if re.search(rf"\b{re.escape(name)}\b", _without_id(why))]
        reason = ", ".join(f"region {name} down" for name in down) or _without_id(why)
        _put(merged, identifier, Entry("resolve", "directory", identifier, Kind.WAITING, reason))
    if not merged.stopped and merged.accounts:
        merged.status = "planned" if run.dry_run else "completed"
    return merged


def _named(account: str, region: str, owners: dict[str, list[str]]) -> str:
    """The account as the headline names it: qualified by its region when another region holds the same name."""
    return f"{region}:{account}" if len(owners.get(account, [])) > 1 else account


def _put(merged: Outcomes, name: str, *entries: Entry) -> None:
    outcome = merged.accounts.setdefault(name, AccountOutcome(name))
    for entry in entries:
        outcome.add(entry)


def _without_id(why: str) -> str:
    """``'jdupnt' names no account in hdf, nor`` → ``no account in hdf, nor`` (the headline names the id)."""
    text = why.split("' ", 1)[1] if why.startswith("'") and "' " in why else why
    return text.removeprefix(": ").removeprefix("names ")
