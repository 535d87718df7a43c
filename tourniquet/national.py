"""The national summary of an incident across regions, sealed over the regional evidence bundles.

Each region is its own data controller, with its own bundle, Art. 33 draft and figures. The national
level needs one figure the regions cannot give: how many people in total, each counted once — a
patient treated in two regions is in both regions' scopes. The summary reads each region's *sealed*
scope (``scope.json`` and ``subjects.csv`` of its latest scope folder, whose SHA-256 must equal the
ones its latest manifest lists) and counts people:

- **once across regions** when the subject tables share a national identifier (INS / NIR,
  ``audit.subjects.national_id`` per site): compared by the keyed hash each region wrote
  (``national_hash``), never the identifier; the hashes of two regions are comparable only when their
  keys are the same, which a *key check* (the keyed hash of a fixed text, not of anyone's identifier)
  shows without revealing the key;
- otherwise once per region where seen: the total is then an **upper bound**, and says so.

It lives in its own small evidence folder, ``<evidence_dir of the first site, or --national-dir>/
<incident>-national/``: a hash-chained journal (the resolution across sites, each region's part, the
figures, and for each region the manifest it was computed from: name, SHA-256 and root), ``report.md``
and the chain of manifests, sealed and anchored in the first site's anchor log like any bundle. What
it proves: these figures were computed from exactly these sealed regional bundles, and neither has
changed since (:func:`verify_national` checks both sides).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import os
import re
import stat
from array import array
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import structlog

from tourniquet.config import SiteConfig
from tourniquet.errors import TourniquetError
from tourniquet.evidence import AnchorLog, Finding, Verdict, seal, verify
from tourniquet.evidence.bundle import JOURNAL, MANIFESTS, REPORT, sha256_file, strict_json
from tourniquet.journal import Journal, read_journal
from tourniquet.secrets import mask

__all__ = ["NationalSummary", "RegionFigures", "RegionSource", "Earlier", "national_incident", "folder_for",
           "earlier_runs", "summarise", "PeopleCounter", "render_markdown", "write_and_seal", "verify_national",
           "key_check", "NO_ACCOUNT", "record_undo", "latest_summary", "SUFFIX", "KEY_CHECK_TEXT"]

log = structlog.get_logger("tourniquet")

SUFFIX = "-national"
#: Hashed under a region's national-id key, it shows whether two regions share the key (and nothing else).
KEY_CHECK_TEXT = b"tourniquet: national identifier key check"
_MANIFEST_NAME = re.compile(rf"^{MANIFESTS}/\d{{4,9}}\.json$")
_SCOPE_FOLDER = re.compile(r"^scope/[^/.][^/]*$")
#: How the report orders the categories it has (any other after them, alphabetically).
CATEGORY_ORDER = ("identity", "contact", "social_security_number", "health")
#: A region none of the incident's ids named: listed, not counted, not missing.
NO_ACCOUNT = "no account of this incident"


def national_incident(incident: str) -> str:
    """The national summary's own incident id (its folder's name): ``<incident>-national``."""
    return f"{incident}{SUFFIX}"


def folder_for(parent: Path, incident: str) -> Path:
    return Path(parent) / national_incident(incident)


def key_check(config: SiteConfig) -> str | None:
    """The keyed hash of a fixed text under the site's national-id key: equal on two sites iff their keys are."""
    audit = config.audit
    if audit is None or audit.subjects is None or audit.subjects.national_id is None or audit.national_id_key is None:
        return None
    key = audit.national_id_key.get().encode("utf-8")
    return hmac.new(key, KEY_CHECK_TEXT, hashlib.sha256).hexdigest()[:16]


# --------------------------------------------------------------------------- what earlier runs did


@dataclass
class Earlier:
    """From the national journal: where earlier runs put each id, and which regions' parts completed."""

    assigned: dict[str, str] = field(default_factory=dict)
    completed: dict[str, list[str]] = field(default_factory=dict)


def earlier_runs(folder: Path, incident: str) -> Earlier:
    """Read the national journal of the incident (nothing yet: nothing earlier)."""
    earlier = Earlier()
    path = folder / JOURNAL
    if not path.is_file():
        return earlier
    try:
        records = list(read_journal(path))
    except (OSError, ValueError) as exc:
        raise TourniquetError(f"{path}: the national journal cannot be read ({exc}): nothing was run; "
                              "`tourniquet evidence verify` with the same sites names the problem") from None
    for record in records:
        if not isinstance(record, dict) or record.get("incident") != national_incident(incident):
            continue
        if record.get("type") == "national":
            resolution = record.get("resolution")
            assigned = resolution.get("parts") if isinstance(resolution, dict) else None
            for region, accounts in (assigned.items() if isinstance(assigned, dict) else ()):
                for identifier in accounts if isinstance(accounts, list) else ():
                    earlier.assigned.setdefault(str(identifier), str(region))
            parts = record.get("parts")
            for part in parts if isinstance(parts, list) else ():
                if not isinstance(part, dict):
                    continue
                region = str(part.get("region"))
                ids = part.get("ids")
                if part.get("status") == "completed" and isinstance(ids, list):
                    earlier.completed[region] = [str(i) for i in ids]
                else:
                    earlier.completed.pop(region, None)
        elif record.get("type") == "national_undo" and isinstance(record.get("regions"), list):
            for region in record["regions"]:
                earlier.completed.pop(str(region), None)
    return earlier


