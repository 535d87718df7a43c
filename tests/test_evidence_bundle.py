"""The evidence bundle after containing three accounts: scope frozen, notification drafted, sealed.

Runs playbooks/credential-misuse.yaml against the real slapd and a generated SQLite access log in
which practitioners 3, 11 and 27 scraped patients while a colleague worked normally. Then a few
kinds of tampering — a changed, removed or added file, an edited journal line, an edited or missing
manifest, a file changed before a later run re-seals — make ``tourniquet evidence verify`` fail,
naming the file (tests/test_evidence_tampering.py applies fifty more to copies of a bundle).
"""

from __future__ import annotations

import csv
import gzip
import json
import re
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import write_site
from tests.helpers import LdapAdmin
from tourniquet.cli.main import main
from tourniquet.config import load_site
from tourniquet.demo.access_log import IDENTITY, Access, make_nir, patient_id, write_sqlite
from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import Slapd
from tourniquet.engine.execute import execute_playbook
from tourniquet.engine.sealing import verify_incident
from tourniquet.evidence import Verdict
from tourniquet.site import Site

PLAYBOOK = str(Path(__file__).resolve().parents[1] / "playbooks" / "credential-misuse.yaml")
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def scraping_log(practitioners: Directory) -> list[Access]:
    a, b, c = (practitioners.practitioners[i].uid for i in (3, 11, 27))
    colleague = practitioners.practitioners[4].uid
    start = NOW - timedelta(days=10)
    log = [Access(start + timedelta(minutes=i), a, patient_id(i), "view", IDENTITY, "185.220.101.7")
           for i in range(60)]
    log += [Access(start + timedelta(hours=2, minutes=i), b, patient_id(40 + i), "view", IDENTITY + ("phone",),
                   "185.220.101.8") for i in range(60)]
    nirs = [make_nir("7", 90, 30, "2A"), make_nir("2", 72, 62, "59"), make_nir("1", 85, 5, "75"),
            "185057800608400", "1851378006084" + "12"]
    log += [Access(start + timedelta(hours=4, minutes=i), c, patient_id(100 + i), "search", ("last_name",),
                   "185.220.101.9", query=value) for i, value in enumerate(nirs)]
    log.append(Access(NOW - timedelta(days=45), a, patient_id(999), "view", IDENTITY, "185.220.101.7"))
    log += [Access(start + timedelta(seconds=i), colleague, patient_id(i), "view", IDENTITY, "10.0.0.4")
            for i in range(500)]
    return log


@pytest.fixture
def audit_site(tmp_path: Path, slapd: Slapd, practitioners: Directory, ldap_admin: LdapAdmin) -> Iterator[Path]:
    write_sqlite(scraping_log(practitioners), tmp_path / "access.sqlite")
    path = write_site(tmp_path, slapd, practitioners, audit={
        "kind": "sqlite", "path": str(tmp_path / "access.sqlite"), "columns": {"may_hold_nir": ["query"]},
    })
    yield path
    ldap_admin.reset_all(practitioners)


def verify(bundle: Path) -> Verdict:
    """The bundle against its manifests, the anchor log in the site's state_dir and the ticket."""
    site = Site(load_site(bundle.parent.parent / "tourniquet.yaml"))
    try:
        return verify_incident(site, bundle.name)
    finally:
        site.close()


def _suspects(practitioners: Directory) -> list[str]:
    return [practitioners.practitioners[i].uid for i in (3, 11, 27)]


@pytest.fixture
def bundle(audit_site: Path, practitioners: Directory) -> Path:
    summary = execute_playbook(PLAYBOOK, {"accounts": _suspects(practitioners), "reason": "ARS alert"},
                               dry_run=False, site=str(audit_site))
    assert summary.status == "completed", summary.error
    return summary.journal.parent  # type: ignore[union-attr]


def _scope_folder(bundle: Path) -> Path:
    (folder,) = sorted((bundle / "scope").iterdir())
    return folder


