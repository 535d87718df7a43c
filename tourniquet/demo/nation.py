"""Several regions for one national incident: each its own directory and platform, some people in two of them.

Each region is a platform of :mod:`tourniquet.demo.platform` with its own practitioners, patients and
access log. People move and are treated in more than one region: a share of each region's patients
are people the next region also has (same name, birth date, contact and NIR, under another local
patient id), so an attacker in each region can touch the same person. :meth:`Nation.truth` counts,
straight from the generator's records, what a correct national summary says: people per region and
per category, and the people of the nation counted once (by who they are, which the generator knows;
every person kept in two regions carries a NIR, so a keyed hash of it can find them).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from tourniquet.demo.access_log import make_nir
from tourniquet.demo.platform import Platform, PlatformAccess, Truth, build_platform
from tourniquet.demo.practitioners import Directory, generate

__all__ = ["Nation", "NationalTruth", "build_nation", "regional_directories"]


@dataclass
class NationalTruth:
    regions: dict[str, Truth]
    people: int
    people_by_category: dict[str, int]
    in_several_regions: int
    accounts: dict[str, int] = field(default_factory=dict)


@dataclass
class Nation:
    platforms: dict[str, Platform]
    #: (region, local patient id) → the person, numbered nationally
    person: dict[tuple[str, int], int]

    def truth(self, windows: Mapping[str, dict[str, tuple[datetime, datetime]]],
              accesses: Mapping[str, Iterable[PlatformAccess]] | None = None) -> NationalTruth:
        """Each region's :class:`Truth` over its windows, and the nation's people counted once."""
        regions: dict[str, Truth] = {}
        categories: dict[int, set[str]] = {}
        regions_of: dict[int, set[str]] = {}
        for name, platform in self.platforms.items():
            truth = platform.truth(windows.get(name, {}), None if accesses is None else accesses[name])
            regions[name] = truth
            for subject, shown in truth.categories_of.items():
                person = self.person[(name, subject)]
                categories.setdefault(person, set()).update(shown)
                regions_of.setdefault(person, set()).add(name)
        by_category: dict[str, int] = {}
        for shown in categories.values():
            for category in shown:
                by_category[category] = by_category.get(category, 0) + 1
        return NationalTruth(regions=regions, people=len(categories), people_by_category=dict(sorted(by_category.items())),
                             in_several_regions=sum(1 for seen in regions_of.values() if len(seen) > 1),
                             accounts={name: len(truth.events) for name, truth in regions.items()})


def regional_directories(names: Sequence[str], count: int, *, domain: str = "example") -> dict[str, Directory]:
    """One directory per region (suffix ``dc=<name>,dc=<domain>``), no uid, RPPS or e-mail in two of them."""
    directories: dict[str, Directory] = {}
    seen: set[str] = set()
    for index, name in enumerate(names):
        suffix = f"dc={name},dc={domain}"
        whole = generate((index + 1) * count, suffix, seed=7 + index)  # names differ by position in the list
        people = [p for p in whole.practitioners[index * count:] if p.rpps not in seen]
        seen.update(p.rpps for p in people)
        directories[name] = Directory(suffix=suffix, practitioners=people, breakglass_dn=whole.breakglass_dn)
    return directories


def build_nation(users: Mapping[str, Sequence[str]], compromised: Mapping[str, Sequence[str]], *, end: datetime,
                 days: int = 120, patients_per_region: int = 2000, shared: float = 0.2,
                 attack_days_ago: Sequence[int] = (30, 20, 12, 25), seed: int = 16) -> Nation:
    """A platform per region (its users, its compromised accounts), ``shared`` of each region's patients
    being people the previous region has too (region 0 shares with the last)."""
    names = list(users)
    platforms = {name: build_platform(list(users[name]), list(compromised.get(name, ())), end=end, days=days,
                                      regions=1, patients_per_region=patients_per_region,
                                      attack_days_ago=attack_days_ago, seed=seed + 101 * index)
                 for index, name in enumerate(names)}
    _unique_nirs(platforms)
    person = {(name, patient.id): index * patients_per_region + patient.id
              for index, name in enumerate(names) for patient in platforms[name].patients}
    rng = random.Random(seed)
    sources: dict[str, set[int]] = {name: set() for name in names}  # copied elsewhere: must stay who they are
    targets: dict[str, set[int]] = {name: set() for name in names}
    count = int(shared * patients_per_region)
    for index, name in enumerate(names if len(names) > 1 else []):
        source_name = names[index - 1]
        source, target = platforms[source_name], platforms[name]
        candidates = [p.id for p in source.patients if p.nir is not None]
        free = [p.id for p in target.patients if p.id not in sources[name] and p.id not in targets[name]]
        for origin, local in zip(rng.sample(candidates, min(count, len(candidates))),
                                 rng.sample(free, min(count, len(free)))):
            target.patients[local] = dataclasses.replace(source.patients[origin], id=local, region=0)
            person[(name, local)] = person[(source_name, origin)]
            sources[source_name].add(origin)
            targets[name].add(local)
    return Nation(platforms=platforms, person=person)


def _unique_nirs(platforms: Mapping[str, Platform]) -> None:
    """Two different people never share a NIR (the generator's random ones could collide)."""
    used: set[str] = set()
    for platform in platforms.values():
        for index, patient in enumerate(platform.patients):
            if patient.nir is None:
                continue
            nir, order = patient.nir, int(patient.nir[10:13])
            while nir in used:
                order = order % 999 + 1
                body = patient.nir[:10]
                nir = make_nir(body[0], int(body[1:3]), int(body[3:5]), body[5:7], body[7:10], order)
            used.add(nir)
            if nir != patient.nir:
                platform.patients[index] = dataclasses.replace(patient, nir=nir)
