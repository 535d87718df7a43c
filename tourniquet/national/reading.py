"""Reading one region's sealed scope: its figures, only from files whose bytes its latest seal lists.

A region's people are counted from ``scope.json`` and ``subjects.csv`` of the scope folder its
latest ``scope`` record names; each file's SHA-256 must equal the one its latest manifest lists,
checked as the file is read (read once). A link, a pipe or a device in a bundle is never opened.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tourniquet.config import SiteConfig
from tourniquet.errors import TourniquetError
from tourniquet.evidence.bundle import JOURNAL, MANIFESTS, strict_json
from tourniquet.journal import read_journal
from tourniquet.national.people import PeopleCounter, RegionRows, hash_bytes
from tourniquet.secrets import mask

__all__ = ["RegionSource", "RegionFigures", "read_region", "key_check", "KEY_CHECK_TEXT", "NO_ACCOUNT"]

#: Hashed under a region's national-id key, it shows whether two regions share the key (and nothing else).
KEY_CHECK_TEXT = b"tourniquet: national identifier key check"
_SCOPE_FOLDER = re.compile(r"^scope/[^/.][^/]*$")
#: A region none of the incident's ids named: listed, not counted, not missing.
NO_ACCOUNT = "no account of this incident"


def key_check(config: SiteConfig) -> str | None:
    """The keyed hash of a fixed text under the site's national-id key: equal on two sites iff their keys are."""
    audit = config.audit
    if audit is None or audit.subjects is None or audit.subjects.national_id is None or audit.national_id_key is None:
        return None
    key = audit.national_id_key.get().encode("utf-8")
    return hmac.new(key, KEY_CHECK_TEXT, hashlib.sha256).hexdigest()[:16]


@dataclass
class RegionSource:
    """A region as the run across sites left it: its site, how its part ended, its accounts."""

    name: str
    config: SiteConfig
    status: str
    accounts: list[str] = field(default_factory=list)


@dataclass
class RegionFigures:
    """One region's line of the summary: how its part ended, what it was counted from, and its figures."""

    region: str
    status: str
    accounts: list[str]
    evidence: str | None = None
    seal: dict[str, Any] | None = None
    scope: dict[str, Any] | None = None
    records: int | None = None
    people: int | None = None
    people_by_category: dict[str, int] = field(default_factory=dict)
    national_id: str | None = None
    key_check: str | None = None
    without_national_id: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def counted(self) -> bool:
        return self.people is not None


def _latest_manifest(folder: Path) -> tuple[str, bytes, dict[str, Any]] | None:
    names = sorted(p.name for p in (folder / MANIFESTS).glob("[0-9][0-9][0-9][0-9].json"))
    if not names:
        return None
    raw = (folder / MANIFESTS / names[-1]).read_bytes()
    manifest = strict_json(raw)
    if not isinstance(manifest, dict):
        raise ValueError("not a JSON object")
    return f"{MANIFESTS}/{names[-1]}", raw, manifest


def _latest_scope(folder: Path) -> str | None:
    """The scope folder (relative to the bundle) the region's latest ``scope`` record names."""
    latest = None
    for record in read_journal(folder / JOURNAL):
        if isinstance(record, dict) and record.get("type") == "scope" and record.get("folder"):
            latest = str(record["folder"])
    if latest is None:
        return None
    path = Path(latest)
    try:
        relative = path.relative_to(folder).as_posix() if path.is_absolute() else path.as_posix()
    except ValueError:
        return None
    return relative if _SCOPE_FOLDER.match(relative) else None  # scope/<stamp>, as the scope step makes it


def _sealed_lines(path: Path, expected: str) -> Iterator[str]:
    """The file's lines, and at the end a check that its bytes are the sealed ones (read once, hashed as read)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for line in handle:
            digest.update(line)
            yield line.decode("utf-8")
    if digest.hexdigest() != expected:
        raise _Unsealed(path.name)


class _Unsealed(TourniquetError):
    """A scope file whose bytes are not the ones the region's latest seal lists."""