# --------------------------------------------------------------------------- reading the regional bundles


@dataclass
class RegionSource:
    """A region as the run across sites left it: its site, how its part ended, its accounts."""

    name: str
    config: SiteConfig
    status: str
    accounts: list[str] = field(default_factory=list)


@dataclass
class RegionFigures:
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


@dataclass
class NationalSummary:
    incident: str
    regions: list[RegionFigures]
    accounts: int = 0
    records: int = 0
    people: int = 0
    people_by_category: dict[str, int] = field(default_factory=dict)
    in_several_regions: int = 0
    at_least: int = 0
    #: every person counted once (all of them carry a national identifier hashed under one key)
    exact: bool = False
    #: every region of the incident counted
    complete: bool = False
    explanation: str = ""

    def as_record(self) -> dict[str, Any]:
        return asdict(self)


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


def _read_region(source: RegionSource, incident: str, counter: "PeopleCounter") -> RegionFigures:
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
            rows.add(_hash_bytes(row.get("national_hash") or ""), counter.bits(categories), categories)
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


# --------------------------------------------------------------------------- counting people once


class PeopleCounter:
    """People across regions: once per (key check, national hash) when they have one, else once per region.

    Memory, for millions of people: per person matched, its 32-byte hash and one integer (category bits in
    the low 32 bits, region bits above); per person without a hash, 4 bytes. A region's rows are added only
    once its files were read whole and found sealed (:class:`RegionRows`, about 36 bytes a person).
    """

    SHIFT = 32

    def __init__(self) -> None:
        self.categories: list[str] = []
        #: key check → hash → category bits | region bits << SHIFT
        self.people: dict[str, dict[bytes, int]] = {}
        #: category bits of each person without a usable hash, per region
        self.unmatched: dict[str, array[int]] = {}
        self.regions: list[str] = []

    @property
    def keys(self) -> set[str]:
        return set(self.people)

    def bits(self, categories: Sequence[str]) -> int:
        value = 0
        for category in categories:
            if category not in self.categories:
                if len(self.categories) == self.SHIFT:
                    raise ValueError(f"more than {self.SHIFT} data categories")
                self.categories.append(category)
            value |= 1 << self.categories.index(category)
        return value

    def add_region(self, name: str, key: str | None, rows: "RegionRows") -> None:
        index = len(self.regions)
        self.regions.append(name)
        region_bit = 1 << (self.SHIFT + index)
        unmatched = self.unmatched.setdefault(name, array("I"))
        unmatched.extend(rows.unmatched)
        if key is None:  # no key: nothing it hashed can be matched with anyone
            unmatched.extend(rows.bits)
            return
        people = self.people.setdefault(key, {})
        digests = rows.digests
        for position, bits in enumerate(rows.bits):
            digest = bytes(digests[32 * position:32 * position + 32])
            people[digest] = people.get(digest, 0) | bits | region_bit

    def largest_group(self) -> int:
        """The most people matched under one key: distinct people for sure (a lower bound of the total)."""
        return max((len(people) for people in self.people.values()), default=0)

    def totals(self) -> tuple[int, dict[str, int], int, int]:
        """(people, people per category, people seen in several regions, people without a usable hash)."""
        counts = [0] * len(self.categories)
        several = matched = unmatched = 0
        low = (1 << self.SHIFT) - 1

        def add(bits: int, people: int) -> None:
            for index in range(len(counts)):
                if bits >> index & 1:
                    counts[index] += people

        for group in self.people.values():
            matched += len(group)
            for value, people in Counter(group.values()).items():  # few distinct values: counted in C
                regions = value >> self.SHIFT
                several += people if regions & (regions - 1) else 0
                add(value & low, people)
        for bits_of in self.unmatched.values():
            unmatched += len(bits_of)
            for bits, people in Counter(bits_of).items():
                add(bits, people)
        by_category = {category: counts[i] for i, category in enumerate(self.categories) if counts[i]}
        return matched + unmatched, dict(sorted(by_category.items())), several, unmatched


