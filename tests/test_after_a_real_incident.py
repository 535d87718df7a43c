"""After a real incident: `undo` cannot give the accounts back as the attacker left them, and `recover`
hands over a password only when it gives one, never over the owner's own (real slapd).

The credential-misuse playbook contains a practitioner; the investigation concludes it was real
(phishing). `undo` (and `reinstate`) is then refused with nothing changed — directory, journal, ticket — unless a named
person says it was a false alarm after all (journaled). A refused `recover` leaves no password file;
a successful one writes it, reports the unlock the one-time password made (OpenLDAP lifts the lock
when an administrator sets a password); a second `recover` after the owner chose a new password is
refused without `--replace-owner-password`, and the owner's password still works.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import LdapAdmin, bind_result
from tourniquet.cli import incident as incident_cli
from tourniquet.cli.main import main
from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import Slapd
from tourniquet.engine.execute import execute_playbook
from tourniquet.journal import read_journal


def _contain(site_file: Path, uid: str) -> str:
    summary = execute_playbook("credential-misuse", {"accounts": [uid]}, dry_run=False, site=str(site_file))
    assert summary.status == "completed", summary.error
    return summary.incident


def _journal(tmp_path: Path, incident: str) -> list[dict]:
    return list(read_journal(tmp_path / "evidence" / incident / "journal.jsonl"))


def _tickets(tmp_path: Path) -> str:
    return "\n".join(p.read_text() for p in sorted((tmp_path / "tickets").glob("*.json")))


def test_undo_of_an_incident_concluded_as_real_is_refused_unless_someone_named_says_otherwise(
        site_file: Path, practitioners: Directory, ldap_admin: LdapAdmin, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    owner = practitioners.practitioners[30]
    incident = _contain(site_file, owner.uid)
    assert main(["conclude", incident, "--by", "dr-rssi", "--finding", "real: phishing",
                 "--site", str(site_file)]) == 0
    before, records, tickets = ldap_admin.dump(), len(_journal(tmp_path, incident)), _tickets(tmp_path)
    capsys.readouterr()

    assert main(["undo", incident, "--site", str(site_file)]) == 1

    err = capsys.readouterr().err
    assert f"incident {incident} was concluded as real by 'dr-rssi' ('real: phishing')" in err, err
    assert "Nothing was changed" in err and "--false-alarm-after-all --by NAME" in err
    assert ldap_admin.dump() == before, "still locked, still scrambled"
    assert len(_journal(tmp_path, incident)) == records and _tickets(tmp_path) == tickets

    assert main(["reinstate", incident, "--site", str(site_file)]) == 1, "reinstate is a false-alarm path too"
    assert "was concluded as real" in capsys.readouterr().err
    assert ldap_admin.dump() == before and len(_journal(tmp_path, incident)) == records

    assert main(["undo", incident, "--false-alarm-after-all", "--site", str(site_file)]) == 2
    assert "needs --by NAME" in capsys.readouterr().err
    assert ldap_admin.dump() == before

    assert main(["undo", incident, "--false-alarm-after-all", "--by", "Dr Martin (DPO)",
                 "--site", str(site_file)]) == 0
    reopened = [r for r in _journal(tmp_path, incident) if r["type"] == "investigation" and r["status"] == "reopened"]
    assert [(r["by"], r["verdict"], r["concluded_by"]) for r in reopened] == [
        ("Dr Martin (DPO)", "false alarm after all", "dr-rssi")]
    assert "pwdAccountLockedTime" not in ldap_admin.attributes(owner.dn, ["pwdAccountLockedTime"])
    assert main(["evidence", "verify", incident, "--site", str(site_file)]) == 0


def test_recover_writes_its_password_file_only_when_it_hands_one_over_and_never_over_the_owners_own(
        site_file: Path, slapd: Slapd, practitioners: Directory, ldap_admin: LdapAdmin, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    owner, other = practitioners.practitioners[31], practitioners.practitioners[32]
    incident = _contain(site_file, owner.uid)
    assert main(["conclude", incident, "--by", "dr-rssi", "--finding", "real: phishing",
                 "--site", str(site_file)]) == 0
    refused_file = tmp_path / "refused-otp.txt"

    assert main(["recover", incident, "--account", other.uid, "--password-file", str(refused_file),
                 "--site", str(site_file)]) == 1
    assert not refused_file.exists(), "a refused recover leaves no (empty) password file"

    password_file = tmp_path / "otp.txt"
    assert main(["recover", incident, "--account", owner.uid, "--password-file", str(password_file),
                 "--site", str(site_file)]) == 0
    capsys.readouterr()
    account, otp = password_file.read_text().strip().split("\t")
    assert account == owner.uid
    assert "pwdAccountLockedTime" not in ldap_admin.attributes(owner.dn, ["pwdAccountLockedTime"])
    unlocks = [r for r in _journal(tmp_path, incident) if r["type"] == "change" and r["operation"] == "unlock"
               and r["target"] == owner.uid]
    assert [r["outcome"] for r in unlocks] == ["applied", "noop"], "the one-time password unlocked it: said so"
    assert unlocks[0]["before"] != unlocks[0]["after"]
    report = next((tmp_path / "evidence" / incident / "recover").glob("*.md")).read_text()
    assert any("| applied | unlock |" in line and owner.uid in line for line in report.splitlines()), report

    # the owner chooses their own password; a second recover must not silently replace it
    ldap_admin.connection.extend.standard.modify_password(owner.dn, None, "the-owner-chose-this-7")
    second = tmp_path / "otp-again.txt"
    monkeypatch.setattr(incident_cli, "_is_terminal", lambda: True)
    assert main(["recover", incident, "--account", owner.uid, "--password-file", str(second),
                 "--site", str(site_file)]) == 1
    err = capsys.readouterr().err
    assert f"{owner.uid} was already given back by this incident" in err and "--replace-owner-password" in err, err
    assert not second.exists()
    assert bind_result(slapd, owner.dn, "the-owner-chose-this-7") == "success", "the owner's password still works"

    assert main(["recover", incident, "--account", owner.uid, "--password-file", str(second),
                 "--replace-owner-password", "--site", str(site_file)]) == 0
    assert second.read_text().startswith(owner.uid + "\t")
    asked = [r for r in _journal(tmp_path, incident) if r["type"] == "replace_owner_password"]
    assert [r["accounts"] for r in asked] == [[owner.uid]]
    assert main(["evidence", "verify", incident, "--site", str(site_file)]) == 0
    assert json.loads(json.dumps(asked))  # journaled as plain JSON
