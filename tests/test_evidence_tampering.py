"""An insider edits the evidence of a real incident: every change of meaning is named by `evidence verify`.

One real incident, made once per module against the test slapd: credential-misuse contains three
accounts (seal 1, its root commented on the file-store ticket), runs again (seal 2), then a false
alarm is undone (seal 3: the undo is evidence too, and its root goes on the now closed ticket).
Another incident is contained beside it (the bundle a swap brings in). Each test copies the whole
site — evidence folder, state_dir with the anchor log and ticket ledger, ticket store — applies one
tampering, and runs ``tourniquet evidence verify``: exit 1 (tampered) or 3 (records after the last
seal), and the file at fault named. Untouched copies, touched times and permissions stay intact.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_site
from tests.helpers import LdapAdmin
from tourniquet.cli.main import main
from tourniquet.demo.access_log import IDENTITY, Access, patient_id, write_sqlite
from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import Slapd
from tourniquet.engine.execute import execute_playbook

PLAYBOOK = str(Path(__file__).resolve().parents[1] / "playbooks" / "credential-misuse.yaml")
INCIDENT = "INC-2042"
OTHER = "INC-2043"


def _log(practitioners: Directory) -> list[Access]:
    start = datetime.now(timezone.utc) - timedelta(days=3)
    log = []
    for n, index in enumerate((3, 11, 27, 33)):
        uid = practitioners.practitioners[index].uid
        log += [Access(start + timedelta(minutes=10 * n + i), uid, patient_id(20 * n + i), "view", IDENTITY,
                       "185.220.101.7") for i in range(12)]
    return log


def _ticket_roots(root: Path, incident: str) -> list[str]:
    texts = [c["text"] for p in sorted((root / "tickets").glob(f"{incident}-*.json"))
             for c in json.loads(p.read_text())["comments"]]
    return re.findall(r"^root: ([0-9a-f]{64})$", "\n".join(texts), flags=re.MULTILINE)


def _newest_root(root: Path, incident: str) -> str:
    newest = sorted((root / "evidence" / incident / "manifests").glob("*.json"))[-1]
    return str(json.loads(newest.read_text())["root"])


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory, slapd: Slapd, practitioners: Directory) -> Iterator[Path]:
    """The site of a real incident after contain, contain again, undo; the root on the ticket after each seal."""
    root = tmp_path_factory.mktemp("incident")
    write_sqlite(_log(practitioners), root / "access.sqlite")
    site = write_site(root, slapd, practitioners, audit={"kind": "sqlite", "path": str(root / "access.sqlite")})
    suspects = [practitioners.practitioners[i].uid for i in (3, 11, 27)]
    admin = LdapAdmin(slapd)
    try:
        other = execute_playbook(PLAYBOOK, {"accounts": [practitioners.practitioners[33].uid]}, dry_run=False,
                                 incident=OTHER, site=str(site))
        assert other.status == "completed", other.error
        roots = []
        for _ in range(2):
            summary = execute_playbook(PLAYBOOK, {"accounts": suspects, "reason": "ARS alert 2042"}, dry_run=False,
                                       incident=INCIDENT, site=str(site))
            assert summary.status == "completed", summary.error
            roots.append(_newest_root(root, INCIDENT))
            assert _ticket_roots(root, INCIDENT) == roots, "the root is on the ticket after each seal"
        assert main(["undo", INCIDENT, "--site", str(site)]) == 0
        roots.append(_newest_root(root, INCIDENT))
        assert len(set(roots)) == 3
        assert _ticket_roots(root, INCIDENT) == roots, "the undo's seal too, on the ticket the undo closed"
        assert main(["evidence", "verify", INCIDENT, "--site", str(site)]) == 0
    finally:
        admin.reset_all(practitioners)
        admin.close()
    yield root


@dataclass
class Copy:
    """A copy of the whole site: the bundle, the state_dir (anchor log, ledger), the ticket store."""

    root: Path

    @property
    def site(self) -> Path:
        return self.root / "tourniquet.yaml"

    @property
    def bundle(self) -> Path:
        return self.root / "evidence" / INCIDENT

    @property
    def anchors(self) -> Path:
        return self.root / "state" / "evidence-anchors.jsonl"

    def path(self, relative: str) -> Path:
        return self.bundle / relative

    def snapshot(self) -> str:
        return "snapshots/" + sorted(p.name for p in (self.bundle / "snapshots").iterdir())[0]

    def scope(self, which: int = 0) -> str:
        return "scope/" + sorted(p.name for p in (self.bundle / "scope").iterdir())[which]

    def lines(self) -> list[bytes]:
        return self.path("journal.jsonl").read_bytes().splitlines(keepends=True)

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]

    def write_records(self, records: list[dict[str, Any]]) -> None:
        self.path("journal.jsonl").write_bytes(b"".join(_line(r) for r in _rechain(records)))

    def manifest(self, sequence: int) -> dict[str, Any]:
        return json.loads(self.path(f"manifests/{sequence:04d}.json").read_text())

    def write_manifest(self, sequence: int, manifest: dict[str, Any], *, reroot: bool = True) -> None:
        if reroot:
            manifest["root"] = hashlib.sha256(_canonical({k: v for k, v in manifest.items() if k != "root"})).hexdigest()
        self.path(f"manifests/{sequence:04d}.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


@pytest.fixture
def copy(original: Path, tmp_path: Path) -> Copy:
    target = tmp_path / "site"
    shutil.copytree(original, target, symlinks=True)
    site = target / "tourniquet.yaml"
    site.write_text(site.read_text().replace(str(original), str(target)))
    return Copy(target)


# -- what a forger who read the source would do: re-hash with the same formulas


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def _line(record: dict[str, Any]) -> bytes:
    return _canonical(record) + b"\n"


def _rechain(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    previous = "0" * 64
    out = []
    for number, record in enumerate(records, start=1):
        record = {**record, "seq": number, "prev": previous}
        record.pop("hash", None)
        record["hash"] = hashlib.sha256(_canonical(record)).hexdigest()
        previous = record["hash"]
        out.append(record)
    return out


def _append_chained(copy: Copy, record_type: str, **fields: Any) -> None:
    last = copy.records()[-1]
    record = {"seq": last["seq"] + 1, "time": datetime.now(timezone.utc).isoformat(), "incident": INCIDENT,
              "run": last["run"], "type": record_type, **fields, "prev": last["hash"]}
    record["hash"] = hashlib.sha256(_canonical(record)).hexdigest()
    with copy.path("journal.jsonl").open("ab") as handle:
        handle.write(_line(record))


def _rewrite_anchor_log_without(copy: Copy, incident: str) -> None:
    lines = [json.loads(x) for x in copy.anchors.read_text().splitlines() if x.strip()]
    kept, previous = [], "0" * 64
    for entry in (e for e in lines if e["incident"] != incident):
        entry = {**entry, "prev": previous}
        entry.pop("hash")
        entry["hash"] = hashlib.sha256(_canonical(entry)).hexdigest()
        previous = entry["hash"]
        kept.append(entry)
    copy.anchors.write_bytes(b"".join(_canonical(e) + b"\n" for e in kept))


def _strip_seals(copy: Copy) -> None:
    """Remove the manifests and the 'sealed' records: a bundle as if never sealed, ready to be re-sealed."""
    shutil.rmtree(copy.path("manifests"))
    copy.write_records([r for r in copy.records() if r["type"] != "sealed"])


# -- the tamperings: each returns nothing; the table below says what verify must name

def t_journal_byte_flip(c: Copy) -> None:
    data = bytearray(c.path("journal.jsonl").read_bytes())
    offset = sum(len(x) for x in c.lines()[:4]) + c.lines()[4].index(b'"time":"') + 10
    data[offset] = ord("9") if data[offset] != ord("9") else ord("8")
    c.path("journal.jsonl").write_bytes(bytes(data))


def t_journal_edit_and_rechain(c: Copy) -> None:
    records = c.records()
    applied = next(r for r in records if r.get("outcome") == "applied")
    applied["outcome"] = "failed"
    c.write_records(records)


def t_journal_delete_line(c: Copy) -> None:
    lines = c.lines()
    c.path("journal.jsonl").write_bytes(b"".join(lines[:6] + lines[7:]))


def t_journal_swap_lines(c: Copy) -> None:
    lines = c.lines()
    lines[5], lines[6] = lines[6], lines[5]
    c.path("journal.jsonl").write_bytes(b"".join(lines))


def t_journal_duplicate_line(c: Copy) -> None:
    lines = c.lines()
    c.path("journal.jsonl").write_bytes(b"".join(lines[:8] + [lines[7]] + lines[8:]))


def t_journal_trailing_seal_removed(c: Copy) -> None:
    c.path("journal.jsonl").write_bytes(b"".join(c.lines()[:-1]))


def t_erased_undo(c: Copy) -> None:
    """After undo and its seal: the journal cut back to before the undo, the newest manifest deleted."""
    records = c.records()
    start = next(i for i, r in enumerate(records) if r.get("status") == "undo started")
    c.path("journal.jsonl").write_bytes(b"".join(c.lines()[:start]))
    c.path("manifests/0003.json").unlink()


def t_fake_approval_after_seal(c: Copy) -> None:
    _append_chained(c, "approval", step="lock", status="approved", approver="dr.house", comment="ok")


def t_fake_undone_after_seal(c: Copy) -> None:
    change = next(r for r in c.records() if r.get("outcome") == "applied")
    _append_chained(c, "undo", undoes=change["hash"], status="done", target=change["target"])


def t_journal_duplicate_key(c: Copy) -> None:
    lines = c.lines()
    index = next(i for i, line in enumerate(lines) if b'"outcome":"applied"' in line)
    lines[index] = lines[index].replace(b'"outcome":"applied"', b'"outcome":"failed","outcome":"applied"', 1)
    c.path("journal.jsonl").write_bytes(b"".join(lines))


def t_journal_other_incident_line(c: Copy) -> None:
    records = c.records()
    records[3]["incident"] = OTHER
    c.write_records(records)


def t_journal_non_utf8(c: Copy) -> None:
    lines = c.lines()
    lines[2] = lines[2].replace(b'"type":"', b'"type":"\xff', 1)
    c.path("journal.jsonl").write_bytes(b"".join(lines))


def t_journal_symlink(c: Copy) -> None:
    moved = c.root / "elsewhere.jsonl"
    shutil.move(c.path("journal.jsonl"), moved)
    c.path("journal.jsonl").symlink_to(moved)


def t_journal_deleted(c: Copy) -> None:
    c.path("journal.jsonl").unlink()


def t_journal_last_newline_cut(c: Copy) -> None:
    data = c.path("journal.jsonl").read_bytes()
    c.path("journal.jsonl").write_bytes(data[:-1])


def t_journal_keys_reordered(c: Copy) -> None:
    lines = c.lines()
    lines[4] = (json.dumps(dict(reversed(list(json.loads(lines[4]).items()))), ensure_ascii=False,
                           separators=(",", ":")) + "\n").encode()
    c.path("journal.jsonl").write_bytes(b"".join(lines))


def t_journal_emptied(c: Copy) -> None:
    c.path("journal.jsonl").write_bytes(b"")


def t_journal_blank_line(c: Copy) -> None:
    lines = c.lines()
    c.path("journal.jsonl").write_bytes(b"".join(lines[:3] + [b"\n"] + lines[3:]))


def t_manifest_digest_edited(c: Copy) -> None:
    manifest = c.manifest(1)
    manifest["files"][sorted(manifest["files"])[0]] = "0" * 64
    c.write_manifest(1, manifest, reroot=False)


def t_manifest_edited_and_rerooted(c: Copy) -> None:
    manifest = c.manifest(1)
    manifest["files"][c.snapshot()] = "0" * 64
    c.write_manifest(1, manifest)


def t_newest_manifest_deleted(c: Copy) -> None:
    c.path("manifests/0003.json").unlink()


def t_middle_manifest_deleted(c: Copy) -> None:
    c.path("manifests/0002.json").unlink()


def t_manifests_swapped(c: Copy) -> None:
    one, two = c.path("manifests/0001.json"), c.path("manifests/0002.json")
    one.rename(c.root / "x.json")
    two.rename(one)
    (c.root / "x.json").rename(two)


def t_manifests_stray_file(c: Copy) -> None:
    c.path("manifests/notes.txt").write_text("seal 4 pending")


def t_manifests_subfolder(c: Copy) -> None:
    c.path("manifests/old").mkdir()


def t_manifest_forged_fourth(c: Copy) -> None:
    """A fourth manifest chained correctly to the third, sealing an added snapshot, with no journal record and
    no anchor: it claims the journal ended where the third seal's did, before the third seal's own record."""
    c.path("snapshots/zz-extra.json").write_text("{}")
    manifest = c.manifest(3)
    manifest["sequence"] = 4
    manifest["previous"] = hashlib.sha256(c.path("manifests/0003.json").read_bytes()).hexdigest()
    manifest["files"]["snapshots/zz-extra.json"] = hashlib.sha256(b"{}").hexdigest()
    c.write_manifest(4, manifest)


def t_manifest_duplicate_key(c: Copy) -> None:
    text = c.path("manifests/0002.json").read_text()
    manifest = c.manifest(2)
    c.path("manifests/0002.json").write_text(text.replace('"root": ', f'"root": "{"f" * 64}",\n  "root": ', 1))
    assert json.loads(c.path("manifests/0002.json").read_text()) == manifest, "the last value wins: same meaning?"


def t_manifest_reindented(c: Copy) -> None:
    c.path("manifests/0002.json").write_text(json.dumps(c.manifest(2), sort_keys=True))


def t_manifest_other_incident(c: Copy) -> None:
    manifest = c.manifest(3)
    manifest["incident"] = OTHER
    c.write_manifest(3, manifest)


def t_manifest_truncated(c: Copy) -> None:
    data = c.path("manifests/0002.json").read_bytes()
    c.path("manifests/0002.json").write_bytes(data[: len(data) // 2])


def t_manifest_huge(c: Copy) -> None:
    os.truncate(c.path("manifests/0001.json"), 17 << 20)


def t_snapshot_edited(c: Copy) -> None:
    path = c.path(c.snapshot())
    path.write_text(path.read_text().replace("inetOrgPerson", "person"))


def t_snapshot_removed(c: Copy) -> None:
    c.path(c.snapshot()).unlink()


def t_snapshot_added(c: Copy) -> None:
    c.path("snapshots/extra.json").write_text("{}")


def t_event_removed(c: Copy) -> None:
    path = c.path(c.scope() + "/events.jsonl.gz")
    with gzip.open(path, "rt") as handle:
        lines = handle.readlines()[1:]
    with gzip.open(path, "wt") as handle:
        handle.writelines(lines)


def t_subjects_removed(c: Copy) -> None:
    c.path(c.scope() + "/subjects.csv").unlink()


def t_person_not_warned(c: Copy) -> None:
    path = c.path(c.scope() + "/people-to-warn.csv")
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))


def t_notification_edited(c: Copy) -> None:
    path = c.path(c.scope() + "/notification.md")
    path.write_text(re.sub(r"\*\*\d+ patients\*\*", "**2 patients**", path.read_text()))


def t_scope_figure_edited(c: Copy) -> None:
    path = c.path(c.scope() + "/scope.json")
    scope = json.loads(path.read_text())
    scope["total"]["subjects"] = 1
    path.write_text(json.dumps(scope, indent=2, sort_keys=True) + "\n")


def t_report_edited(c: Copy) -> None:
    path = c.path("report.md")
    path.write_text(path.read_text().replace("completed", "failed"))


def t_stray_file_at_root(c: Copy) -> None:
    c.path("notes.txt").write_text("the owner called")


def t_hidden_file_in_scope(c: Copy) -> None:
    c.path(c.scope() + "/.keep").write_text("")


def t_empty_folder(c: Copy) -> None:
    c.path("snapshots/extra").mkdir()


def t_snapshot_symlink(c: Copy) -> None:
    path = c.path(c.snapshot())
    moved = c.root / "outside.json"
    shutil.copy(path, moved)
    path.unlink()
    path.symlink_to(moved)


def t_scope_folder_renamed(c: Copy) -> None:
    c.path(c.scope()).rename(c.path("scope/20990101T000000Z"))


def t_named_pipe(c: Copy) -> None:
    os.mkfifo(c.path("snapshots/pipe.json"))


def t_scope_removed(c: Copy) -> None:
    shutil.rmtree(c.path("scope"))


def t_temporary_file_added(c: Copy) -> None:
    c.path("snapshots/.zz.json.123.456.tmp").write_text("{}")


def t_torn_file_added(c: Copy) -> None:
    c.path("journal.torn").write_text('{"seq": 99, "type": "change"\n')


def t_folder_swapped_with_other_incident(c: Copy) -> None:
    shutil.rmtree(c.bundle)
    shutil.copytree(c.root / "evidence" / OTHER, c.bundle)


def t_journal_of_other_incident(c: Copy) -> None:
    shutil.copy(c.root / "evidence" / OTHER / "journal.jsonl", c.path("journal.jsonl"))


def t_resealed_with_a_throwaway_anchor_log(c: Copy) -> None:
    """Everything re-hashed consistently with Tourniquet's own seal, against an anchor log of the forger's."""
    from tourniquet.evidence import AnchorLog, seal

    t_snapshot_edited(c)
    _strip_seals(c)
    seal(c.bundle, incident=INCIDENT, anchors=AnchorLog(c.root / "forger"), note="nothing to see")


def t_resealed_and_anchor_log_rewritten(c: Copy) -> None:
    """The same, and the anchor log rewritten without this incident's lines, chained again: only the ticket is left."""
    from tourniquet.evidence import AnchorLog, seal

    t_snapshot_edited(c)
    _strip_seals(c)
    _rewrite_anchor_log_without(c, INCIDENT)
    seal(c.bundle, incident=INCIDENT, anchors=AnchorLog(c.root / "state"), note="nothing to see")


