"""Verify an evidence bundle: every problem named, with the file at fault.

Three outcomes (:attr:`Verdict.exit_code`):

- **intact** (0): every manifest chains to the one before and matches the folder; every seal
  has its ``sealed`` journal record and its line in the anchor log; nothing was added.
- **tampered** (1): anything that changes what the bundle says — a changed, removed, added or
  unknown file, a link or folder that Tourniquet does not write, an edited, removed or reordered
  journal line, JSON with duplicate keys, a manifest or journal naming another incident, a
  manifest missing, edited or not anchored, a journal shorter than an anchored seal.
- a manifest (and ``sealed`` record) that looks like an interrupted seal but that no ``begun``
  anchor line announced is **forged**: tampered, naming it, the record and the records it alone seals.
- **not sealed** (3): journal records after the last seal — a run that did not finish (killed,
  crashed) or records appended by someone else. Nobody can tell which from the folder alone: a
  person reads them (they are listed), then ``tourniquet evidence seal`` seals them, or not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tourniquet.evidence.anchors import AnchorEntries, AnchorLog
from tourniquet.evidence.bundle import (
    APPEND_ONLY,
    JOURNAL,
    MAX_MANIFEST_BYTES,
    REGENERATED,
    REPORT,
    TORN,
    Finding,
    canonical,
    layout_problem,
    manifest_name,
    prefix_digests,
    scan,
    sha256_file,
    strict_json,
)
from tourniquet.evidence.reading import JournalView, read_journal_strictly, strict_int
from tourniquet.journal import GENESIS

__all__ = ["Verdict", "verify", "manifest_root", "INTACT", "TAMPERED", "NOT_SEALED"]

INTACT, TAMPERED, NOT_SEALED = 0, 1, 3


def manifest_root(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in manifest.items() if k != "root"})).hexdigest()


@dataclass
class Verdict:
    """What verify found: tampering, an unsealed tail, notes, and facts about the bundle."""

    incident: str
    findings: list[Finding] = field(default_factory=list)
    unsealed: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    #: the manifests that passed their own checks, by sequence
    manifests: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return TAMPERED if self.findings else NOT_SEALED if self.unsealed else INTACT

    @property
    def intact(self) -> bool:
        return self.exit_code == INTACT


_MANIFEST_FIELDS: dict[str, type | tuple[type, ...]] = {
    "version": int, "sequence": int, "incident": str, "sealed_at": str, "note": str, "previous": str,
    "journal": dict, "append_only": dict, "files": dict, "findings_at_seal": list, "root": str,
}


def _load_manifest(path: Path, label: str, sequence: int, incident: str) -> tuple[bytes, dict[str, Any] | None,
                                                                                  list[Finding]]:
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            return b"", None, [Finding(label, f"larger than {MAX_MANIFEST_BYTES} bytes: not a manifest")]
        raw = path.read_bytes()
    except OSError as exc:
        return b"", None, [Finding(label, f"cannot be read: {exc.strerror or exc}")]
    try:
        manifest = strict_json(raw)
    except ValueError as exc:
        return raw, None, [Finding(label, f"not a manifest: {exc}")]
    if not isinstance(manifest, dict):
        return raw, None, [Finding(label, "not a manifest: not a JSON object")]
    findings = []
    for name, kind in _MANIFEST_FIELDS.items():
        if not isinstance(manifest.get(name), kind) or isinstance(manifest.get(name), bool):
            findings.append(Finding(label, f"field {name!r} missing or not a {getattr(kind, '__name__', kind)}"))
    if findings:
        return raw, None, findings
    if manifest["version"] != 2:
        findings.append(Finding(label, f"manifest version {manifest['version']} is not one this Tourniquet writes"))
    if manifest["sequence"] != sequence:
        findings.append(Finding(label, f"says it is seal {manifest['sequence']}, but is named as seal {sequence}"))
    if manifest["incident"] != incident:
        findings.append(Finding(label, f"names incident {manifest['incident']!r}, not {incident!r} "
                                       "(a bundle of another incident?)"))
    if manifest["root"] != manifest_root(manifest):
        findings.append(Finding(label, "content does not match its root hash (manifest edited)"))
    journal = manifest["journal"]
    if strict_int(journal.get("records")) is None or not isinstance(journal.get("last_hash"), str):
        findings.append(Finding(label, "its journal section is malformed"))
    for name, pin in manifest["append_only"].items():
        if not isinstance(pin, dict) or strict_int(pin.get("bytes")) is None or not isinstance(pin.get("sha256"), str):
            findings.append(Finding(label, f"its pin of {name} is malformed"))
    if not all(isinstance(v, str) for v in manifest["files"].values()):
        findings.append(Finding(label, "its file list is malformed"))
    return raw, manifest if not findings else None, findings


class _Verifier:
    def __init__(self, folder: Path, incident: str, anchors: AnchorLog | None) -> None:
        self.folder = folder
        self.incident = incident
        self.anchors = anchors
        self.verdict = Verdict(incident)
        self.tampered = self.verdict.findings
        self.unsealed = self.verdict.unsealed

    # -- the steps

    def run(self) -> Verdict:
        facts = self.verdict.facts
        facts.update(manifests=0, root=None, journal_records=0, unsealed_records=0, anchored=0, incomplete=None,
                     anchor_log=str(self.anchors) if self.anchors is not None else None, tickets={})
        if not self.folder.is_dir() or self.folder.is_symlink():
            entries = self.anchors.read(self.incident) if self.anchors is not None else AnchorEntries()
            if entries.seals:
                self.tampered.append(Finding(str(self.folder), f"removed: the anchor log pins {len(entries.seals)} "
                                                               "seal(s) of this incident"))
            else:
                facts["missing"] = True
                self.tampered.append(Finding(str(self.folder), "no such evidence folder"))
            return self.verdict
        self.bundle = scan(self.folder)
        self.tampered.extend(self.bundle.strays)
        self.entries = self.anchors.read(self.incident) if self.anchors is not None else AnchorEntries()
        self.tampered.extend(self.entries.problems)
        manifests = self._manifests()
        self.journal = self._journal(after=manifests[-1][1]["journal"]["records"] if manifests else 0,
                                     sealed_sequence=manifests[-1][1]["sequence"] if manifests else None)
        self._sealed_records(manifests)
        self._anchored(manifests)
        self._pins(manifests)
        self._folder_now(manifests)
        self.verdict.manifests = {manifest["sequence"]: manifest for _, manifest, _ in manifests}
        facts["manifests"] = len(manifests)
        facts["root"] = manifests[-1][1]["root"] if manifests else None
        facts["anchored"] = len(self.entries.seals)
        facts["tickets"] = {k: v[-1] for k, v in self.entries.tickets.items()}
        if self.anchors is None:
            self.verdict.notes.append("not checked against an anchor log")
        self.verdict.findings[:] = list(dict.fromkeys(self.tampered))
        self.verdict.unsealed[:] = list(dict.fromkeys(self.unsealed))
        return self.verdict

    def _journal(self, *, after: int, sealed_sequence: int | None) -> JournalView:
        path = self.bundle.files.get(JOURNAL)
        if path is None:
            return JournalView(readable=False)
        view = read_journal_strictly(path, self.incident, after=after, sealed_sequence=sealed_sequence)
        self.verdict.facts["journal_last"] = {"records": view.last[0], "last_hash": view.last[1]}
        self.tampered.extend(view.problems)
        if view.readable:
            if view.chain_break is None:
                self.verdict.facts["journal_records"] = view.chained
            elif view.chain_break[0] != view.torn_line:
                line, reason = view.chain_break
                self.tampered.append(Finding(JOURNAL, f"line {line}: {reason}"))
            else:
                self.verdict.facts["journal_records"] = view.count
        if view.torn_line is not None:
            self.unsealed.append(Finding(JOURNAL, f"line {view.torn_line}: incomplete (a write was interrupted; "
                                                  "the journal sets it aside the next time it is opened)"))
        return view

    def _manifests(self) -> list[tuple[str, dict[str, Any], bytes]]:
        """The chain of valid manifests, oldest first, each checked against the one before."""
        numbers = sorted(self.bundle.manifests)
        chain: list[tuple[str, dict[str, Any], bytes]] = []
        previous_hash, previous = GENESIS, None
        for position, number in enumerate(numbers, start=1):
            label = manifest_name(number)
            if number != position:
                self.tampered.append(Finding(label, f"seal {number} follows seal {position - 1}: "
                                                    f"{manifest_name(position)} is missing"))
            raw, manifest, problems = _load_manifest(self.bundle.manifests[number], label, number, self.incident)
            self.tampered.extend(problems)
            digest = hashlib.sha256(raw).hexdigest()
            if manifest is None:
                previous_hash, previous = digest, None
                continue
            if manifest["previous"] != previous_hash:
                self.tampered.append(Finding(label, "does not follow the previous manifest (one was removed, "
                                                    "added or edited)"))
            self.tampered.extend(Finding(label, f"recorded when sealed: {text}")
                                 for text in manifest["findings_at_seal"] if isinstance(text, str))
            if previous is not None:
                self._between(previous, manifest, label)
            chain.append((label, manifest, raw))
            previous_hash, previous = digest, manifest
        return chain

    def _between(self, older: dict[str, Any], newer: dict[str, Any], label: str) -> None:
        """A file sealed earlier is in every later seal, unchanged (but the report); the journal only grows."""
        later = newer["files"]
        for name, digest in older["files"].items():
            if name not in later:
                self.tampered.append(Finding(name, f"sealed earlier, missing from {label}"))
            elif later[name] != digest and name not in REGENERATED:
                self.tampered.append(Finding(name, f"sealed earlier, changed by the time of {label}"))
        for name, pin in older["append_only"].items():
            newer_pin = newer["append_only"].get(name)
            if newer_pin is None or newer_pin["bytes"] < pin["bytes"]:
                self.tampered.append(Finding(name, f"shorter in {label} than when sealed before"))
        if newer["journal"]["records"] < older["journal"]["records"]:
            self.tampered.append(Finding(JOURNAL, f"fewer records in {label} than when sealed before"))

    def _sealed_records(self, manifests: list[tuple[str, dict[str, Any], bytes]]) -> None:
        """Each seal wrote a ``sealed`` journal record after the records it sealed, naming its root."""
        sealed: dict[int, list[tuple[int, dict[str, Any]]]] = {}
        for line, record in self.journal.sealed:
            if record.get("type") == "sealed":
                sequence = strict_int(record.get("sequence"))
                if sequence is None:
                    self.tampered.append(Finding(JOURNAL, f"line {line}: a 'sealed' record without a sequence"))
                    continue
                sealed.setdefault(sequence, []).append((line, record))
        known = {manifest["sequence"]: manifest for _, manifest, _ in manifests}
        names = set(self.bundle.manifests)
        for sequence, found in sorted(sealed.items()):
            if sequence not in names:
                self.tampered.append(Finding(manifest_name(sequence), f"missing, though journal line {found[0][0]} "
                                                                      "says it was sealed"))
            if len(found) > 1:
                self.tampered.append(Finding(JOURNAL, f"lines {', '.join(str(n) for n, _ in found)}: "
                                                      f"several 'sealed' records for seal {sequence}"))
        seqs = sorted(known)
        for index, sequence in enumerate(seqs):
            manifest, label = known[sequence], manifest_name(sequence)
            after = manifest["journal"]["records"]
            before = known[seqs[index + 1]]["journal"]["records"] if index + 1 < len(seqs) else None
            records = sealed.get(sequence, [])
            if not records:
                newest = index + 1 == len(seqs)
                if newest and sequence not in self.entries.seals:
                    self._incomplete(sequence, manifest, sealed_record=False)
                else:
                    self.tampered.append(Finding(JOURNAL, f"the 'sealed' record of {label} is missing "
                                                          "(removed from the journal)"))
                continue
            line, record = records[0]
            seq = strict_int(record.get("seq")) or 0
            if record.get("root") != manifest["root"]:
                self.tampered.append(Finding(label, f"root differs from the one journal line {line} recorded"))
            if seq <= after or (before is not None and seq > before):
                self.tampered.append(Finding(JOURNAL, f"line {line}: the 'sealed' record of {label} is out of place"))

    def _incomplete(self, sequence: int, manifest: dict[str, Any], *, sealed_record: bool) -> None:
        if self.anchors is not None and not self._announced(sequence, manifest):
            self._forged(sequence, manifest)
            return
        facts = self.verdict.facts
        facts["incomplete"] = {"sequence": sequence, "root": manifest["root"], "sealed_record": sealed_record}
        what = "its anchor" if sealed_record else "its 'sealed' journal record and its anchor"
        self.unsealed.append(Finding(manifest_name(sequence), f"the seal was interrupted before {what} were "
                                                              "written; `evidence seal` completes it"))

    def _announced(self, sequence: int, manifest: dict[str, Any]) -> bool:
        """A seal of Tourniquet's wrote a ``begun`` anchor line with this root before it wrote the manifest."""
        raw = self.bundle.manifests[sequence].read_bytes() if sequence in self.bundle.manifests else b""
        return any(entry.get("root") == manifest["root"]
                   and entry.get("manifest_sha256") == hashlib.sha256(raw).hexdigest()
                   for entry in self.entries.begun.get(sequence, []))

    def _forged(self, sequence: int, manifest: dict[str, Any]) -> None:
        """A manifest made to look like an interrupted seal: named, with its record and what it alone seals."""
        label = manifest_name(sequence)
        self.verdict.facts.setdefault("forged", []).extend([label, JOURNAL])
        self.tampered.append(Finding(label, f"not anchored, and the anchor log {self.anchors} never saw a seal "
                                            f"{sequence} begin: not written by `evidence seal` (forged), not an "
                                            "interrupted seal"))
        for line, record in self.journal.sealed:
            if record.get("type") == "sealed" and strict_int(record.get("sequence")) == sequence:
                self.tampered.append(Finding(JOURNAL, f"line {line}: the 'sealed' record of {label} is forged (no "
                                                      "seal of that root was ever begun)"))
        anchored = [strict_int((entries[0].get("journal") or {}).get("records")) or 0
                    for number, entries in self.entries.seals.items() if number < sequence]
        first, covered = max(anchored, default=0) + 1, manifest["journal"]["records"]
        if covered >= first:
            where = f"record {first}" if first == covered else f"records {first}-{covered}"
            self.tampered.append(Finding(JOURNAL, f"{where}: sealed only by the forged {label} (added by hand?): "
                                                  "review them"))

    def _anchored(self, manifests: list[tuple[str, dict[str, Any], bytes]]) -> None:
        """Each seal is in the anchor log with the same root, and the log names no seal the folder lacks."""
        if self.anchors is None:
            return
        known = {manifest["sequence"]: (label, manifest, raw) for label, manifest, raw in manifests}
        if not self.entries.exists and (manifests or self.bundle.manifests):
            self.tampered.append(Finding(str(self.anchors), "missing: no seal of this incident is anchored "
                                                            "outside the folder"))
            return
        for sequence, entries in sorted(self.entries.seals.items()):
            label = manifest_name(sequence)
            if len(entries) > 1:
                self.tampered.append(Finding(str(self.anchors), f"lines {', '.join(str(e['line']) for e in entries)}:"
                                                                f" several anchors for seal {sequence}"))
            entry = entries[0]
            if sequence not in self.bundle.manifests:
                self.tampered.append(Finding(label, f"missing: the anchor log (line {entry['line']}) pins seal "
                                                    f"{sequence} with root {entry.get('root')}"))
            elif sequence in known:
                _, manifest, raw = known[sequence]
                if entry.get("root") != manifest["root"] or entry.get("manifest_sha256") != hashlib.sha256(raw).hexdigest():
                    self.tampered.append(Finding(label, f"differs from the seal the anchor log pins (line "
                                                        f"{entry['line']}: root {entry.get('root')})"))
        newest = max(known) if known else None
        for sequence, (label, manifest, _) in sorted(known.items()):
            if sequence in self.entries.seals:
                continue
            if sequence == newest and self.verdict.facts.get("incomplete") is None:
                self._incomplete(sequence, manifest, sealed_record=True)
            elif sequence != newest:
                self.tampered.append(Finding(label, f"not in the anchor log {self.anchors}: sealed without "
                                                    "anchoring, or forged"))

    def _pins(self, manifests: list[tuple[str, dict[str, Any], bytes]]) -> None:
        """The append-only files still begin with every prefix a seal or an anchor pinned."""
        pins: dict[str, list[tuple[int, str, str]]] = {}
        for label, manifest, _ in manifests:
            for name, pin in manifest["append_only"].items():
                pins.setdefault(name, []).append((pin["bytes"], pin["sha256"], f"sealed in {label}"))
        for sequence, entries in self.entries.seals.items():
            journal = entries[0].get("journal")
            if isinstance(journal, dict) and strict_int(journal.get("bytes")) is not None:
                pins.setdefault(JOURNAL, []).append((journal["bytes"], str(journal.get("sha256")),
                                                     f"pinned by seal {sequence} in the anchor log"))
        for name, wanted in pins.items():
            path = self.bundle.files.get(name)
            if path is None:
                self.tampered.append(Finding(name, f"removed after it was sealed ({wanted[-1][2]})"))
                continue
            size = path.stat().st_size
            digests = prefix_digests(path, [length for length, _, _ in wanted])
            shorter = [(length, where) for length, _, where in wanted if length > size]
            changed = sorted((length, where) for length, digest, where in wanted
                             if length <= size and digests.get(length) != digest)
            if shorter:  # the longest pin says the most; the earliest changed prefix says where it starts
                length, where = max(shorter)
                self.tampered.append(Finding(name, f"{size} bytes: shorter than the {length} bytes {where} "
                                                   "(records removed)"))
            if changed:
                length, where = changed[0]
                self.tampered.append(Finding(name, f"its first {length} bytes, {where}, were changed"
                                                   + (f" (and {len(changed) - 1} later pin(s))" if len(changed) > 1
                                                      else "")))

    def _folder_now(self, manifests: list[tuple[str, dict[str, Any], bytes]]) -> None:
        """The folder now against the newest manifest; what came after it is the unsealed tail."""
        evidence = self.bundle.evidence()
        newest = manifests[-1][1] if manifests else None
        sealed_files: dict[str, str] = dict(newest["files"]) if newest else {}
        sealed_append_only = set(newest["append_only"]) if newest else set()
        tail = self.journal.tail  # the records after the newest seal (but that seal's own record)
        self.verdict.facts["unsealed_records"] = tail.count
        if tail.count and not manifests and not self.bundle.manifests and not self.entries.seals:
            self.unsealed.append(Finding(JOURNAL, f"{tail.count} record(s), never sealed: the run did not finish "
                                                  "(killed, crashed?) — review them"))
        elif tail.count:
            first, last = tail.first_line, tail.last_line
            where = f"line {first}" if first == last else f"lines {first}-{last}"
            self.unsealed.append(Finding(JOURNAL, f"{where}: {tail.count} record(s) after the last seal (types: "
                                                  f"{', '.join(sorted(tail.types))}; run "
                                                  f"{', '.join(sorted(tail.runs)) or '?'}) — a run that "
                                                  "did not finish, or records added by hand: review them"))
        elif not manifests and not self.bundle.manifests and not self.entries.seals and JOURNAL not in evidence:
            self.tampered.append(Finding(".", "no journal and no manifest: not an evidence bundle"))
        if manifests and JOURNAL not in evidence:
            self.tampered.append(Finding(JOURNAL, "removed after it was sealed"))
        after_seal = bool(tail.count) or self.verdict.facts.get("incomplete") is not None
        for name, digest in sorted(sealed_files.items()):
            if name not in evidence:
                self.tampered.append(Finding(name, f"removed after it was sealed in {manifests[-1][0]}"))
            elif sha256_file(evidence[name]) != digest:
                if name == REPORT and after_seal:
                    self.unsealed.append(Finding(name, "rewritten by the run after the last seal"))
                else:
                    self.tampered.append(Finding(name, f"content changed after it was sealed in {manifests[-1][0]}"))
        for name in sorted(set(evidence) - set(sealed_files) - set(APPEND_ONLY)):
            problem = layout_problem(name)
            if problem is not None and problem.startswith("a temporary file"):  # never sealed: a person looks
                self.unsealed.append(Finding(name, problem + ": review it, then remove it"))
            elif problem is not None:
                self.tampered.append(Finding(name, problem))
            elif after_seal or not manifests:
                self.unsealed.append(Finding(name, "written after the last seal, not sealed yet"))
            else:
                self.tampered.append(Finding(name, "added after the last seal"
                                             + (f" ({manifests[-1][0]})" if manifests else "")))
        for name in APPEND_ONLY:
            if name in evidence and name not in sealed_append_only and manifests:
                if name == TORN:  # only the journal writes it: the half line an interrupted write left
                    self.unsealed.append(Finding(name, "a half-written journal line, set aside after an interrupted "
                                                       "write: review it"))
                elif after_seal:
                    self.unsealed.append(Finding(name, "written after the last seal, not sealed yet"))
                else:
                    self.tampered.append(Finding(name, f"added after the last seal ({manifests[-1][0]})"))
        for name in sorted(set(self.bundle.files) - set(evidence)):
            problem = layout_problem(name)
            if problem is not None:
                self.tampered.append(Finding(name, problem))


def verify(folder: str | Path, *, incident: str | None = None, anchors: AnchorLog | None = None) -> Verdict:
    """Check the bundle in ``folder`` (named ``incident``, default the folder's name) against ``anchors``."""
    path = Path(folder)
    return _Verifier(path, incident or path.name, anchors).run()