def test_containment_freezes_the_scope_and_drafts_the_notification(bundle: Path, practitioners: Directory) -> None:
    folder = _scope_folder(bundle)
    scope = json.loads((folder / "scope.json").read_text())

    assert scope["total"]["subjects"] == 105, "patients 0-99 once, though two accounts saw 40-59; + 5 searched"
    assert scope["total"]["events"] == 125 and scope["frozen_events"] == 125
    assert scope["total"]["subjects_by_category"] == {"contact": 60, "identity": 105, "social_security_number": 3}
    with gzip.open(folder / "events.jsonl.gz", "rt") as handle:
        events = [json.loads(line) for line in handle]
    assert len(events) == 125 and patient_id(999) not in {e["subject"] for e in events}
    with (folder / "people-to-warn.csv").open() as handle:
        warned = list(csv.DictReader(handle))
    assert len(warned) == 105 and all("mot de passe" in row["message"] for row in warned)
    notification = (folder / "notification.md").read_text()
    assert "**105 patients**" in notification and "**125 consultations**" in notification
    assert "numéro de sécurité sociale (NIR) | 3 | 3 |" in notification
    assert "| compte bloqué dans l'annuaire | 3 |" in notification, "each measure with its time, from the journal"
    assert "[NOM — e-mail — téléphone]" in notification
    assert (folder / "declaration-cert-sante.md").exists(), "the CERT Santé draft next to the Art. 33 draft"