def t_resealed_with_the_tool_including_the_ticket(c: Copy) -> None:
    """The same through `evidence seal` itself: the new root goes on the ticket, but the old ones are there."""
    t_snapshot_edited(c)
    _strip_seals(c)
    _rewrite_anchor_log_without(c, INCIDENT)
    assert main(["evidence", "seal", INCIDENT, "--site", str(c.site)]) == 0


def t_anchor_line_edited(c: Copy) -> None:
    lines = c.anchors.read_text().splitlines(keepends=True)
    index = next(i for i, x in enumerate(lines) if f'"incident":"{INCIDENT}"' in x and '"kind":"seal"' in x)
    lines[index] = re.sub(r'"root":"[0-9a-f]{64}"', f'"root":"{"e" * 64}"', lines[index])
    c.anchors.write_text("".join(lines))


def t_anchor_line_removed(c: Copy) -> None:
    lines = c.anchors.read_text().splitlines(keepends=True)
    index = next(i for i, x in enumerate(lines) if f'"incident":"{INCIDENT}"' in x and '"sequence":2' in x
                 and '"kind":"seal"' in x)
    c.anchors.write_text("".join(lines[:index] + lines[index + 1:]))


def t_anchor_log_deleted(c: Copy) -> None:
    c.anchors.unlink()


