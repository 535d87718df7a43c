"""Three regions for one incident: three real slapd servers, three platforms' access logs, one shared key.

Hauts-de-France, Normandie and Pays de la Loire each have their own directory (its own suffix and
practitioners: no uid, RPPS or e-mail in two of them), their own platform log in the platform's own
vocabulary (:mod:`tourniquet.demo.nation`: a fifth of each region's patients are people the previous
region treats too, same NIR under another local id), their own tickets and evidence folder. The
subject tables share a national identifier (the NIR) hashed under one key, so people can be counted
once nationally. Ten accounts are compromised: four in hdf, three in nor, three in pdl.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_site
from tests.helpers import LdapAdmin, require_slapd
from tourniquet.demo.nation import Nation, build_nation, regional_directories
from tourniquet.demo.platform import PlatformAccess, write_platform_sqlite
from tourniquet.demo.practitioners import Directory, write_ldif
from tourniquet.demo.slapd import Slapd

NAMES = ("hdf", "nor", "pdl")
PER_REGION = 20
COMPROMISED = {"hdf": (2, 5, 9, 14), "nor": (3, 8, 12), "pdl": (1, 6, 17)}  # indexes in each region's directory
NOW = datetime.now(timezone.utc)


@dataclass
class Region:
    name: str
    directory: Directory
    slapd: Slapd
    log: Path
    accesses: list[PlatformAccess] = field(default_factory=list)

    def admin(self) -> LdapAdmin:
        return LdapAdmin(self.slapd)

    def dump(self) -> dict[str, dict[str, list[str]]]:
        admin = self.admin()
        try:
            return admin.dump()
        finally:
            admin.close()

    def compromised(self) -> list[Any]:
        return [self.directory.practitioners[i] for i in COMPROMISED[self.name]]


@dataclass
class Country:
    regions: dict[str, Region]
    nation: Nation
    key_file: Path

    def ids(self) -> list[str]:
        """The ten accounts as alerts name them: by uid, RPPS number or e-mail, in turn."""
        named = []
        n = 0
        for region in self.regions.values():
            for person in region.compromised():
                named.append((person.uid, person.rpps, person.mail)[n % 3])
                n += 1
        return named

    def since(self) -> datetime:
        """A fixed window start covering every planted attack (3 days before the first)."""
        first = min(a.ts for region in self.regions.values() for a in region.accesses if a.planted)
        return first - timedelta(days=3)

    def sites(self, tmp_path: Path, **overrides: Any) -> list[Path]:
        """A site file per region, each with its own state, evidence and tickets folders."""
        paths = []
        for name, region in self.regions.items():
            folder = tmp_path / name
            folder.mkdir(parents=True, exist_ok=True)
            audit = self.nation.platforms[name].site_audit(kind="sqlite", path=str(region.log))
            audit["subjects"]["national_id"] = "nir"
            audit["national_id_key"] = {"file": str(self.key_file)}
            paths.append(write_site(folder, region.slapd, region.directory, site=name, audit=audit,
                                    **overrides.get(name, {})))
        return paths

    def reset(self) -> None:
        for region in self.regions.values():
            if region.slapd.process is None:
                region.slapd.start()
            admin = region.admin()
            try:
                admin.reset_all(region.directory)
            finally:
                admin.close()


@pytest.fixture(scope="module")
def country(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Country]:
    require_slapd()
    base = tmp_path_factory.mktemp("regions")
    directories = regional_directories(NAMES, PER_REGION)
    users = {name: [p.uid for p in directories[name].practitioners] for name in NAMES}
    compromised = {name: [users[name][i] for i in COMPROMISED[name]] for name in NAMES}
    nation = build_nation(users, compromised, end=NOW, days=100, patients_per_region=3000, shared=0.2)
    regions: dict[str, Region] = {}
    try:
        for name in NAMES:
            folder = base / f"slapd-{name}"
            folder.mkdir()
            server = Slapd(directories[name].suffix, f"root-secret-{name}", directory=folder)
            server.configure(write_ldif(directories[name], folder / "data.ldif"))
            server.start()
            accesses = list(nation.platforms[name].accesses())
            log = base / f"plateforme-{name}.sqlite"
            write_platform_sqlite(nation.platforms[name], log, accesses)
            regions[name] = Region(name, directories[name], server, log, accesses)
        key = base / "national-id-key"
        key.write_text("one key for the three regions' NIR hashes\n")
        key.chmod(0o600)
        yield Country(regions, nation, key)
    finally:
        for region in regions.values():
            region.slapd.stop()


def changed(before: dict[str, dict[str, list[str]]], after: dict[str, dict[str, list[str]]]) -> dict[str, set[str]]:
    """Per entry DN, the attributes that differ between two whole-directory dumps."""
    diff = {}
    for dn in set(before) | set(after):
        old, new = before.get(dn, {}), after.get(dn, {})
        names = {a for a in set(old) | set(new) if old.get(a) != new.get(a)}
        if names:
            diff[dn] = names
    return diff


#: What containing an OpenLDAP account changes in its entry, and nothing else.
CONTAINMENT = {"userPassword", "pwdChangedTime", "pwdAccountLockedTime", "pwdReset"}
