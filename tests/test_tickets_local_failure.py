"""A tickets folder that cannot be written (read-only, full) is a ticket system that is down.

Real file systems, as in ``test_evidence_storage``: the file ticket store on a tmpfs mounted
read-only, then on one with no room left. The containment goes on, every ticket write waits in the
outbox (``state_dir``, writable), the run says so — "waiting in the outbox", the folder's own error —
never ``OSError … at pathlib.py``. Once the folder is writable the outbox delivers the one ticket.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import write_site
from tests.helpers import LdapAdmin, mount_tmpfs
from tourniquet.cli.main import main
from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import Slapd
from tourniquet.engine.execute import execute_playbook
from tourniquet.journal import read_journal


@pytest.fixture
def tickets_disk(tmp_path: Path) -> Iterator[Path]:
    target = tmp_path / "tickets"
    mount_tmpfs(target, "size=256k,mode=0755")
    yield target
    subprocess.run(["umount", "-l", str(target)], check=False)


def _fill(disk: Path) -> None:
    stats = os.statvfs(disk)
    with (disk / "filler").open("wb") as handle:
        try:
            handle.write(b"\0" * (stats.f_bavail * stats.f_frsize))
        except OSError:
            pass


@pytest.mark.parametrize("why", ["read-only", "full"])
def test_a_tickets_folder_that_cannot_be_written_queues_in_the_outbox_and_the_run_says_so(
        why: str, tickets_disk: Path, tmp_path: Path, slapd: Slapd, practitioners: Directory,
        ldap_admin: LdapAdmin, capsys: pytest.CaptureFixture[str]) -> None:
    if why == "read-only":
        subprocess.run(["mount", "-o", "remount,ro", str(tickets_disk)], check=True)
    else:
        _fill(tickets_disk)
    site = write_site(tmp_path, slapd, practitioners, tickets={"kind": "file", "path": str(tickets_disk)})
    suspect = practitioners.practitioners[12]
    try:
        summary = execute_playbook("credential-misuse", {"accounts": [suspect.uid]}, dry_run=False, site=str(site))

        assert summary.status == "completed", summary.error
        assert summary.steps["ticket"] == "completed" and summary.steps["ticket_update"] == "completed"
        assert ldap_admin.attributes(suspect.dn, ["pwdAccountLockedTime"]).get("pwdAccountLockedTime")
        records = list(read_journal(tmp_path / "evidence" / summary.incident / "journal.jsonl"))
        queued = [r for r in records if r["type"] == "ticket" and r.get("status") == "queued"]
        assert len(queued) >= 2, [r for r in records if r["type"] == "ticket"]
        reason = "Read-only file system" if why == "read-only" else "No space left on device"
        assert all(f"the tickets folder {tickets_disk} cannot be written: {reason}" in r["error"] for r in queued)
        assert not any("pathlib.py" in json.dumps(r) or "OSError" in json.dumps(r) for r in records)
        assert not list(tickets_disk.glob("*.json")), "nothing could be written there"

        capsys.readouterr()
        assert main(["outbox", "--site", str(site)]) in (0, 1)
        waiting = capsys.readouterr().out
        assert summary.incident in waiting and reason in waiting, waiting

        if why == "read-only":
            subprocess.run(["mount", "-o", "remount,rw", str(tickets_disk)], check=True)
        else:
            (tickets_disk / "filler").unlink()
        assert main(["outbox", "--deliver", "--site", str(site)]) == 0, capsys.readouterr()
        [ticket] = [json.loads(p.read_text()) for p in tickets_disk.glob("*.json")]
        assert ticket["key"] == summary.incident and suspect.uid in ticket["body"] + json.dumps(ticket["comments"])
    finally:
        ldap_admin.reset_all(practitioners)