def t_anchor_log_tail_cut(c: Copy) -> None:
    """The newest seal's lines cut off the end of the anchor log: it looks like an interrupted seal, but
    the ticket carries that root, and a seal puts its root on the ticket only after its anchor line."""
    lines = c.anchors.read_text().splitlines(keepends=True)
    c.anchors.write_text("".join(lines[:-2]))


def t_ticket_seal_comment_removed(c: Copy) -> None:
    [path] = sorted((c.root / "tickets").glob(f"{INCIDENT}-*.json"))
    ticket = json.loads(path.read_text())
    ticket["comments"] = [x for x in ticket["comments"] if "seal 0002" not in x["text"]]
    path.write_text(json.dumps(ticket, indent=2))


def t_ticket_seal_root_edited(c: Copy) -> None:
    [path] = sorted((c.root / "tickets").glob(f"{INCIDENT}-*.json"))
    ticket = json.loads(path.read_text())
    for comment in ticket["comments"]:
        if "seal 0003" in comment["text"]:
            comment["text"] = re.sub(r"root: [0-9a-f]{64}", "root: " + "d" * 64, comment["text"])
    path.write_text(json.dumps(ticket, indent=2))


Tamper = Callable[[Copy], None]
#: tampering → (what verify's output must name, exit code: 1 tampered, 3 records after the last seal)
TAMPERINGS: list[tuple[Tamper, str, int]] = [
    (t_journal_byte_flip, "TAMPERED journal.jsonl: line 5", 1),
    (t_journal_edit_and_rechain, "TAMPERED journal.jsonl: its first", 1),
    (t_journal_delete_line, "TAMPERED journal.jsonl: line 7", 1),
    (t_journal_swap_lines, "TAMPERED journal.jsonl: line 6", 1),
    (t_journal_duplicate_line, "TAMPERED journal.jsonl: line 9", 1),
    (t_journal_trailing_seal_removed, "TAMPERED journal.jsonl: the 'sealed' record of manifests/0003.json is missing", 1),
    (t_erased_undo, "TAMPERED manifests/0003.json: missing", 1),
    (t_fake_approval_after_seal, "UNSEALED journal.jsonl: line", 3),
    (t_fake_undone_after_seal, "UNSEALED journal.jsonl: line", 3),
    (t_journal_duplicate_key, "TAMPERED journal.jsonl: line", 1),
    (t_journal_other_incident_line, "TAMPERED journal.jsonl: line 4: name incident 'INC-2043'", 1),
    (t_journal_non_utf8, "TAMPERED journal.jsonl: line 3: not UTF-8", 1),
    (t_journal_symlink, "TAMPERED journal.jsonl: a symbolic link", 1),
    (t_journal_deleted, "TAMPERED journal.jsonl: removed", 1),
    (t_journal_last_newline_cut, "TAMPERED journal.jsonl: ", 1),
    (t_journal_keys_reordered, "TAMPERED journal.jsonl: its first", 1),
    (t_journal_emptied, "TAMPERED journal.jsonl: 0 bytes: shorter", 1),
    (t_journal_blank_line, "TAMPERED journal.jsonl: its first", 1),
    (t_manifest_digest_edited, "TAMPERED manifests/0001.json: content does not match its root hash", 1),
    (t_manifest_edited_and_rerooted, "TAMPERED manifests/0001.json: differs from the seal the anchor log pins", 1),
    (t_newest_manifest_deleted, "TAMPERED manifests/0003.json: missing", 1),
    (t_middle_manifest_deleted, "TAMPERED manifests/0002.json: missing", 1),
    (t_manifests_swapped, "TAMPERED manifests/0001.json: says it is seal 2", 1),
    (t_manifests_stray_file, "TAMPERED manifests/notes.txt: not a file Tourniquet writes", 1),
    (t_manifests_subfolder, "TAMPERED manifests/old/: a folder Tourniquet does not write", 1),
    (t_manifest_forged_fourth, "the 'sealed' record of manifests/0003.json is out of place", 1),
    (t_manifest_duplicate_key, "TAMPERED manifests/0002.json: not a manifest: duplicate key 'root'", 1),
    (t_manifest_reindented, "TAMPERED manifests/0002.json: differs from the seal the anchor log pins", 1),
    (t_manifest_other_incident, "TAMPERED manifests/0003.json: names incident 'INC-2043'", 1),
    (t_manifest_truncated, "TAMPERED manifests/0002.json: not a manifest", 1),
    (t_manifest_huge, "TAMPERED manifests/0001.json: larger than", 1),
    (t_snapshot_edited, "TAMPERED snapshots/", 1),
    (t_snapshot_removed, "TAMPERED snapshots/", 1),
    (t_snapshot_added, "TAMPERED snapshots/extra.json: added after the last seal", 1),
    (t_event_removed, "TAMPERED scope/", 1),
    (t_subjects_removed, "TAMPERED scope/", 1),
    (t_person_not_warned, "TAMPERED scope/", 1),
    (t_notification_edited, "TAMPERED scope/", 1),
    (t_scope_figure_edited, "TAMPERED scope/", 1),
    (t_report_edited, "TAMPERED report.md: content changed", 1),
    (t_stray_file_at_root, "TAMPERED notes.txt: not a file Tourniquet writes", 1),
    (t_hidden_file_in_scope, "TAMPERED scope/", 1),
    (t_empty_folder, "TAMPERED snapshots/extra/: a folder", 1),
    (t_snapshot_symlink, "TAMPERED snapshots/", 1),
    (t_scope_folder_renamed, "TAMPERED scope/20990101T000000Z/", 1),
    (t_named_pipe, "TAMPERED snapshots/pipe.json: a special file", 1),
    (t_scope_removed, "TAMPERED scope/", 1),
    (t_temporary_file_added, "UNSEALED snapshots/.zz.json.123.456.tmp: a temporary file left by an interrupted "
                             "write", 3),
    (t_torn_file_added, "UNSEALED journal.torn: a half-written journal line", 3),
    (t_folder_swapped_with_other_incident, "TAMPERED manifests/0001.json: names incident 'INC-2043'", 1),
    (t_journal_of_other_incident, "TAMPERED journal.jsonl: ", 1),
    (t_resealed_with_a_throwaway_anchor_log, "TAMPERED manifests/0001.json: differs from the seal the anchor log", 1),
    (t_resealed_and_anchor_log_rewritten, "TAMPERED ticket INC-2042-1: carries root", 1),
    (t_resealed_with_the_tool_including_the_ticket, "TAMPERED ticket INC-2042-1: carries root", 1),
    (t_anchor_line_edited, "TAMPERED {anchors}: line", 1),
    (t_anchor_line_removed, "TAMPERED manifests/0002.json: not in the anchor log", 1),
    (t_anchor_log_deleted, "TAMPERED {anchors}: missing", 1),
    (t_anchor_log_tail_cut, "TAMPERED {anchors}: has no line for manifests/0003.json", 1),
    (t_ticket_seal_comment_removed, "TAMPERED manifests/0002.json: ticket: the file ticket INC-2042-1 does not carry", 1),
    (t_ticket_seal_root_edited, "TAMPERED ticket INC-2042-1: carries root dddd", 1),
]


