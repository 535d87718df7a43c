"""One incident across several sites: resolve the ids in all of them, run each site's part, sum up nationally.

The same attack hits several regions' platforms at once; each region has its own directory, identity
provider, access log, tickets and data controller. A run across sites is one incident id and, per
site, an ordinary :func:`~tourniquet.engine.execute.execute_playbook` with that site and the ids it
holds — so guardrails (protected accounts, ceiling), journal, evidence bundle, ticket and drafts stay
per region, as each region is its own controller. What this module adds:

- **resolution across sites, before any change**: an id resolves in whichever site holds it; one found
  in two sites is refused as ambiguous unless qualified (``nor:jdupont``, by the site's name); one found
  nowhere is named with the sites searched. A site whose directory cannot be searched is named, and the
  ids found nowhere else wait for it;
- **the parts run at once** (threads here; a Prefect subflow per site in :mod:`tourniquet.flows.regions`,
  through the ``run_part`` hook), and a site that is down does not stop the others: the run ends
  "completed with errors" naming it;
- **re-runs finish the job**: a region whose part completed in an earlier run of the incident is not
  run again (the national journal says so), the others are;
- the **national summary** (:mod:`tourniquet.national`), sealed over the regional bundles.

Nothing here imports Prefect.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from tourniquet import national
from tourniquet.config import SiteConfig, load_site
from tourniquet.connectors.directory import Account
from tourniquet.engine.execute import execute_playbook, find_playbook, planned_incident
from tourniquet.engine.inputs import check_incident_id, resolve_inputs
from tourniquet.engine.loader import load_playbook
from tourniquet.engine.run import Approver, RunSummary, reject_all
from tourniquet.errors import AccountNotFound, ConfigError, NotFound, PlaybookError, TourniquetError
from tourniquet.evidence import SealFailed
from tourniquet.regional import working_for
from tourniquet.secrets import mask
from tourniquet.site import Site

__all__ = ["Region", "Resolution", "Part", "NationalRun", "RunPart", "RegionalResult", "load_regions",
           "split_qualifier", "resolve_across", "execute_across", "part_of", "run_part_here", "undo_across",
           "recover_across", "conclude_across", "verify_across", "ACCOUNTS_INPUT"]

log = structlog.get_logger("tourniquet")

#: The playbook input that names the accounts: what is resolved across the sites.
ACCOUNTS_INPUT = "accounts"


@dataclass(frozen=True)
class Region:
    """One site of a run across several: its name qualifies ids (``nor:jdupont``)."""

    name: str
    path: str
    config: SiteConfig
    aliases: frozenset[str] = frozenset()


#: France has 18 regions; a list longer than this is a mistake, not a country.
MAX_SITES = 50


def load_regions(paths: Sequence[str]) -> list[Region]:
    """The sites, checked together: distinct names, and each its own state and evidence folders."""
    if len(paths) > MAX_SITES:
        raise ConfigError(f"{len(paths)} sites given: at most {MAX_SITES} in one run (MAX_SITES)")
    if len(paths) != len(set(Path(p).resolve() for p in paths)):
        raise ConfigError("the same site file is given twice: " + ", ".join(paths))
    configs = [load_site(path) for path in paths]
    by_name: dict[str, str] = {}
    for path, config in zip(paths, configs):
        if ":" in config.site or not config.site.strip():
            raise ConfigError(f"{path}: site: {config.site!r} cannot qualify ids (nor:jdupont): give the region a "
                              "name without ':'")
        key = config.site.casefold()
        if key in by_name:
            raise ConfigError(f"{by_name[key]} and {path} are both named site: {config.site!r}: each region needs its "
                              f"own name (it qualifies the ids it holds: {config.site}:jdupont)")
        by_name[key] = path
    for folder in ("state_dir", "evidence_dir"):
        owners: dict[Path, str] = {}
        for path, config in zip(paths, configs):
            where = Path(getattr(config, folder)).resolve()
            if where in owners:
                raise ConfigError(f"{owners[where]} and {path} share {folder} {where}: each region keeps its own "
                                  "journal, evidence and plans, so each needs its own folder")
            owners[where] = path
    stems = [Path(p).stem.casefold() for p in paths]
    regions = []
    for path, config, stem in zip(paths, configs, stems):
        aliases = {config.site.casefold()}
        if stems.count(stem) == 1 and stem not in by_name:  # hdf.yaml qualifies as hdf: too, when unique
            aliases.add(stem)
        regions.append(Region(config.site, str(path), config, frozenset(aliases)))
    return regions


def split_qualifier(identifier: str, regions: Sequence[Region]) -> tuple[Region | None, str]:
    """``nor:jdupont`` → (the region named nor, ``jdupont``); an id without a known region's name is left whole."""
    prefix, colon, rest = identifier.partition(":")
    if colon and rest.strip():
        wanted = prefix.strip().casefold()
        for region in regions:
            if wanted in region.aliases:
                return region, rest.strip()
    return None, identifier


