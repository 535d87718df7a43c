"""The evidence folder is read-only, or the disk fills up in the middle of a containment.

Real file systems, not mocks: a tmpfs mounted read-only, and a tmpfs with a few kilobytes left.
``tourniquet run`` must end with a ``FAILED:`` line saying why (the file system's own words), what
was done before it stopped (the directory changes, checked against the directory itself) and what
was not — never a traceback. Once space is back, verify says the bundle is not sealed and
``evidence seal`` seals it. Mounting needs root (CI runs as root); elsewhere these tests skip.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import write_site
from tests.helpers import LdapAdmin, mount_tmpfs
from tourniquet.cli.main import main
from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import Slapd

PLAYBOOK = str(Path(__file__).resolve().parents[1] / "playbooks" / "credential-misuse.yaml")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    target = tmp_path / "disk"
    mount_tmpfs(target, "size=512k,mode=0755")
    yield target
    subprocess.run(["umount", "-l", str(target)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    """Fill the file system up to ``leave`` bytes free."""
    stats = os.statvfs(disk)
    free = stats.f_bavail * stats.f_frsize
    filler = disk / "filler"
    with filler.open("wb") as handle:
        handle.write(b"\0" * max(0, free - leave))
    return filler


def _tourniquet(*argv: str) -> tuple[int, str]:
    """The CLI as a responder runs it: a process of its own, against the test Prefect server."""
    from prefect.settings import PREFECT_API_URL

    result = subprocess.run([sys.executable, "-m", "tourniquet.cli.main", *argv], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())})
    return result.returncode, result.stdout + result.stderr


def _locked(admin: LdapAdmin, dn: str) -> bool:
    return bool(admin.attributes(dn, ["pwdAccountLockedTime"]).get("pwdAccountLockedTime"))


def test_a_read_only_evidence_folder_fails_the_run_before_anything_changes(
    prefect_harness: None, small_disk: Path, tmp_path: Path, slapd: Slapd, practitioners: Directory,
    ldap_admin: LdapAdmin,
) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    site = write_site(tmp_path, slapd, practitioners, evidence_dir=str(small_disk / "evidence"))
    suspects = [practitioners.practitioners[i] for i in (7, 8)]
    try:
        code, err = _tourniquet("run", PLAYBOOK, "--site", str(site), "-i",
                                "accounts=" + ",".join(p.uid for p in suspects))
        assert code == 1, err
        assert "FAILED: " in err and "Read-only file system" in err and "Traceback" not in err
        assert "nothing was done: the run did not start" in err
        assert not any(_locked(ldap_admin, p.dn) for p in suspects), "nothing changed, as it says"
    finally:
        ldap_admin.reset_all(practitioners)


@pytest.mark.parametrize("room", [6_000, 45_000])
def test_a_full_disk_in_the_middle_of_a_run_says_what_was_done_and_what_was_not(
    room: int, prefect_harness: None, small_disk: Path, tmp_path: Path, slapd: Slapd, practitioners: Directory,
    ldap_admin: LdapAdmin,
) -> None:
    """The disk fills up at a different moment for each ``room`` left: before any change (6 kB), after the
    locks and password resets (45 kB: the message lists each one, and the directory agrees)."""
    site = write_site(tmp_path, slapd, practitioners, evidence_dir=str(small_disk / "evidence"))
    suspects = [practitioners.practitioners[i] for i in (40, 41, 42, 43)]
    filler = _fill(small_disk, leave=room)
    try:
        code, err = _tourniquet("run", PLAYBOOK, "--site", str(site), "--incident", "INC-FULL",
                                "-i", "accounts=" + ",".join(p.uid for p in suspects))
        assert code == 1, err
        assert "No space left on device" in err and "Traceback" not in err, err
        [failed] = [line for line in err.splitlines() if line.startswith("FAILED: ")]
        assert "done: " in failed and "; not done: " in failed, failed
        done = failed.split("; not done: ")[0]
        named = set(re.findall(r"\block (\S+?)[,);]", done))
        for person in suspects:  # what the directory shows changed, the message names — and nothing more
            assert _locked(ldap_admin, person.dn) == (person.uid in named), (person.uid, failed)

        if room > 6_000:
            assert "lock" in done and "not done: steps " in failed, "it stopped in the middle, and says where"
        filler.unlink()  # space is back: the bundle was never sealed; a person reads the journal, then seals it
        assert main(["evidence", "verify", "INC-FULL", "--site", str(site)]) == 3
        assert main(["evidence", "seal", "INC-FULL", "--site", str(site), "--note", "disk was full"]) == 0
        assert main(["evidence", "verify", "INC-FULL", "--site", str(site)]) == 0
    finally:
        ldap_admin.reset_all(practitioners)