def test_untouched_bundle_verifies(bundle: Path, audit_site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    verdict = verify(bundle)

    assert verdict.intact, (verdict.findings, verdict.unsealed)
    assert verdict.facts["manifests"] == 1 and verdict.facts["unsealed_records"] == 0
    assert verdict.facts["on_ticket"] == 1
    assert main(["evidence", "verify", bundle.name, "--site", str(audit_site)]) == 0
    out = capsys.readouterr().out
    assert "intact" in out and "evidence-anchors.jsonl" in out and f"file ticket {bundle.name}-1" in out


def _edit_journal_line(bundle: Path) -> str:
    lines = (bundle / "journal.jsonl").read_text().splitlines(keepends=True)
    lines[3] = re.sub(r'"run":"[^"]*"', '"run":"forged"', lines[3], count=1)
    (bundle / "journal.jsonl").write_text("".join(lines))
    return "journal.jsonl: line 4"


def _change_snapshot(bundle: Path) -> str:
    snapshot = sorted((bundle / "snapshots").iterdir())[0]
    snapshot.write_text(snapshot.read_text().replace("inetOrgPerson", "person"))
    return f"snapshots/{snapshot.name}: content changed"


def _change_events(bundle: Path) -> str:
    folder = _scope_folder(bundle)
    with gzip.open(folder / "events.jsonl.gz", "rt") as handle:
        lines = handle.readlines()[1:]
    with gzip.open(folder / "events.jsonl.gz", "wt") as handle:
        handle.writelines(lines)
    return f"scope/{folder.name}/events.jsonl.gz: content changed"


def _remove_subjects(bundle: Path) -> str:
    folder = _scope_folder(bundle)
    (folder / "subjects.csv").unlink()
    return f"scope/{folder.name}/subjects.csv: removed"


def _add_file(bundle: Path) -> str:
    (bundle / "snapshots" / "extra.json").write_text("{}")
    return "snapshots/extra.json: added"


def _edit_manifest(bundle: Path) -> str:
    path = bundle / "manifests" / "0001.json"
    manifest = json.loads(path.read_text())
    first = sorted(manifest["files"])[0]
    manifest["files"][first] = "0" * 64
    path.write_text(json.dumps(manifest))
    return "manifests/0001.json: content does not match its root hash"


def _truncate_journal(bundle: Path) -> str:
    lines = (bundle / "journal.jsonl").read_text().splitlines(keepends=True)
    (bundle / "journal.jsonl").write_text("".join(lines[:-3]))
    return "journal.jsonl: the"


@pytest.mark.parametrize("tamper", [_edit_journal_line, _change_snapshot, _change_events, _remove_subjects,
                                    _add_file, _edit_manifest, _truncate_journal])
def test_each_kind_of_tampering_is_found_and_named(
    tamper, bundle: Path, audit_site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = tamper(bundle)

    findings = verify(bundle).findings

    assert any(str(f).startswith(expected) for f in findings), findings
    assert main(["evidence", "verify", bundle.name, "--site", str(audit_site)]) == 1
    assert expected in capsys.readouterr().out


def test_a_later_run_does_not_launder_earlier_tampering(
    bundle: Path, audit_site: Path, practitioners: Directory
) -> None:
    """Edit a sealed snapshot, then run the incident again: the new seal keeps the problem visible."""
    expected = _change_snapshot(bundle)

    again = execute_playbook(PLAYBOOK, {"accounts": _suspects(practitioners), "reason": "ARS alert"},
                             dry_run=False, site=str(audit_site))

    assert again.journal is not None and again.journal.parent == bundle
    verdict = verify(bundle)
    assert verdict.facts["manifests"] == 2
    assert any(expected in str(f) for f in verdict.findings), verdict.findings
    assert len(list((bundle / "scope").iterdir())) == 2, "the first frozen scope is kept, not overwritten"


def test_a_second_run_reseals_cleanly_and_a_removed_manifest_is_seen(
    bundle: Path, audit_site: Path, practitioners: Directory
) -> None:
    again = execute_playbook(PLAYBOOK, {"accounts": _suspects(practitioners), "reason": "ARS alert"},
                             dry_run=False, site=str(audit_site))
    assert again.journal is not None and again.journal.parent == bundle
    assert verify(bundle).intact

    shutil.move(bundle / "manifests" / "0001.json", bundle.parent / "stolen.json")

    assert any(str(f).startswith("manifests/0002.json: does not follow") for f in verify(bundle).findings)


def test_removing_the_newest_manifest_is_seen_through_the_journal(bundle: Path) -> None:
    (bundle / "manifests" / "0001.json").unlink()

    assert any(str(f).startswith("manifests/0001.json: missing") for f in verify(bundle).findings)


def test_dry_run_computes_the_scope_and_writes_no_evidence(audit_site: Path, practitioners: Directory) -> None:
    summary = execute_playbook(PLAYBOOK, {"accounts": _suspects(practitioners)}, dry_run=True, site=str(audit_site))

    assert summary.status == "planned"
    assert summary.results["scope"]["people"] == 105 and summary.results["scope"]["folder"] is None
    assert not (audit_site.parent / "evidence").exists()


def test_flow_run_publishes_the_scope_table_and_the_notification(
    prefect_harness: None, audit_site: Path, practitioners: Directory
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from tourniquet.flows.respond import run_playbook

    result = run_playbook(PLAYBOOK, {"accounts": _suspects(practitioners), "reason": "ARS alert"},
                          site=str(audit_site))

    key = f"tourniquet-{result['incident']}"
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[f"{key}-scope", f"{key}-notification"])))
    by_key = {a.key: a for a in artifacts}
    table = by_key[f"{key}-scope"].data
    rows = json.loads(table) if isinstance(table, str) else table
    assert {r["account"]: r["people"] for r in rows} == {
        **{uid: n for uid, n in zip(_suspects(practitioners), (60, 60, 5))}, "TOTAL (people counted once)": 105}
    assert "**105 patients**" in by_key[f"{key}-notification"].data
    assert verify(Path(result["journal"]).parent).intact


def test_journal_records_after_the_seal_are_not_sealed_until_reviewed(
    bundle: Path, audit_site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A note appended after the run: verify cannot know who wrote it, so it says 'not sealed' (exit 3)
    and lists it; `evidence seal` after review seals it, and the root goes to the ticket."""
    from tourniquet.journal import Journal

    Journal(bundle / "journal.jsonl", incident=bundle.name).write("note", message="owner called back")

    verdict = verify(bundle)
    assert verdict.findings == [] and verdict.facts["unsealed_records"] == 1 and verdict.exit_code == 3
    assert main(["evidence", "verify", bundle.name, "--site", str(audit_site)]) == 3
    assert "UNSEALED journal.jsonl: line" in capsys.readouterr().out

    assert main(["evidence", "seal", bundle.name, "--site", str(audit_site), "--note", "reviewed: the owner"]) == 0
    assert verify(bundle).intact
    assert main(["evidence", "verify", bundle.name, "--site", str(audit_site)]) == 0
