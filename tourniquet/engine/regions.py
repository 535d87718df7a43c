"""The sites of a run across several regions, and which of them holds each id — decided before any change.

The same attack hits several regions' platforms at once; each region has its own directory, identity
provider, access log, tickets and data controller. :func:`load_regions` checks the sites together
(distinct names, each its own folders); :func:`resolve_across` searches every directory at once,
read-only: an id resolves in whichever site holds it; one found in two sites is refused as ambiguous
unless qualified (``nor:jdupont``, by the site's name); one found nowhere is named with the sites
searched. A site whose directory cannot be searched is named, and the ids found nowhere else wait for it.

The run itself is :mod:`tourniquet.engine.regions_run`; undo, recover, conclude and verify across sites
are :mod:`tourniquet.engine.regions_after`. Nothing here imports Prefect.
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
from tourniquet.errors import AccountNotFound, ConfigError, NotFound, TourniquetError
from tourniquet.regional import working_for
from tourniquet.secrets import mask
from tourniquet.site import Site

__all__ = ["Region", "Resolution", "load_regions", "split_qualifier", "resolve_across", "national_folder",
           "holding", "MAX_SITES"]

log = structlog.get_logger("tourniquet")


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


def national_folder(regions: Sequence[Region], incident: str, national_dir: str | None) -> Path:
    """Where the incident's national summary lives: under the first site's evidence folder unless given."""
    return national.folder_for(regions[0].config.evidence_dir if national_dir is None else Path(national_dir), incident)


def holding(regions: Sequence[Region], incident: str) -> list[Region]:
    """The regions with an evidence bundle for the incident (a part of it ran there)."""
    return [region for region in regions if (region.config.evidence_dir / incident / "journal.jsonl").is_file()]