def test_there_are_at_least_forty_distinct_tamperings() -> None:
    assert len({t.__name__ for t, _, _ in TAMPERINGS}) == len(TAMPERINGS) >= 40


@pytest.mark.parametrize(("tamper", "named", "code"), TAMPERINGS, ids=[t.__name__[2:] for t, _, _ in TAMPERINGS])
def test_each_tampering_is_named(tamper: Tamper, named: str, code: int, copy: Copy,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    print_verdict = os.environ.get("TOURNIQUET_SHOW_VERDICTS")
    tamper(copy)
    capsys.readouterr()

    exit_code = main(["evidence", "verify", INCIDENT, "--site", str(copy.site)])

    out = capsys.readouterr().out
    if print_verdict:
        with capsys.disabled():
            print(f"\n--- {tamper.__name__}: exit {exit_code}\n{out}")
    assert exit_code == code, out
    assert named.format(anchors=copy.anchors) in out, out
    assert "Traceback" not in out


def _touch_everything(c: Copy) -> None:
    for path in c.bundle.rglob("*"):
        os.utime(path, (1_000_000_000, 1_000_000_000))


def _change_permissions(c: Copy) -> None:
    for path in c.bundle.rglob("*"):
        if path.is_file():
            path.chmod(0o400)


def _nothing(c: Copy) -> None:
    return None


@pytest.mark.parametrize("harmless", [_nothing, _touch_everything, _change_permissions])
def test_copies_times_and_permissions_change_no_meaning(harmless: Tamper, copy: Copy,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    harmless(copy)

    assert main(["evidence", "verify", INCIDENT, "--site", str(copy.site)]) == 0, capsys.readouterr().out
    assert "intact" in capsys.readouterr().out


def test_a_reviewed_tail_is_sealed_and_its_root_goes_on_the_ticket(copy: Copy,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A run killed after its first records (no seal): verify says NOT SEALED (3), seal after review clears it."""
    _append_chained(copy, "run", status="started", playbook="credential-misuse")
    _append_chained(copy, "intent", step="lock", target="someone", operation="lock")
    assert main(["evidence", "verify", INCIDENT, "--site", str(copy.site)]) == 3
    assert "NOT SEALED" in capsys.readouterr().out

    assert main(["evidence", "seal", INCIDENT, "--site", str(copy.site), "--note", "reviewed: killed run"]) == 0
    assert "sealed   journal.jsonl: lines" in capsys.readouterr().out

    assert main(["evidence", "verify", INCIDENT, "--site", str(copy.site)]) == 0
    assert _ticket_roots(copy.root, INCIDENT)[-1] == _newest_root(copy.root, INCIDENT)


@pytest.mark.parametrize("killed", ["before its journal record", "before its anchor line"])
def test_an_interrupted_seal_is_completed_by_the_next(killed: str, copy: Copy, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A real seal killed after writing manifest 0004: not sealed (3); the next seal completes it."""
    import importlib

    from tourniquet.evidence import AnchorLog, SealFailed, seal

    sealing = importlib.import_module("tourniquet.evidence.seal")
    _append_chained(copy, "note", message="late note")
    with monkeypatch.context() as patch:
        if killed == "before its journal record":
            write = sealing.Journal.write

            def no_sealed_record(self: Any, record_type: str, /, **fields: Any) -> Any:
                if record_type == "sealed":
                    raise OSError(5, "Input/output error")
                return write(self, record_type, **fields)

            patch.setattr(sealing.Journal, "write", no_sealed_record)
        else:
            patch.setattr(sealing, "_anchor", lambda *args, **kwargs: (_ for _ in ()).throw(OSError(5, "I/O error")))
        with pytest.raises(SealFailed, match="manifest 0004.json written"):
            seal(copy.bundle, incident=INCIDENT, anchors=AnchorLog(copy.root / "state"), note="killed")
    assert AnchorLog(copy.root / "state").read(INCIDENT).seals.keys() == {1, 2, 3}
    root = copy.manifest(4)["root"]

    assert main(["evidence", "verify", INCIDENT, "--site", str(copy.site)]) == 3
    assert "UNSEALED manifests/0004.json: the seal was interrupted" in capsys.readouterr().out

    assert main(["evidence", "seal", INCIDENT, "--site", str(copy.site)]) == 0
    assert "completed the interrupted seal manifests/0004.json" in capsys.readouterr().out
    assert main(["evidence", "verify", INCIDENT, "--site", str(copy.site)]) == 0
    assert _ticket_roots(copy.root, INCIDENT)[-2:] == [root, _newest_root(copy.root, INCIDENT)]


def _forge_fourth_seal(copy: Copy, *, sealed_record: bool) -> dict[str, Any]:
    """What a forger who read the source writes: a record, the next manifest over it, its 'sealed' record."""
    from tourniquet.evidence.seal import _write_whole

    _append_chained(copy, "approval", step="lock", status="approved", approver="dr-rssi", comment="by phone")
    manifest = copy.manifest(3)
    manifest.update(sequence=4, previous=hashlib.sha256(copy.path("manifests/0003.json").read_bytes()).hexdigest())
    manifest["journal"] = {"records": copy.records()[-1]["seq"], "last_hash": copy.records()[-1]["hash"]}
    journal = copy.path("journal.jsonl")
    manifest["append_only"] = {"journal.jsonl": {"bytes": journal.stat().st_size,
                                                 "sha256": hashlib.sha256(journal.read_bytes()).hexdigest()}}
    manifest["root"] = hashlib.sha256(_canonical({k: v for k, v in manifest.items() if k != "root"})).hexdigest()
    _write_whole(copy.path("manifests/0004.json"), (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    if sealed_record:
        _append_chained(copy, "sealed", manifest="manifests/0004.json", sequence=4, root=manifest["root"])
    return manifest


@pytest.mark.parametrize("sealed_record", [False, True], ids=["manifest", "manifest-and-sealed-record"])
def test_a_forged_next_seal_is_named_and_evidence_seal_refuses_to_complete_it(
        sealed_record: bool, copy: Copy, capsys: pytest.CaptureFixture[str]) -> None:
    """It looks like an interrupted seal, but no seal ever began: TAMPERED, naming the manifest, its record
    and the record it alone seals; `evidence seal` refuses (nothing written), so it can never verify intact."""
    forged = copy.records()[-1]["seq"] + 1
    _forge_fourth_seal(copy, sealed_record=sealed_record)
    capsys.readouterr()

    assert main(["evidence", "verify", INCIDENT, "--site", str(copy.site)]) == 1

    out = capsys.readouterr().out
    assert "TAMPERED manifests/0004.json: not anchored, and the anchor log" in out and "(forged)" in out, out
    assert any(line.startswith(f"TAMPERED journal.jsonl: record {forged}") and "sealed only by the forged" in line
               for line in out.splitlines()), out
    if sealed_record:
        assert "the 'sealed' record of manifests/0004.json is forged" in out, out
    assert "the seal was interrupted" not in out and "`evidence seal` completes it" not in out

    written = {p: p.read_bytes() for p in [*copy.bundle.rglob("*.json*"), copy.anchors] if p.is_file()}
    assert main(["evidence", "seal", INCIDENT, "--site", str(copy.site)]) == 1
    refused = capsys.readouterr()
    assert "refusing to seal" in refused.out + refused.err and "manifests/0004.json" in refused.out + refused.err
    assert {p: p.read_bytes() for p in [*copy.bundle.rglob("*.json*"), copy.anchors] if p.is_file()} == written
    assert main(["evidence", "verify", INCIDENT, "--site", str(copy.site)]) == 1


def test_evidence_seal_refuses_to_seal_over_a_journal_that_does_not_verify(
        copy: Copy, capsys: pytest.CaptureFixture[str]) -> None:
    t_journal_edit_and_rechain(copy)
    written = copy.path("journal.jsonl").read_bytes(), sorted(copy.path("manifests").iterdir())

    assert main(["evidence", "seal", INCIDENT, "--site", str(copy.site), "--note", "nothing to see"]) == 1

    out, err = capsys.readouterr()
    assert "refusing to seal" in out + err and "journal.jsonl" in out + err, out + err
    assert (copy.path("journal.jsonl").read_bytes(), sorted(copy.path("manifests").iterdir())) == written
