"""`evidence verify` across sites cannot be talked round: a region's bundle or the national summary, gone.

One incident contained in three regions (real slapd each, :mod:`tests.regions_testbed`), run by the
engine without Prefect, then verified with the three sites: intact. Then, one at a time, what an
insider would do — and what verify must say:

- a region's journal deleted, emptied, or its whole bundle deleted (with that region's anchor lines):
  the national journal says the region holds a part, so it is TAMPERED, naming the region — never
  "no part of this incident here";
- the national summary rewritten (113 people) and re-sealed with the tool after cutting its lines from
  the first site's anchor log, or deleted together with those lines: each region's anchor log and
  ticket carry the summary's real root, so it is TAMPERED, naming where the root was found.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.regions_testbed import NAMES, Country, country  # noqa: F401 (a fixture)
from tourniquet.cli.main import main
from tourniquet.engine.regions_run import execute_across
from tourniquet.evidence import AnchorLog, seal

PLAYBOOK = str(Path(__file__).resolve().parents[1] / "playbooks" / "credential-misuse.yaml")


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def _rechain(records: list[dict[str, Any]]) -> bytes:
    """A forger's journal: every record re-hashed with the journal's own formula."""
    previous, out = "0" * 64, []
    for number, record in enumerate(records, start=1):
        record = {**record, "seq": number, "prev": previous}
        record.pop("hash", None)
        record["hash"] = previous = hashlib.sha256(_canonical(record)).hexdigest()
        out.append(_canonical(record) + b"\n")
    return b"".join(out)


def _cut_anchor_lines(log: Path, incident: str) -> None:
    """The anchor log rewritten without one incident's lines, chained again (a forger with root on the host)."""
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    kept, previous = [], "0" * 64
    for entry in (e for e in entries if e["incident"] != incident):
        entry = {**entry, "prev": previous}
        entry.pop("hash")
        entry["hash"] = previous = hashlib.sha256(_canonical(entry)).hexdigest()
        kept.append(_canonical(entry) + b"\n")
    log.write_bytes(b"".join(kept))


@pytest.fixture
def contained(country: Country, tmp_path: Path) -> Iterator[tuple[list[str], str]]:  # noqa: F811
    sites = [str(p) for p in country.sites(tmp_path)]
    try:
        run = execute_across(PLAYBOOK, {"accounts": country.ids(), "since": country.since().isoformat(),
                                        "reason": "DNS alert 2026-118"}, sites, dry_run=False)
        assert run.status == "completed", run.error
        yield sites, run.incident
    finally:
        country.reset()


def _verify(sites: list[str], incident: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["evidence", "verify", incident, *[a for s in sites for a in ("--site", s)]])
    return code, capsys.readouterr().out


def _saved(paths: list[Path]) -> dict[Path, bytes | None]:
    return {p: p.read_bytes() if p.is_file() else None for p in paths}


def test_a_regional_bundle_or_the_national_summary_gone_or_rewritten_is_tampered_naming_it(
        contained: tuple[list[str], str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sites, incident = contained
    code, out = _verify(sites, incident, capsys)
    assert code == 0 and out.count("] intact") == 4, out
    hdf, nor = tmp_path / "hdf" / "evidence" / incident, tmp_path / "nor" / "evidence" / incident
    national = tmp_path / "hdf" / "evidence" / f"{incident}-national"
    backup = tmp_path / "backup"
    shutil.copytree(tmp_path / "hdf", backup / "hdf", symlinks=True)
    shutil.copytree(tmp_path / "nor", backup / "nor", symlinks=True)

    def restore() -> None:
        for name in ("hdf", "nor"):
            shutil.rmtree(tmp_path / name)
            shutil.copytree(backup / name, tmp_path / name, symlinks=True)
        assert _verify(sites, incident, capsys)[0] == 0

    # a region's journal deleted: not "no part of this incident here"
    (hdf / "journal.jsonl").unlink()
    code, out = _verify(sites, incident, capsys)
    assert code == 1 and "[hdf] TAMPERED" in out and "no part of this incident here" not in out, out
    restore()

    # a region's journal emptied
    (nor / "journal.jsonl").write_bytes(b"")
    code, out = _verify(sites, incident, capsys)
    assert code == 1 and "[nor] TAMPERED journal.jsonl" in out, out
    restore()

    # a region's whole bundle deleted, and its anchor lines with it: the national journal still lists it
    shutil.rmtree(hdf)
    _cut_anchor_lines(tmp_path / "hdf" / "state" / "evidence-anchors.jsonl", incident)
    code, out = _verify(sites, incident, capsys)
    assert code == 1, out
    assert f"[hdf] TAMPERED {hdf}: the national journal says hdf holds a part of this incident" in out, out
    restore()

    # the national summary rewritten (113 people) and re-sealed with the tool, its first-site anchor lines cut
    records = [json.loads(line) for line in (national / "journal.jsonl").read_text().splitlines()]
    for record in records:
        if record["type"] == "national_summary":
            record["figures"]["people"] = 113
    (national / "journal.jsonl").write_bytes(_rechain([r for r in records if r["type"] != "sealed"]))
    shutil.rmtree(national / "manifests")
    _cut_anchor_lines(tmp_path / "hdf" / "state" / "evidence-anchors.jsonl", f"{incident}-national")
    seal(national, incident=f"{incident}-national", anchors=AnchorLog(tmp_path / "hdf" / "state"), note="fixed")
    code, out = _verify(sites, incident, capsys)
    assert code == 1 and "[national] TAMPERED" in out, out
    for name in NAMES:  # each region holds the real root, on its ticket and in its anchor log
        assert f"[national] TAMPERED {name}: ticket {incident}-1: carries root" in out, out
    assert "[national] TAMPERED nor: " in out and "evidence-anchors.jsonl: line" in out, out
    restore()

    # the national summary deleted together with its anchor-log lines
    shutil.rmtree(national)
    _cut_anchor_lines(tmp_path / "hdf" / "state" / "evidence-anchors.jsonl", f"{incident}-national")
    code, out = _verify(sites, incident, capsys)
    assert code == 1 and "[national] TAMPERED" in out and "no national summary" not in out, out
    assert "the summary was rewritten or deleted" in out
    restore()
