"""The national practitioner register (Annuaire Santé public extract), read-only.

The register is published daily as ``PS_LibreAcces_<timestamp>.zip`` holding
``PS_LibreAcces_Personne_activite_<YYYYMMDDhhmm>.txt``: ``|``-separated, every line ends
with ``|``, a header of 56 columns starting ``Type d'identifiant PP|Identifiant PP|
Identification nationale PP|…``, one line per *activity* (a practitioner appears once per
place of practice). The file is about a million lines, so it is read as a stream and only
the RPPS numbers are kept, as a sorted array of 64-bit integers (8 bytes each, duplicates
removed): 100,000 directory accounts are then checked with a binary search each.

The encoding is detected from the first megabyte: UTF-8 (with or without BOM) is expected,
cp1252 is accepted, latin-1 is the last resort (it decodes any byte).

:func:`open_extract` takes a ``.txt``, a ``.zip`` or a folder (the newest extract in it, by
the timestamp in its name). Every problem is a :class:`~tourniquet.errors.PermanentError`
naming the file, never a zipfile/codec/OS exception.
"""

from __future__ import annotations

import bisect
import codecs
import heapq
import io
import re
import zipfile
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, cast

from tourniquet.errors import PermanentError

__all__ = ["is_valid_rpps", "RegisterExtract", "RppsSet", "open_extract", "find_latest", "detect_encoding", "HEADER_START", "SYSTEM"]

SYSTEM = "register"
HEADER_START = ("Type d'identifiant PP", "Identifiant PP", "Identification nationale PP")
#: Type d'identifiant PP: 8 = RPPS (0 = ADELI, the older register).
RPPS_TYPE = "8"
_TXT = re.compile(r"^PS_LibreAcces_Personne_activite_(\d{12})\.txt$", re.IGNORECASE)
_ZIP = re.compile(r"^PS_LibreAcces_(\d{12,14})\.zip$", re.IGNORECASE)
_SAMPLE = 1 << 20
_CHUNK = 200_000


def is_valid_rpps(number: str) -> bool:
    """11 digits, the last one a Luhn check digit."""
    if len(number) != 11 or not number.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


class RppsSet:
    """A compact, immutable set of RPPS numbers: a sorted ``array('q')`` without duplicates."""

    def __init__(self, numbers: array) -> None:  # type: ignore[type-arg]
        self._numbers = numbers

    def __contains__(self, rpps: object) -> bool:
        try:
            value = int(str(rpps).strip())
        except ValueError:
            return False
        index = bisect.bisect_left(self._numbers, value)
        return index < len(self._numbers) and self._numbers[index] == value

    def __len__(self) -> int:
        return len(self._numbers)

    @property
    def nbytes(self) -> int:
        return self._numbers.itemsize * len(self._numbers)

    @classmethod
    def from_iterable(cls, values: Iterator[int]) -> "RppsSet":
        """Sort in chunks, merge, drop duplicates: never a Python list of a million ints."""
        runs: list[array] = []  # type: ignore[type-arg]
        chunk: list[int] = []
        for value in values:
            chunk.append(value)
            if len(chunk) >= _CHUNK:
                runs.append(array("q", sorted(set(chunk))))
                chunk = []
        if chunk:
            runs.append(array("q", sorted(set(chunk))))
        merged: array = array("q")  # type: ignore[type-arg]
        last: int | None = None
        for value in heapq.merge(*runs):
            if value != last:
                merged.append(value)
                last = value
        return cls(merged)


@dataclass
class RegisterExtract:
    """What was read from one extract, and where it came from (cited by every finding)."""

    file: str
    member: str | None
    extracted_at: datetime | None
    encoding: str
    lines: int
    rpps: RppsSet
    other_identifiers: int = 0
    malformed: int = 0
    warnings: list[str] = field(default_factory=list)

    def evidence(self) -> dict[str, object]:
        return {
            "register_file": self.file, "register_member": self.member,
            "register_date": self.extracted_at.isoformat() if self.extracted_at else None,
            "register_encoding": self.encoding, "register_lines": self.lines,
            "register_rpps_numbers": len(self.rpps),
        }


def _timestamp(name: str) -> datetime | None:
    match = _TXT.match(name) or _ZIP.match(name)
    if not match:
        return None
    digits = match.group(1)[:12]
    try:
        return datetime.strptime(digits, "%Y%m%d%H%M").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def find_latest(folder: str | Path) -> Path:
    """The newest extract (``.txt`` or ``.zip``) in a folder, by the timestamp in its name."""
    base = Path(folder)
    candidates = [(stamp, path) for path in base.iterdir() if path.is_file() and (stamp := _timestamp(path.name))]
    if not candidates:
        raise PermanentError(
            f"{base}: no PS_LibreAcces_Personne_activite_<YYYYMMDDhhmm>.txt or PS_LibreAcces_<timestamp>.zip in it",
            system=SYSTEM,
        )
    return max(candidates)[1]