class RegionRows:
    """One region's people as read from its subjects.csv, compactly, until the file is known to be the sealed one."""

    def __init__(self) -> None:
        self.digests = bytearray()
        self.bits = array("I")
        self.unmatched = array("I")
        self.by_category: dict[str, int] = {}

    def add(self, digest: bytes | None, bits: int, categories: Sequence[str]) -> None:
        for category in categories:
            self.by_category[category] = self.by_category.get(category, 0) + 1
        if digest is None:
            self.unmatched.append(bits)
        else:
            self.digests += digest
            self.bits.append(bits)

    def __len__(self) -> int:
        return len(self.bits) + len(self.unmatched)


def _hash_bytes(text: str) -> bytes | None:
    if len(text) != 64:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def summarise(incident: str, sources: Sequence[RegionSource]) -> NationalSummary:
    """Read each region's sealed scope and count: per region, and nationally with each person once."""
    counter = PeopleCounter()
    regions = [_read_region(source, incident, counter) for source in sources]
    people, by_category, several, unmatched = counter.totals()
    counted = [r for r in regions if r.counted]
    summary = NationalSummary(incident=incident, regions=regions, people=people, people_by_category=by_category,
                              in_several_regions=several,
                              accounts=sum(len(r.accounts) for r in regions),
                              records=sum(r.records or 0 for r in counted),
                              at_least=max([r.people or 0 for r in counted] + [counter.largest_group()]))
    summary.exact = unmatched == 0 and len(counter.keys) <= 1
    summary.complete = bool(counted) and all(r.counted for r in regions if r.status != NO_ACCOUNT)
    summary.explanation = _explain(summary, counter, unmatched)
    log.info("national.summary", people=people, exact=summary.exact, complete=summary.complete,
             in_several_regions=several)
    return summary


def _explain(summary: NationalSummary, counter: PeopleCounter, unmatched: int) -> str:
    words = []
    if summary.exact:
        fields = sorted({r.national_id for r in summary.regions if r.counted and r.national_id})
        words.append(f"each person counted once across regions (by keyed hash of {', '.join(fields) or 'the national id'})")
    else:
        reasons = []
        if unmatched:
            reasons.append(f"{unmatched} without a national identifier in their region's record (or in a region "
                           "that has none configured), counted once per region where seen")
        if len(counter.keys) > 1:
            reasons.append("the regions hash the national identifier under different keys, so their people cannot "
                           "be matched")
        words.append(f"an upper bound: at most {summary.people} people, at least {summary.at_least}; "
                     + "; ".join(reasons))
    missing = [f"{r.region} ({r.status}{': ' + r.problems[0] if r.problems else ''})"
               for r in summary.regions if not r.counted and r.status != NO_ACCOUNT]
    if missing:
        words.append(f"incomplete: not counted: {'; '.join(missing)}")
    return "; ".join(words)


# --------------------------------------------------------------------------- writing and sealing


def render_markdown(summary: NationalSummary, *, status: str, problems: Sequence[str] = ()) -> str:
    """The national summary as the ministry's delegate reads it: regions, people, and what proves it."""
    seen = {c for r in summary.regions for c in r.people_by_category} | set(summary.people_by_category)
    categories = [c for c in CATEGORY_ORDER if c in seen] + sorted(seen - set(CATEGORY_ORDER))
    lines = [f"# Incident {summary.incident}: national summary", "",
             f"Status across {len(summary.regions)} regions: **{status}**.", "",
             "| region | status | accounts | records | people | " + " | ".join(categories) + " | sealed as |",
             "|---|---|---|---|---|" + "---|" * len(categories) + "---|"]
    for region in summary.regions:
        cells = [str(region.people_by_category.get(c, 0)) if region.counted else "—" for c in categories]
        root = f"{region.seal['manifest']} `{str(region.seal['root'])[:16]}…`" if region.seal else "—"
        lines.append(f"| {_cell(region.region)} | {_cell(region.status)} | {len(region.accounts)} | "
                     f"{region.records if region.counted else '—'} | {region.people if region.counted else '—'} | "
                     + " | ".join(cells) + f" | {root} |")
    total = [str(summary.people_by_category.get(c, 0)) for c in categories]
    people = str(summary.people) if summary.exact else f"at most {summary.people}"
    lines += [f"| **nation** | | {summary.accounts} | {summary.records} | **{people}** | " + " | ".join(total) + " | |",
              "", f"People: {summary.explanation}.",
              f"People seen in more than one region (counted once): {summary.in_several_regions}.", ""]
    if problems:
        lines += ["## Not done", ""] + [f"- {p}" for p in problems] + [""]
    noted = [(r.region, p) for r in summary.regions for p in r.problems]
    if noted:
        lines += ["## Regions' bundles", ""] + [f"- {region}: {p}" for region, p in noted] + [""]
    lines += ["## What this proves", "",
              "Each region's figures are read from its own sealed evidence bundle: the scope files counted here "
              "(`scope.json`, `subjects.csv`) have the SHA-256 its latest manifest lists, and this summary's journal "
              "records that manifest's name, SHA-256 and root. `tourniquet evidence verify` with the same sites "
              "checks this folder and that each regional seal is still there, unchanged. People are compared by the "
              "keyed hash each region wrote, never by their national identifier, which appears nowhere here.", ""]
    for region in summary.regions:
        if region.seal:
            lines.append(f"- {region.region}: `{region.evidence}` {region.seal['manifest']}, root `{region.seal['root']}`")
    return mask("\n".join(lines) + "\n")