@dataclass
class Resolution:
    """Which site holds each id, decided before anything changes."""

    regions: list[str]
    searched: list[str] = field(default_factory=list)
    #: region → why its directory could not be searched
    unreachable: dict[str, str] = field(default_factory=dict)
    #: region → the ids its run gets (without qualifier)
    parts: dict[str, list[str]] = field(default_factory=dict)
    #: region → id → the account it names (uid, else DN)
    accounts: dict[str, dict[str, str]] = field(default_factory=dict)
    #: id → why it is refused (ambiguous across sites, found nowhere, not an account)
    refused: dict[str, str] = field(default_factory=dict)
    #: id → why it waits (found nowhere, and a site could not be searched)
    waiting: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_record(self) -> dict[str, Any]:
        return {"regions": self.regions, "searched": self.searched, "unreachable": self.unreachable,
                "parts": self.parts, "accounts": self.accounts, "refused": self.refused, "waiting": self.waiting,
                "notes": self.notes}


def _listed(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "no site"


def _search(region: Region, ids: list[str]) -> dict[str, Account | NotFound]:
    site = Site(region.config)
    try:
        with working_for(region.name):
            return site.directory.resolve_many(ids)
    finally:
        site.close()


def resolve_across(regions: Sequence[Region], ids: Sequence[str], *, earlier: Mapping[str, str] | None = None,
                   accept: Callable[[str, Account], bool] | None = None) -> Resolution:
    """Each id to the one site that holds it; ``earlier`` (id → region) keeps what an earlier run contained there.

    Every site is searched at once, read-only. A site that cannot be searched is named; an id found
    in no other site then waits for it instead of being called unknown. ``accept(region, account)``
    narrows what counts as found (recover: an account that region's part contained).
    """
    earlier = earlier or {}
    wanted = [i for i in dict.fromkeys(ids) if i.strip()]
    asked: dict[str, list[str]] = {region.name: [] for region in regions}
    qualified: dict[str, tuple[Region | None, str]] = {}
    for identifier in wanted:
        region, bare = split_qualifier(identifier, regions)
        qualified[identifier] = (region, bare)
        for target in ([region] if region is not None else regions):
            if bare not in asked[target.name]:
                asked[target.name].append(bare)
    answers: dict[str, dict[str, Account | NotFound]] = {}
    resolution = Resolution(regions=[r.name for r in regions])
    with ThreadPoolExecutor(max_workers=len(regions), thread_name_prefix="resolve") as pool:
        futures = {region.name: pool.submit(contextvars.copy_context().run, _search, region, asked[region.name])
                   for region in regions if asked[region.name]}
        for name, future in futures.items():
            try:
                answers[name] = future.result()
            except TourniquetError as exc:  # down, refused bind, a secret missing: this site only
                resolution.unreachable[name] = mask(str(exc))
                log.warning("regions.unreachable", region=name, error=mask(str(exc)))
    resolution.searched = [name for name in resolution.regions if name in answers]
    if accept is not None:
        for name, answer in answers.items():
            for identifier, found in answer.items():
                if isinstance(found, Account) and not accept(name, found):
                    answer[identifier] = NotFound(f"{identifier!r} ({found.uid or found.dn}) was not contained by this "
                                                  "incident", system="directory")
    for identifier in wanted:
        region, bare = qualified[identifier]
        if region is not None:
            _qualified(resolution, identifier, region.name, bare, answers)
        else:
            _unqualified(resolution, identifier, answers, earlier.get(identifier))
    return resolution


def _assign(resolution: Resolution, region: str, identifier: str, account: Account) -> None:
    ids = resolution.parts.setdefault(region, [])
    if identifier not in ids:
        ids.append(identifier)
    resolution.accounts.setdefault(region, {})[identifier] = account.uid or account.dn


def _qualified(resolution: Resolution, identifier: str, region: str, bare: str,
               answers: Mapping[str, Mapping[str, Account | NotFound]]) -> None:
    if region in resolution.unreachable:
        resolution.waiting[identifier] = (f"{identifier!r}: {region} could not be searched "
                                          f"({resolution.unreachable[region]}); run again once it answers")
        return
    found = answers[region][bare]
    if isinstance(found, Account):
        _assign(resolution, region, bare, found)
    else:
        resolution.refused[identifier] = f"{identifier!r}: {region}: {found.detail}"


def _unqualified(resolution: Resolution, identifier: str, answers: Mapping[str, Mapping[str, Account | NotFound]],
                 earlier: str | None) -> None:
    found = {name: answer[identifier] for name, answer in answers.items() if isinstance(answer[identifier], Account)}
    if earlier is not None and earlier in resolution.unreachable:  # never move it to another region meanwhile
        resolution.waiting[identifier] = (f"{identifier!r} was contained in {earlier} by an earlier run of this "
                                          f"incident; {earlier} could not be searched now: run again once it answers")
        return
    if earlier in found:  # contained there by an earlier run: stays there
        others = [name for name in found if name != earlier]
        if others:
            resolution.notes.append(f"{identifier!r} also names an account in {_listed(others)}: an earlier run of "
                                    f"this incident contained it in {earlier}; give {others[0]}:{identifier} to "
                                    "contain that one too")
        found = {earlier: found[earlier]}
    if len(found) == 1:
        ((name, account),) = found.items()
        assert isinstance(account, Account)
        _assign(resolution, name, identifier, account)
        if resolution.unreachable:
            resolution.notes.append(f"{identifier!r} was found in {name}; {_listed(list(resolution.unreachable))} "
                                    "could not be searched for it")
        return
    if found:
        where = " and in ".join(f"{name} ({account.dn})" for name, account in found.items())  # type: ignore[union-attr]
        resolution.refused[identifier] = (f"{identifier!r} names an account in {where}: ambiguous across sites; "
                                          f"say which: {' or '.join(f'{name}:{identifier}' for name in found)}")
        return
    searched = _listed(resolution.searched)
    if resolution.unreachable:
        down = _listed(list(resolution.unreachable))
        found_nowhere = f"names no account in {searched}; " if resolution.searched else "could not be looked up: "
        resolution.waiting[identifier] = (f"{identifier!r} {found_nowhere}{down} could not be searched: run again "
                                          "once it answers")
        return
    answers_given = [f"{name}: {answer[identifier].detail}" for name, answer in answers.items()  # type: ignore[union-attr]
                     if not _plainly_unknown(answer[identifier])]
    detail = f" ({'; '.join(answers_given)})" if answers_given else ""
    resolution.refused[identifier] = f"{identifier!r} names no account in {searched}{detail}"


def _plainly_unknown(answer: Account | NotFound) -> bool:
    """No entry at all, as opposed to an ambiguous id, an entry that is not a person's account, or one not wanted."""
    return type(answer) is AccountNotFound


# --------------------------------------------------------------------------- the parts


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
                refused=list(refused.values()))


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
    folder = _national_folder(regions, incident, national_dir)
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
    problems = run.problems
    run.error = "; ".join(problems) if problems else None
    if not dry_run:
        run.summary = national.summarise(incident, [_source(r, run, earlier) for r in regions])
        run.folder = folder
        try:
            run.root = national.write_and_seal(folder, incident, run.summary, resolution=resolution.as_record(),
                                               parts=[p.as_record() for p in parts.values()], status=run.status,
                                               problems=problems, anchors_dir=regions[0].config.state_dir)
        except (OSError, SealFailed) as exc:  # the regions are contained: say what is missing, do not lose it
            why = f"cannot write {getattr(exc, 'filename', None) or folder}: {getattr(exc, 'strerror', None) or exc}"
            run.status = run.status if run.status.endswith("with errors") else f"{run.status} with errors"
            run.error = "; ".join([*problems, f"national summary not sealed: {why}"])
            log.error("national.not_sealed", error=why)
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


