"""Seal an evidence bundle: the next manifest, its ``sealed`` journal record, its line in the anchor log.

A manifest lists the SHA-256 of every file, pins each append-only file (the journal) by its
length and the digest of that prefix, links to the previous manifest and has a root hash over
all of it. Why a chain rather than one rewritten file: a later run of the incident seals again,
and sealing again must not launder a file edited in between — problems found when sealing are
written into the new manifest and stay visible for ever.

The order is what makes an interrupted seal recognisable: a ``begun`` anchor line announcing the
manifest's root, the manifest (written whole, renamed into place), then the ``sealed`` journal
record naming its root, then the anchor line pinning the journal as it stands after that record.
A seal killed part way is completed by the next one; a manifest no ``begun`` line announced was not
written by a seal, and is never completed.

Nothing is sealed over a journal that does not verify, or over a forged seal (:class:`SealFailed`,
nothing written): a new seal would chain to the edit and pin it as if it were the record.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tourniquet.errors import TourniquetError
from tourniquet.evidence.anchors import AnchorLog
from tourniquet.evidence.bundle import APPEND_ONLY, JOURNAL, MANIFESTS, layout_problem, scan, sha256_file
from tourniquet.evidence.reading import JournalView, read_journal_strictly
from tourniquet.evidence.verify import Verdict, manifest_root, verify
from tourniquet.journal import GENESIS, Journal
from tourniquet.secrets import mask

__all__ = ["seal", "Sealed", "SealFailed"]


class SealFailed(TourniquetError):
    """The bundle could not be sealed (nothing was written, or the first part only: the message says)."""


@dataclass
class Sealed:
    """One seal: the manifest written, what verify found just before it, what was completed."""

    manifest: dict[str, Any]
    before: Verdict
    completed: list[str] = field(default_factory=list)
    anchor: dict[str, Any] | None = None

    @property
    def sequence(self) -> int:
        return int(self.manifest["sequence"])

    @property
    def root(self) -> str:
        return str(self.manifest["root"])

    @property
    def findings(self) -> list[str]:
        return list(self.manifest["findings_at_seal"])


def _journal_state(view: JournalView) -> dict[str, Any]:
    return {"records": view.last[0], "last_hash": view.last[1] if view.count else GENESIS}


def _transient(name: str) -> bool:
    """A temporary file another run of the incident is writing right now: not sealed, gone in a moment."""
    return (layout_problem(name) or "").startswith("a temporary file")


def _pin(path: Path) -> dict[str, Any]:
    """Size and digest of the same bytes: another run may append while this reads, so the size is what was read."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return {"bytes": size, "sha256": digest.hexdigest()}


