"""The national register extract as published: pipe-separated, one line per activity, zipped,
in UTF-8 or an older Windows encoding — read streaming, kept compact."""

from __future__ import annotations

import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.testbed.register import COLUMNS, write_extract
from tourniquet.connectors.register import RppsSet, detect_encoding, find_latest, is_valid_rpps, iter_rows, open_extract
from tourniquet.demo.practitioners import generate
from tourniquet.errors import PermanentError

PEOPLE = [p.rpps for p in generate(40).practitioners]


def test_header_has_the_56_published_columns(tmp_path: Path) -> None:
    path = write_extract(tmp_path, PEOPLE[:3])
    header = path.read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("Type d'identifiant PP|Identifiant PP|Identification nationale PP|")
    assert header.endswith("|") and len(header.split("|")) == 57 == len(COLUMNS) + 1


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_every_registered_practitioner_is_found_whatever_the_encoding(tmp_path: Path, encoding: str) -> None:
    path = write_extract(tmp_path, PEOPLE[:30], extra=500, adeli=50, encoding=encoding)
    extract = open_extract(path)
    assert extract.encoding == encoding
    assert all(number in extract.rpps for number in PEOPLE[:30])
    assert not any(number in extract.rpps for number in PEOPLE[30:])
    # one line per activity: more lines than practitioners, each number kept once; ADELI lines are not RPPS
    assert extract.lines > len(extract.rpps) >= 530
    assert extract.other_identifiers == 50
    names = {row["Nom d'exercice"] for row in iter_rows(path)}
    assert "LEFÈVRE" in names  # accents decoded with the detected encoding


def test_zip_as_published_and_the_newest_in_a_folder(tmp_path: Path) -> None:
    old = write_extract(tmp_path, PEOPLE[:10], stamp=datetime(2026, 11, 1, 2, 0), zipped=True)
    new = write_extract(tmp_path, PEOPLE[:20], stamp=datetime(2026, 11, 27, 2, 0), zipped=True)
    assert old.name == "PS_LibreAcces_202611010200.zip"
    assert find_latest(tmp_path) == new
    extract = open_extract(tmp_path)
    assert extract.file == str(new)
    assert extract.member == "PS_LibreAcces_Personne_activite_202611270200.txt"
    assert extract.extracted_at == datetime(2026, 11, 27, 2, 0, tzinfo=timezone.utc)
    assert PEOPLE[15] in extract.rpps
    assert {"register_file", "register_date", "register_lines"} <= set(extract.evidence())


def test_a_file_that_is_not_an_extract_is_refused_with_its_name(tmp_path: Path) -> None:
    wrong = tmp_path / "PS_LibreAcces_Personne_activite_202611270200.txt"
    wrong.write_text("nom|prenom|\nDUPONT|JEAN|\n", encoding="utf-8")
    with pytest.raises(PermanentError, match="not a PS_LibreAcces_Personne_activite extract"):
        open_extract(wrong)
    broken = tmp_path / "PS_LibreAcces_202611270200.zip"
    broken.write_bytes(b"not a zip")
    with pytest.raises(PermanentError, match="cannot read"):
        open_extract(broken)
    empty_zip = tmp_path / "other" / "PS_LibreAcces_202611270300.zip"
    empty_zip.parent.mkdir()
    with zipfile.ZipFile(empty_zip, "w") as archive:
        archive.writestr("readme.txt", "nothing")
    with pytest.raises(PermanentError, match="no PS_LibreAcces_Personne_activite"):
        open_extract(empty_zip)
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    with pytest.raises(PermanentError, match="no PS_LibreAcces"):
        open_extract(nothing)


def test_rpps_numbers_are_kept_as_a_compact_sorted_array() -> None:
    numbers = RppsSet.from_iterable(iter([5, 3, 5, 9, 1, 3] * 1000))
    assert len(numbers) == 4 and numbers.nbytes == 32
    assert "3" in numbers and "4" not in numbers and "x" not in numbers


def test_encoding_detection_and_luhn() -> None:
    assert detect_encoding("Hélène".encode("utf-8")) == "utf-8"
    assert detect_encoding("Hélène".encode("cp1252")) == "cp1252"
    assert detect_encoding("Hélène".encode("utf-8")[:-5] + "é".encode("utf-8")[:1]) == "utf-8"  # cut character
    assert detect_encoding(b"\x81\x8d\xe9") == "latin-1"
    assert all(is_valid_rpps(n) for n in PEOPLE)
    assert not is_valid_rpps(PEOPLE[0][:10] + str((int(PEOPLE[0][10]) + 1) % 10))
