"""The national summary's own evidence folder: its journal, report and seal, and checking it later.

``<evidence_dir of the first site, or --national-dir>/<incident>-national/`` is a bundle like any
other (hash-chained journal, ``report.md``, chain of manifests, anchored in the first site's anchor
log). Its journal records, per run, the resolution across sites, each region's part, the figures
and, per region, the manifest they were computed from (name, SHA-256, root); re-runs read it back
(:func:`earlier_runs`) so a region completed earlier is not run again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from tourniquet.errors import TourniquetError
from tourniquet.evidence import AnchorLog, Finding, Verdict, seal, verify
from tourniquet.evidence.bundle import JOURNAL, MANIFESTS, REPORT, sha256_file
from tourniquet.journal import Journal, read_journal
from tourniquet.national.summary import NationalSummary, render_markdown

__all__ = ["Earlier", "national_incident", "folder_for", "earlier_runs", "write_and_seal", "record_undo",
           "latest_summary", "verify_national", "parts_recorded", "newest_manifest", "SUFFIX"]

log = structlog.get_logger("tourniquet")

SUFFIX = "-national"
_MANIFEST_NAME = re.compile(rf"^{MANIFESTS}/\d{{4,9}}\.json$")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def national_incident(incident: str) -> str:
    """The national summary's own incident id (its folder's name): ``<incident>-national``."""
    return f"{incident}{SUFFIX}"


def folder_for(parent: Path, incident: str) -> Path:
    return Path(parent) / national_incident(incident)


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


def parts_recorded(folder: Path, incident: str) -> dict[str, str]:
    """Regions the national journal says hold a part of the incident (a bundle was started there), with why.

    ``verify`` across sites holds each of them to it: a region listed here whose bundle is gone was
    deleted, not "no part of this incident here". A journal that cannot be read says nothing here
    (verifying the national folder names that problem).
    """
    path = folder / JOURNAL
    if not path.is_file():
        return {}
    recorded: dict[str, str] = {}
    try:
        records = list(read_journal(path))
    except (OSError, ValueError):
        return {}
    for record in records:
        if not isinstance(record, dict) or record.get("incident") != national_incident(incident):
            continue
        parts = record.get("parts") if record.get("type") == "national" else None
        for part in parts if isinstance(parts, list) else ():
            if isinstance(part, dict) and (part.get("journal") or part.get("skipped")):
                accounts = part.get("accounts")
                count = len(accounts) if isinstance(accounts, list) else 0
                recorded[str(part.get("region"))] = f"its part {part.get('status')}, {count} account(s)"
        figures = record.get("figures") if record.get("type") == "national_summary" else None
        regions = figures.get("regions") if isinstance(figures, dict) else None
        for region in regions if isinstance(regions, list) else ():
            if isinstance(region, dict) and isinstance(region.get("seal"), dict):
                recorded.setdefault(str(region.get("region")), f"counted from its seal {region['seal'].get('manifest')}")
    return recorded


def newest_manifest(folder: Path) -> tuple[dict[str, Any], str] | None:
    """The folder's newest manifest and the SHA-256 of its bytes (None: not sealed, or unreadable)."""
    found = sorted(p for p in (folder / MANIFESTS).glob("*.json") if _MANIFEST_NAME.match(f"{MANIFESTS}/{p.name}"))
    if not found:
        return None
    try:
        raw = found[-1].read_bytes()
        manifest = json.loads(raw)
    except (OSError, ValueError):
        return None
    return (manifest, sha256_bytes(raw)) if isinstance(manifest, dict) else None


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