def detect_encoding(sample: bytes) -> str:
    """utf-8-sig / utf-8 if the sample decodes, else cp1252, else latin-1 (decodes anything)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(sample, final=False)  # a character cut at the end of the sample is fine
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        sample.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


@contextmanager
def _binary(path: Path) -> Iterator[tuple[IO[bytes], str | None]]:
    """The extract's bytes as a stream (the .txt member of a zip is decompressed on the fly)."""
    try:
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as archive:
                members = [n for n in archive.namelist() if _TXT.match(Path(n).name)]
                if not members:
                    raise PermanentError(f"{path}: no PS_LibreAcces_Personne_activite_*.txt inside", system=SYSTEM)
                member = max(members, key=lambda n: _timestamp(Path(n).name) or datetime.min.replace(tzinfo=timezone.utc))
                with archive.open(member) as handle:
                    yield handle, member
        else:
            with path.open("rb") as handle:
                yield handle, None
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise PermanentError(f"{path}: cannot read the register extract: {exc}", system=SYSTEM) from exc


def iter_rows(path: str | Path) -> Iterator[dict[str, str]]:
    """Every activity line as {column: value} (for tools and tests; the check uses :func:`open_extract`)."""
    source = Path(path)
    with _binary(source) as (raw, _member):
        sample = raw.read(_SAMPLE)
        encoding = detect_encoding(sample)
        text = io.TextIOWrapper(io.BufferedReader(cast(Any, _Prefixed(sample, raw))), encoding=encoding, errors="replace", newline="")
        header = _header(text.readline(), source)
        for line in text:
            values = line.rstrip("\r\n").split("|")
            yield dict(zip(header, values))


class _Prefixed(io.RawIOBase):
    """Give back the already-read sample, then the rest of the stream (zip members cannot seek)."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._rest.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def _header(line: str, source: Path) -> list[str]:
    columns = line.rstrip("\r\n").split("|")
    if columns and columns[-1] == "":
        columns = columns[:-1]
    if tuple(c.strip() for c in columns[:3]) != HEADER_START:
        raise PermanentError(
            f"{source}: not a PS_LibreAcces_Personne_activite extract (header starts {'|'.join(columns[:3])!r}, "
            f"expected {'|'.join(HEADER_START)!r})",
            system=SYSTEM,
        )
    return columns


def open_extract(path: str | Path) -> RegisterExtract:
    """Read the RPPS numbers of an extract (``.txt``, ``.zip`` or the newest in a folder), streaming."""
    source = Path(path)
    if source.is_dir():
        source = find_latest(source)
    if not source.exists():
        raise PermanentError(f"{source}: register extract not found", system=SYSTEM)
    counts = {"lines": 0, "other": 0, "malformed": 0}
    details: dict[str, object] = {}

    def numbers() -> Iterator[int]:
        with _binary(source) as (raw, member):
            sample = raw.read(_SAMPLE)
            encoding = detect_encoding(sample)
            details.update(member=member, encoding=encoding)
            text = io.TextIOWrapper(io.BufferedReader(cast(Any, _Prefixed(sample, raw))), encoding=encoding,
                                    errors="replace", newline="")
            columns = _header(text.readline(), source)
            kind_at, id_at, nat_at = columns.index(HEADER_START[0]), columns.index(HEADER_START[1]), columns.index(HEADER_START[2])
            width = max(kind_at, id_at, nat_at) + 1
            for line in text:
                counts["lines"] += 1
                values = line.split("|", width)
                if len(values) < width + 1:
                    counts["malformed"] += 1
                    continue
                kind, identifier = values[kind_at], values[id_at]
                if kind != RPPS_TYPE:
                    counts["other"] += 1
                    continue
                if len(identifier) != 11 or not identifier.isdigit():
                    national = values[nat_at]
                    if len(national) == 12 and national.startswith("8") and national.isdigit():
                        identifier = national[1:]
                    else:
                        counts["malformed"] += 1
                        continue
                yield int(identifier)

    rpps = RppsSet.from_iterable(numbers())
    member = details.get("member")
    extract = RegisterExtract(
        file=str(source), member=str(member) if member else None,
        extracted_at=_timestamp(Path(str(member)).name) if member else _timestamp(source.name),
        encoding=str(details.get("encoding", "")), lines=counts["lines"], rpps=rpps,
        other_identifiers=counts["other"], malformed=counts["malformed"],
    )
    if extract.extracted_at is None:
        extract.warnings.append(f"{source.name}: no timestamp in the file name, the extract's date is unknown")
    if not len(rpps):
        raise PermanentError(f"{source}: no RPPS number in the extract ({counts['lines']} lines)", system=SYSTEM)
    return extract