# --------------------------------------------------------------------------- after containment, across sites


def _national_folder(regions: Sequence[Region], incident: str, national_dir: str | None) -> Path:
    return national.folder_for(regions[0].config.evidence_dir if national_dir is None else Path(national_dir), incident)


def _holding(regions: Sequence[Region], incident: str) -> list[Region]:
    """The regions with an evidence bundle for the incident (a part of it ran there)."""
    return [region for region in regions if (region.config.evidence_dir / incident / "journal.jsonl").is_file()]


@dataclass
class RegionalResult:
    """What an undo, a recovery or a verification did in one region (or why it could not)."""

    region: str
    result: Any = None
    error: str | None = None


def undo_across(incident: str, sites: Sequence[str], *, national_dir: str | None = None) -> list[RegionalResult]:
    """``undo`` in every region that holds a part of the incident; one region failing does not stop the others."""
    from tourniquet.engine.recover import replaced_passwords
    from tourniquet.engine.undo import undo_incident

    check_incident_id(incident)
    regions = load_regions(sites)
    results = []
    for region in regions:
        if region not in _holding(regions, incident):
            results.append(RegionalResult(region.name, error=f"no part of incident {incident} in "
                                                              f"{region.config.evidence_dir}"))
            continue
        site = Site(region.config)
        try:
            with working_for(region.name):
                entries = undo_incident(incident, site)
                results.append(RegionalResult(region.name, {"entries": entries,
                                                            "replaced": replaced_passwords(site, incident)}))
        except TourniquetError as exc:
            results.append(RegionalResult(region.name, error=mask(str(exc))))
        finally:
            site.close()
    outcome = {}
    for entry in results:
        if entry.result is not None:
            failed = [e for e in entry.result["entries"] if e["status"] in ("failed", "deferred")]
            outcome[entry.region] = f"{len(failed)} failed or deferred" if failed else "undone"
    national.record_undo(_national_folder(regions, incident, national_dir), incident, outcome,
                         anchors_dir=regions[0].config.state_dir)
    return results