def _write_whole(target: Path, data: bytes) -> None:
    """Write beside the bundle (never a stray file inside it), fsync, rename into place."""
    temporary = target.parents[2] / f".{target.parent.parent.name}-{target.name}.{uuid.uuid4().hex}.tmp"
    try:
        with temporary.open("xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        target.parent.mkdir(exist_ok=True)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    descriptor = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _journal(folder: Path, incident: str) -> Journal:
    try:
        return Journal(folder / JOURNAL, incident=incident, run="seal", indexed=False)
    except (ValueError, KeyError, TypeError) as exc:
        raise SealFailed(f"{folder / JOURNAL}: its last line is damaged ({exc}): the seal cannot be chained to it; "
                         "`tourniquet evidence verify` names the line") from None


def _anchor(anchors: AnchorLog, incident: str, manifest: dict[str, Any], raw: bytes, folder: Path,
            records: int) -> dict[str, Any]:
    """The anchor line: the journal pinned as it stands just after the seal's own record."""
    return anchors.append("seal", incident, int(manifest["sequence"]), root=manifest["root"],
                          manifest_sha256=hashlib.sha256(raw).hexdigest(),
                          journal={**_pin(folder / JOURNAL), "records": records})


def _complete(folder: Path, incident: str, anchors: AnchorLog, before: Verdict, journal: Journal) -> list[str]:
    """Finish a seal that was interrupted after its manifest was written (verify said which)."""
    incomplete = before.facts.get("incomplete")
    if not incomplete:
        return []
    sequence = int(incomplete["sequence"])
    path = folder / MANIFESTS / f"{sequence:04d}.json"
    raw = path.read_bytes()
    manifest = json.loads(raw)
    if not incomplete["sealed_record"]:
        journal.write("sealed", manifest=f"{MANIFESTS}/{path.name}", sequence=sequence, root=manifest["root"],
                      completed="after an interrupted seal")
    records = read_journal_strictly(folder / JOURNAL, incident).last[0]
    _anchor(anchors, incident, manifest, raw, folder, records)
    return [f"{MANIFESTS}/{path.name}"]


def _refuse_over_a_broken_record(folder: Path, before: Verdict) -> None:
    """No seal over a journal that does not verify, nor over a manifest no seal of Tourniquet's wrote."""
    broken = [str(f) for f in before.findings if f.file == JOURNAL]
    forged = [str(f) for f in before.findings if f.file in before.facts.get("forged", [])]
    if broken or forged:
        shown = [*forged, *broken]
        raise SealFailed(f"refusing to seal {folder}: " + "; ".join(shown[:5])
                         + (f" (and {len(shown) - 5} more)" if len(shown) > 5 else "")
                         + ". Nothing was written: a new seal would pin this as the record. "
                         "`tourniquet evidence verify` lists every problem")


def seal(folder: str | Path, *, incident: str, anchors: AnchorLog, note: str = "") -> Sealed:
    """Write the next manifest of ``folder``, its journal record and its anchor line.

    Problems verify finds first are recorded in the new manifest (``findings_at_seal``); an
    unsealed tail is what this seal covers. Raises :class:`SealFailed` when nothing can be sealed.
    """
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        raise SealFailed(f"no evidence folder {folder}")
    if not (folder / JOURNAL).is_file() or (folder / JOURNAL).is_symlink():
        raise SealFailed(f"{folder} has no journal: not an evidence bundle, nothing sealed")
    with anchors.sealing(incident):
        journal = _journal(folder, incident)  # sets a half-written last line aside first: what is sealed stays
        before = verify(folder, incident=incident, anchors=anchors)
        _refuse_over_a_broken_record(folder, before)
        completed = _complete(folder, incident, anchors, before, journal)
        bundle = scan(folder)
        existing = sorted(bundle.manifests)
        previous = bundle.manifests[existing[-1]].read_bytes() if existing else None
        if completed or "journal_last" not in before.facts:
            state = _journal_state(read_journal_strictly(folder / JOURNAL, incident))
        else:
            state = dict(before.facts["journal_last"])
        files = {name: sha256_file(path) for name, path in bundle.evidence().items()
                 if name not in APPEND_ONLY and not _transient(name)}
        manifest: dict[str, Any] = {
            "version": 2,
            "sequence": (existing[-1] if existing else 0) + 1,
            "incident": incident,
            "sealed_at": datetime.now(timezone.utc).isoformat(),
            "note": mask(note),
            "previous": hashlib.sha256(previous).hexdigest() if previous is not None else GENESIS,
            "journal": state,
            "append_only": {name: _pin(bundle.files[name]) for name in APPEND_ONLY if name in bundle.files},
            "files": files,
            "findings_at_seal": list(dict.fromkeys(mask(str(f)) for f in before.findings)),
            "reviewed": [mask(str(f)) for f in before.unsealed],
        }
        manifest["root"] = manifest_root(manifest)
        raw = (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
        target = folder / MANIFESTS / f"{manifest['sequence']:04d}.json"
        try:
            anchors.append("begun", incident, int(manifest["sequence"]), root=manifest["root"],
                           manifest_sha256=hashlib.sha256(raw).hexdigest())
            _write_whole(target, raw)
        except OSError as exc:
            raise SealFailed(f"cannot write {target}: {exc.strerror or exc}; the bundle is not sealed") from None
        try:
            record = journal.write("sealed", manifest=f"{MANIFESTS}/{target.name}", sequence=manifest["sequence"],
                                   root=manifest["root"])
            anchor = _anchor(anchors, incident, manifest, raw, folder, int(record["seq"]))
        except OSError as exc:
            raise SealFailed(f"manifest {target.name} written, but its journal record or anchor could not be: "
                             f"{exc.strerror or exc}; `tourniquet evidence seal` completes it once the storage "
                             "is writable") from None
    return Sealed(manifest, before, completed, anchor)