def read_region(source: RegionSource, incident: str, counter: PeopleCounter) -> RegionFigures:
    figures = RegionFigures(region=source.name, status=source.status, accounts=list(source.accounts))
    folder = source.config.evidence_dir / incident
    subjects = source.config.audit.subjects if source.config.audit is not None else None
    figures.national_id = subjects.national_id if subjects is not None else None
    try:
        figures.key_check = key_check(source.config)
    except TourniquetError as exc:
        figures.problems.append(f"its national identifier key cannot be read ({mask(str(exc))}): its people "
                                "cannot be matched with other regions'")
    if not (folder / JOURNAL).is_file():
        if source.status.startswith("completed"):
            figures.problems.append(f"no evidence bundle {folder}")
        return figures
    figures.evidence = str(folder)
    try:
        latest = _latest_manifest(folder)
    except (OSError, ValueError) as exc:
        figures.problems.append(f"its latest manifest cannot be read ({exc}): not counted")
        return figures
    if latest is None:
        figures.problems.append("its bundle was never sealed: not counted")
        return figures
    name, raw, manifest = latest
    figures.seal = {"manifest": name, "sequence": manifest.get("sequence"), "root": manifest.get("root"),
                    "sha256": hashlib.sha256(raw).hexdigest()}
    try:
        scope = _latest_scope(folder)
    except (OSError, ValueError) as exc:
        figures.problems.append(f"its journal cannot be read ({exc}): not counted; `tourniquet evidence verify` "
                                "names the line")
        return figures
    if scope is None:
        figures.problems.append("no data scope was frozen (no audit log configured, or the scope step did not run): "
                                "its people are not counted")
        return figures
    listed = manifest.get("files")
    files: dict[str, Any] = listed if isinstance(listed, dict) else {}
    wanted = {file: files.get(f"{scope}/{file}") for file in ("scope.json", "subjects.csv")}
    missing = [file for file, digest in wanted.items() if not isinstance(digest, str)]
    if missing:
        figures.problems.append(f"{scope}/{', '.join(missing)} not in its latest seal {name}: not counted")
        return figures
    figures.scope = {"folder": scope, "files": wanted}
    try:
        for file in wanted:  # never open a link, a pipe or a device in someone's bundle
            if not stat.S_ISREG(os.lstat(folder / scope / file).st_mode):
                raise ValueError(f"{file} is not a regular file")
        data = (folder / scope / "scope.json").read_bytes()
        if hashlib.sha256(data).hexdigest() != wanted["scope.json"]:
            raise _Unsealed("scope.json")
        parsed = strict_json(data)
        total = parsed.get("total") if isinstance(parsed, dict) else None
        if not isinstance(total, dict):
            raise ValueError("scope.json has no total")
        rows = RegionRows()
        for row in csv.DictReader(_sealed_lines(folder / scope / "subjects.csv", str(wanted["subjects.csv"]))):
            categories = [c for c in (row.get("categories") or "").split(";") if c]
            rows.add(hash_bytes(row.get("national_hash") or ""), counter.bits(categories), categories)
    except _Unsealed as exc:
        figures.problems.append(f"{scope}/{exc}: its bytes differ from seal {name} (changed after it was sealed): "
                                "not counted; `tourniquet evidence verify` names it")
        return figures
    except (OSError, ValueError, AttributeError) as exc:
        figures.problems.append(f"{scope}: cannot be read ({exc}): not counted")
        return figures
    counter.add_region(source.name, figures.key_check, rows)
    figures.records = int(total.get("events", 0))
    figures.people = len(rows)
    figures.people_by_category = dict(sorted(rows.by_category.items()))
    figures.without_national_id = len(rows.unmatched)
    if int(total.get("subjects", -1)) != len(rows):
        figures.problems.append(f"scope.json says {total.get('subjects')} people, subjects.csv lists {len(rows)}: "
                                "counted from subjects.csv")
    return figures