def conclude_across(incident: str, sites: Sequence[str], *, by: str, finding: str) -> list[RegionalResult]:
    """Record in every region holding a part of the incident that its investigation is over (recover may follow)."""
    from tourniquet.engine.recover import conclude_investigation

    check_incident_id(incident)
    regions = load_regions(sites)
    results = []
    for region in regions:
        if region not in _holding(regions, incident):
            results.append(RegionalResult(region.name, error="no part of this incident here"))
            continue
        site = Site(region.config)
        try:
            results.append(RegionalResult(region.name, conclude_investigation(site, incident, by=by, finding=finding)))
        except TourniquetError as exc:
            results.append(RegionalResult(region.name, error=mask(str(exc))))
        finally:
            site.close()
    return results


def recover_across(incident: str, ids: Sequence[str], sites: Sequence[str], *, operator: str = "",
                   investigation_approver: Approver = reject_all) -> list[RegionalResult]:
    """``recover`` each account in the region whose part of the incident contained it.

    Every id is placed before anything changes: one the incident contained in no region, or in two
    (unless qualified, ``nor:jdupont``), refuses the whole recovery. The caller holds the handover.
    """
    from tourniquet.engine.recover import RecoverRefused, contained_accounts, recover_accounts

    check_incident_id(incident)
    regions = load_regions(sites)
    holding = _holding(regions, incident)
    if not holding:
        raise RecoverRefused(f"no region holds incident {incident} ({', '.join(r.name for r in regions)} searched)")
    contained = {}
    for region in holding:
        site = Site(region.config)
        try:
            contained[region.name] = contained_accounts(list(_journal_records(site, incident)))
        finally:
            site.close()
    resolution = resolve_across(holding, ids, accept=lambda name, account: (account.uid or account.dn) in contained[name])
    by_region = resolution.parts
    refused = [*resolution.refused.values(), *resolution.waiting.values()]
    if refused or not by_region:
        raise RecoverRefused("refusing to recover: " + ("; ".join(refused) or "no account given")
                             + " (nothing was changed)")
    results = []
    for region in holding:
        if region.name not in by_region:
            continue
        site = Site(region.config)
        try:
            with working_for(region.name):
                results.append(RegionalResult(region.name, recover_accounts(
                    incident, by_region[region.name], site, operator=operator,
                    investigation_approver=investigation_approver)))
        except TourniquetError as exc:
            results.append(RegionalResult(region.name, error=mask(str(exc))))
        finally:
            site.close()
    return results


def _journal_records(site: Site, incident: str) -> Any:
    from tourniquet.journal import read_journal

    return read_journal(site.incident_dir(incident) / "journal.jsonl")


def verify_across(incident: str, sites: Sequence[str], *, national_dir: str | None = None,
                  anchor_path: str | None = None) -> list[RegionalResult]:
    """Each region's bundle (against its manifests, anchor log and ticket), then the national summary's folder."""
    from tourniquet.engine.sealing import verify_incident

    check_incident_id(incident)
    regions = load_regions(sites)
    results = []
    for region in regions:
        if region not in _holding(regions, incident):
            results.append(RegionalResult(region.name, error="no part of this incident here"))
            continue
        site = Site(region.config)
        try:
            results.append(RegionalResult(region.name, verify_incident(site, incident, anchor_path=anchor_path)))
        finally:
            site.close()
    folder = _national_folder(regions, incident, national_dir)
    regional = {region.name: region.config.evidence_dir / incident for region in regions}
    results.append(RegionalResult("national", national.verify_national(
        folder, incident, anchors_dir=regions[0].config.state_dir, regional=regional)))
    return results
