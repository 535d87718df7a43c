"""What an evidence bundle holds, and reading it without trusting it.

``<evidence_dir>/<incident>/`` is written by Tourniquet only, so its layout is known: a file
or folder that is not part of it is a problem, whoever put it there. Everything here reads
the bundle as hostile input: no symbolic link is followed, no special file is opened, JSON
with duplicate keys or ``NaN`` is refused, and every read is bounded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Finding", "BundleFiles", "scan", "layout_problem", "sha256_file", "prefix_digests", "strict_json",
    "canonical", "JOURNAL", "TORN", "REPORT", "MANIFESTS", "SNAPSHOTS", "SCOPE", "REGENERATED", "APPEND_ONLY",
    "SCOPE_FILES", "RECOVER", "MAX_MANIFEST_BYTES", "MAX_RECORD_BYTES", "manifest_name",
]

JOURNAL = "journal.jsonl"
#: A line a killed process left half-written, set aside by the journal when it is opened again.
TORN = "journal.torn"
REPORT = "report.md"
MANIFESTS = "manifests"
SNAPSHOTS = "snapshots"
SCOPE = "scope"
#: Regenerated from the journal by every run of the incident: may differ between two seals.
REGENERATED = frozenset({REPORT})
#: Files that only ever grow: each seal pins their length and the digest of that prefix.
APPEND_ONLY = (JOURNAL, TORN)
SCOPE_FILES = frozenset({"events.jsonl.gz", "subjects.csv", "people-to-warn.csv", "adresses-source.csv", "scope.json",
                         "queries.json", "notification.md", "declaration-cert-sante.md", "timeline.png"})
#: Reports of ``tourniquet recover``, one per recovery: ``recover/<stamp>-<accounts>.md``.
RECOVER = "recover"
#: A manifest lists one line per file: far below this even for thousands of accounts.
MAX_MANIFEST_BYTES = 16 << 20
#: One journal record: far below this; a longer line is refused rather than read into memory.
MAX_RECORD_BYTES = 16 << 20
_MANIFEST = re.compile(r"^(\d{4,9})\.json$")
_TEMPORARY = re.compile(r"^\..+\.tmp$")


def manifest_name(sequence: int) -> str:
    return f"{MANIFESTS}/{sequence:04d}.json"


def _manifest_number(name: str) -> int | None:
    """The sequence a manifest file name stands for; None unless it is written exactly as seal writes it."""
    match = _MANIFEST.match(name)
    if match is None or name != f"{int(match.group(1)):04d}.json":
        return None
    return int(match.group(1))


@dataclass(frozen=True)
class Finding:
    """One problem with the bundle, naming the file at fault."""

    file: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: {self.problem}"


def layout_problem(relative: str) -> str | None:
    """Why a file does not belong in a bundle; None for a file Tourniquet writes there."""
    parts = relative.split("/")
    if relative in (JOURNAL, TORN, REPORT):
        return None
    if len(parts) == 2 and parts[0] == SNAPSHOTS and parts[1].endswith(".json") and not parts[1].startswith("."):
        return None
    if len(parts) == 3 and parts[0] == SCOPE and parts[2] in SCOPE_FILES and not parts[1].startswith("."):
        return None
    if len(parts) == 2 and parts[0] == MANIFESTS and _manifest_number(parts[1]) is not None:
        return None
    if len(parts) == 2 and parts[0] == RECOVER and parts[1].endswith(".md") and not parts[1].startswith("."):
        return None
    if _TEMPORARY.match(parts[-1]) and parts[0] in (SNAPSHOTS, SCOPE):
        return "a temporary file left by an interrupted write"
    return "not a file Tourniquet writes in an evidence bundle"


def _folder_expected(relative: str) -> bool:
    parts = relative.split("/")
    if relative in (SNAPSHOTS, SCOPE, MANIFESTS, RECOVER):
        return True
    return len(parts) == 2 and parts[0] == SCOPE and not parts[1].startswith(".")


@dataclass
class BundleFiles:
    """The bundle as found on disk: regular files, and everything that should not be there."""

    files: dict[str, Path] = field(default_factory=dict)
    manifests: dict[int, Path] = field(default_factory=dict)
    strays: list[Finding] = field(default_factory=list)  # links, special files, unknown folders

    def evidence(self) -> dict[str, Path]:
        """Every regular file except the manifests."""
        return {name: path for name, path in self.files.items() if not name.startswith(MANIFESTS + "/")}


def scan(folder: Path) -> BundleFiles:
    """Walk the bundle without following links; classify every entry."""
    found = BundleFiles()

    def walk(directory: Path, prefix: str) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            found.strays.append(Finding(prefix or ".", f"cannot be read: {exc.strerror or exc}"))
            return
        for entry in entries:
            relative = f"{prefix}{entry.name}"
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError as exc:
                found.strays.append(Finding(relative, f"cannot be read: {exc.strerror or exc}"))
                continue
            if stat.S_ISLNK(mode):
                found.strays.append(Finding(relative, "a symbolic link: evidence is never a link (not followed)"))
            elif stat.S_ISDIR(mode):
                if not _folder_expected(relative):
                    found.strays.append(Finding(relative + "/", "a folder Tourniquet does not write in a bundle"))
                walk(Path(entry.path), relative + "/")
            elif not stat.S_ISREG(mode):
                found.strays.append(Finding(relative, "a special file (device, pipe or socket): not read"))
            else:
                found.files[relative] = Path(entry.path)
                number = _manifest_number(entry.name)
                if prefix == MANIFESTS + "/" and number is not None:
                    found.manifests[number] = Path(entry.path)

    walk(folder, "")
    return found


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prefix_digests(path: Path, lengths: Iterable[int]) -> dict[int, str | None]:
    """SHA-256 of the first ``n`` bytes of ``path`` for each ``n``, in one read (None: the file is shorter)."""
    wanted = sorted(set(lengths))
    result: dict[int, str | None] = {n: None for n in wanted}
    digest = hashlib.sha256()
    done = 0
    try:
        handle = path.open("rb")
    except OSError:
        return result
    with handle:
        for length in wanted:
            while done < length:
                block = handle.read(min(1 << 20, length - done))
                if not block:
                    return result
                digest.update(block)
                done += len(block)
            result[length] = digest.copy().hexdigest()
    return result


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Duplicate(f"duplicate key {key!r}: two readers could see two different values")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_json(data: bytes) -> Any:
    """Parse JSON that must mean one thing only: UTF-8, no duplicate key, no NaN/Infinity.

    Raises ValueError with the reason.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except _Duplicate as exc:
        raise ValueError(str(exc)) from None
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except ValueError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None


def canonical(data: Any) -> bytes:
    """The one byte form a JSON value is hashed in."""
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