def _cell(text: str) -> str:
    """Text for a Markdown table cell: a '|' or a line break in a name would break the table."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def write_and_seal(folder: Path, incident: str, summary: NationalSummary, *, resolution: Mapping[str, Any],
                   parts: Sequence[Mapping[str, Any]], status: str, problems: Sequence[str],
                   anchors_dir: Path) -> str:
    """Journal this run's resolution, parts and figures, write the report, seal: the root."""
    name = national_incident(incident)
    folder.mkdir(parents=True, exist_ok=True)
    journal = Journal(folder / JOURNAL, incident=name, run="national")
    journal.write("national", status=status, resolution=dict(resolution), parts=list(parts), problems=list(problems))
    journal.write("national_summary", figures=summary.as_record())
    (folder / REPORT).write_text(render_markdown(summary, status=status, problems=problems), encoding="utf-8")
    sealed = seal(folder, incident=name, anchors=AnchorLog(anchors_dir), note=f"national summary: {status}")
    log.info("national.sealed", folder=str(folder), root=sealed.root)
    return sealed.root


def record_undo(folder: Path, incident: str, results: Mapping[str, str], *, anchors_dir: Path) -> str | None:
    """An undo across sites: its outcome per region in the national journal, sealed (no summary folder: nothing)."""
    if not (folder / JOURNAL).is_file():
        return None
    name = national_incident(incident)
    journal = Journal(folder / JOURNAL, incident=name, run="undo")
    journal.write("national_undo", regions=sorted(results), results=dict(results))
    return seal(folder, incident=name, anchors=AnchorLog(anchors_dir), note="undo across sites").root


def latest_summary(folder: Path) -> dict[str, Any] | None:
    """The figures of the latest national summary in the folder's journal (None: there is none)."""
    path = folder / JOURNAL
    if not path.is_file():
        return None
    latest = None
    for record in read_journal(path):
        if isinstance(record, dict) and record.get("type") == "national_summary" and isinstance(record.get("figures"), dict):
            latest = record["figures"]
    return latest


def verify_national(folder: Path, incident: str, *, anchors_dir: Path,
                    regional: Mapping[str, Path]) -> Verdict:
    """The national folder as a bundle, and each regional manifest its latest summary was computed from."""
    verdict = verify(folder, incident=national_incident(incident), anchors=AnchorLog(anchors_dir))
    if verdict.facts.get("missing"):
        return verdict
    try:
        latest = latest_summary(folder)
    except (OSError, ValueError) as exc:
        verdict.findings.append(Finding(JOURNAL, f"cannot be read: {exc}"))
        return verdict
    if latest is None:
        verdict.findings.append(Finding(JOURNAL, "has no national summary"))
        return verdict
    regions = latest.get("regions")
    for region in regions if isinstance(regions, list) else ():
        seal_of = region.get("seal") if isinstance(region, dict) else None
        if not isinstance(seal_of, dict):
            continue
        name = str(region.get("region"))
        bundle = regional.get(name)
        if bundle is None:
            verdict.notes.append(f"{name}: not checked (its site was not given)")
            continue
        if not _MANIFEST_NAME.match(str(seal_of.get("manifest"))):  # never open a path the journal makes up
            verdict.findings.append(Finding(JOURNAL, f"{name}: names {str(seal_of.get('manifest'))[:80]!r}, not a "
                                                     "regional manifest"))
            continue
        manifest = bundle / str(seal_of.get("manifest"))
        try:
            if manifest.is_symlink() or not manifest.is_file():
                raise FileNotFoundError(manifest)
            digest = sha256_file(manifest)
        except OSError:
            verdict.findings.append(Finding(f"{name}: {manifest}", "the regional seal this summary was computed from "
                                                                   "is gone"))
            continue
        if digest != seal_of.get("sha256"):
            verdict.findings.append(Finding(f"{name}: {manifest}", "differs from the regional seal this summary was "
                                                                   f"computed from (root {seal_of.get('root')})"))
        else:
            try:
                root = json.loads(manifest.read_bytes()).get("root")
            except (OSError, ValueError):
                root = None
            if root != seal_of.get("root"):
                verdict.findings.append(Finding(f"{name}: {manifest}", "root differs from the one recorded"))
    return verdict

