"""A real incident is over: the practitioner gets the account back, safely, on a real slapd.

The credential-misuse playbook contained the account (password scrambled, locked). ``recover``
sets a one-time password shown once to the operator: it binds only to change the password, after
which the owner's new password works. Recover is refused for an account the incident did not
contain, while the investigation is open without an approval, for a protected account, and above
the blast radius without approval — each time with nothing changed. The one-time password never
reaches the logs, the journal, the evidence, the ticket or (``test_recover_flow_…``) the database
of a real Prefect test server; masking is switched off, so "never there" is not "masked".
"""

from __future__ import annotations

import logging
import os
import re
import stat
import time
from pathlib import Path

import ldap3
import pytest
import yaml

from tests.helpers import LdapAdmin, bind_result
from tourniquet import journal as journal_module
from tourniquet import logs as logs_module
from tourniquet.cli import incident as incident_cli
from tourniquet.cli.main import main
from tourniquet.config import load_site
from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import Slapd
from tourniquet.engine.execute import execute_playbook
from tourniquet.engine.recover import conclude_investigation, fixed_approver, recover_accounts
from tourniquet.errors import ApprovalRejected
from tourniquet.flows.recover import recover  # imports Prefect, whose logging set-up must come before caplog's
from tourniquet.handover import handover
from tourniquet.journal import read_journal
from tourniquet.site import Site

pytestmark = pytest.mark.usefixtures("each_transport")

SHOWN = re.compile(r"^  (\S+): (\S{4}-\S{4}-\S{4}-\S{4})$", re.MULTILINE)


def _contain(site_file: Path, *people: object) -> str:
    summary = execute_playbook("credential-misuse", {"accounts": [p.uid for p in people]},  # type: ignore[attr-defined]
                               dry_run=False, site=str(site_file))
    assert summary.status == "completed", summary.error
    return summary.incident


def _search(slapd: Slapd, dn: str, password: str) -> tuple[str, str]:
    """(bind result, what a search then gets): a reset password binds but every search is refused."""
    connection = ldap3.Connection(ldap3.Server(slapd.url, connect_timeout=5), dn, password, receive_timeout=5)
    if not connection.bind():
        return str(connection.result["description"]), ""
    connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["cn"])
    searched = str(connection.result["description"])
    connection.unbind()
    return "success", searched


def _change_own_password(slapd: Slapd, dn: str, old: str, new: str) -> str:
    connection = ldap3.Connection(ldap3.Server(slapd.url, connect_timeout=5), dn, old, auto_bind=True)
    connection.extend.standard.modify_password(dn, old, new)
    outcome = str(connection.result["description"])
    connection.unbind()
    return outcome


def _everything_written(tmp_path: Path) -> str:
    """Every file under the test's folder (evidence, tickets, state, plans), as text."""
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in tmp_path.rglob("*") if p.is_file())


@pytest.fixture
def unmasked(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    monkeypatch.setattr(journal_module, "mask", lambda text: text)
    monkeypatch.setattr(logs_module, "mask", lambda text: text)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="tourniquet")
    return caplog


def test_the_one_time_password_only_changes_the_password_then_the_new_one_works(
    site_file: Path, slapd: Slapd, practitioners: Directory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], unmasked: pytest.LogCaptureFixture,
) -> None:
    owner = practitioners.practitioners[44]
    incident = _contain(site_file, owner)
    assert main(["conclude", incident, "--by", "dr-rssi", "--finding", "phishing, password reused",
                 "--site", str(site_file)]) == 0
    monkeypatch.setattr(incident_cli, "_is_terminal", lambda: True)
    capsys.readouterr()

    assert main(["recover", incident, "--account", owner.uid, "--operator", "helpdesk-3", "--site", str(site_file)]) == 0

    out, err = capsys.readouterr()
    shown = SHOWN.findall(out)
    assert [account for account, _ in shown] == [owner.uid]
    otp = shown[0][1]
    assert out.count(otp) == 1 and otp not in err, "shown once, on the terminal only"
    assert bind_result(slapd, owner.dn, owner.password) == "invalidCredentials", "the stolen password is still dead"
    assert _search(slapd, owner.dn, otp) == ("success", "insufficientAccessRights"), "binds only to change it"
    assert _change_own_password(slapd, owner.dn, otp, "the-owner-chose-this-1") == "success"
    assert _search(slapd, owner.dn, "the-owner-chose-this-1") == ("success", "success")
    assert bind_result(slapd, owner.dn, otp) == "invalidCredentials", "one time only"

    logged = "\n".join(r.getMessage() for r in unmasked.records)
    assert "change.applied" in logged
    assert otp not in logged and otp not in _everything_written(tmp_path)
    records = list(read_journal(tmp_path / "evidence" / incident / "journal.jsonl"))
    handed = [r for r in records if r["type"] == "handover"]
    assert [(r["account"], r["where"]) for r in handed] == [(owner.uid, "shown once on the operator's terminal")]
    ticket = _everything_written(tmp_path / "tickets")
    assert "Given back to its owner by helpdesk-3: 1 of 1 accounts given back." in ticket
    assert f"given back: {owner.uid}" in ticket and "not on this ticket" in ticket
    report = next((tmp_path / "evidence" / incident / "recover").glob("*.md")).read_text()
    assert "set_one_time_password" in report and "one-time, given to the operator" in report
    assert main(["evidence", "verify", incident, "--site", str(site_file)]) == 0


def test_recover_is_refused_for_an_account_the_incident_did_not_contain(
    site_file: Path, practitioners: Directory, ldap_admin: LdapAdmin, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    contained, other = practitioners.practitioners[45], practitioners.practitioners[46]
    incident = _contain(site_file, contained)
    before = ldap_admin.dump()
    password_file = tmp_path / "otp.txt"

    assert main(["recover", incident, "--account", other.uid, "--approved-by", "dr-rssi",
                 "--password-file", str(password_file), "--site", str(site_file)]) == 1

    assert f"{other.uid!r} ({other.uid}) was not contained by incident {incident}" in capsys.readouterr().err
    assert ldap_admin.dump() == before
    assert not password_file.exists(), "a refused recover leaves no password file"
    assert main(["recover", "inc-that-never-was", "--account", contained.uid, "--password-file",
                 str(tmp_path / "otp2.txt"), "--site", str(site_file)]) == 1
    assert "no journal for incident 'inc-that-never-was'" in capsys.readouterr().err


def test_recover_while_under_investigation_needs_a_named_approval(
    site_file: Path, slapd: Slapd, practitioners: Directory, ldap_admin: LdapAdmin, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    owner = practitioners.practitioners[47]
    incident = _contain(site_file, owner)
    before = ldap_admin.dump()

    assert main(["recover", incident, "--account", owner.uid, "--password-file", str(tmp_path / "a.txt"),
                 "--site", str(site_file)]) == 1
    assert "still under investigation" in capsys.readouterr().err
    assert ldap_admin.dump() == before

    password_file = tmp_path / "b.txt"
    assert main(["recover", incident, "--account", owner.uid, "--approved-by", "dr-rssi", "--comment",
                 "ticket 4521: owner called back", "--password-file", str(password_file),
                 "--site", str(site_file)]) == 0
    assert stat.S_IMODE(os.stat(password_file).st_mode) == 0o600
    account, otp = password_file.read_text().strip().split("\t")
    assert account == owner.uid and otp not in capsys.readouterr().out
    assert _search(slapd, owner.dn, otp) == ("success", "insufficientAccessRights")
    approvals = [r for r in read_journal(tmp_path / "evidence" / incident / "journal.jsonl")
                 if r["type"] == "approval" and r.get("step") == "investigation"]
    assert [(a["status"], a.get("approver")) for a in approvals] == [
        ("requested", None), ("rejected", ""), ("requested", None), ("approved", "dr-rssi")]
    assert main(["recover", incident, "--account", owner.uid, "--approved-by", "x", "--password-file",
                 str(password_file), "--site", str(site_file)]) == 1, "an existing file is never overwritten"
    assert "already exists" in capsys.readouterr().err


def test_protected_accounts_and_the_blast_radius_apply_to_recover(
    site_file: Path, practitioners: Directory, ldap_admin: LdapAdmin, tmp_path: Path,
) -> None:
    people = practitioners.practitioners[48:54]
    incident = _contain(site_file, *people)
    conclude_investigation(Site(load_site(site_file)), incident, by="dr-rssi", finding="confirmed")
    before = ldap_admin.dump()
    config = yaml.safe_load(site_file.read_text())

    config["limits"]["protected"].append(f"uid={people[0].uid}")  # protected after the containment
    site_file.write_text(yaml.safe_dump(config))
    site = Site(load_site(site_file))
    try:
        with handover(incident, tmp_path / "p.txt"):
            recovery = recover_accounts(incident, [people[0].uid], site)
        assert recovery.summary.status == "refused"
        assert f"protected by 'uid={people[0].uid}'" in (recovery.summary.error or "")
        assert ldap_admin.dump() == before and not (tmp_path / "p.txt").exists(), "refused: no password file"

    finally:
        site.close()
    config["limits"]["protected"].remove(f"uid={people[0].uid}")
    site_file.write_text(yaml.safe_dump(config))
    site = Site(load_site(site_file))
    try:
        # six accounts: above recover.yaml's limit of 5, and nobody approves outside a Prefect run
        with handover(incident, tmp_path / "r.txt"):
            radius = recover_accounts(incident, [p.uid for p in people], site)
        assert radius.summary.status == "failed" and "exceed the limit of 5" in (radius.summary.error or "")
        assert ldap_admin.dump() == before and not (tmp_path / "r.txt").exists()
    finally:
        site.close()


def test_recover_refuses_without_a_handover_and_a_rejected_approval_changes_nothing(
    site_file: Path, practitioners: Directory, ldap_admin: LdapAdmin,
) -> None:
    owner = practitioners.practitioners[54]
    incident = _contain(site_file, owner)
    before = ldap_admin.dump()
    site = Site(load_site(site_file))
    try:
        with pytest.raises(ApprovalRejected, match="still under investigation"):
            with handover(incident):
                recover_accounts(incident, [owner.uid], site)
        from tourniquet.engine.recover import RecoverRefused

        with pytest.raises(RecoverRefused, match="nobody to hand the one-time password to"):
            recover_accounts(incident, [owner.uid], site, investigation_approver=fixed_approver("x"))
    finally:
        site.close()
    assert ldap_admin.dump() == before


def test_recover_flow_never_lets_the_one_time_password_reach_prefect(
    prefect_harness: None, site_file: Path, slapd: Slapd, practitioners: Directory, tmp_path: Path,
    unmasked: pytest.LogCaptureFixture,
) -> None:
    """The recover flow on a real Prefect test server; then its database file itself is searched."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL

    owner = practitioners.practitioners[55]
    incident = _contain(site_file, owner)
    password_file = tmp_path / "handed" / "otp.txt"
    password_file.parent.mkdir()

    result = recover(incident=incident, accounts=[owner.uid], password_file=str(password_file),
                     approved_by="dr-rssi", comment="owner identified at the desk", site=str(site_file))

    assert result["status"] == "completed"
    assert stat.S_IMODE(os.stat(password_file).st_mode) == 0o600
    otp = password_file.read_text().strip().split("\t")[1]
    assert _search(slapd, owner.dn, otp) == ("success", "insufficientAccessRights")
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts()
        report = [a for a in artifacts if a.key and a.key.endswith("-recover")]
    assert report and "set_one_time_password" in str(report[-1].data)
    assert all(otp not in str(a.data) for a in artifacts)
    logged = "\n".join(r.getMessage() for r in unmasked.records)
    assert "change.applied" in logged and otp not in logged
    assert otp not in _everything_written(tmp_path / "evidence") + _everything_written(tmp_path / "tickets")

    url = PREFECT_API_DATABASE_CONNECTION_URL.value() or ""
    database = Path(url.split("///", 1)[-1])
    assert database.exists(), url
    time.sleep(3)  # let the log and event workers write what they hold
    stored = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert owner.uid.encode() in stored, "the run is in this database"
    assert otp.encode() not in stored


def test_recover_after_an_undo_tells_the_closed_ticket_of_the_new_password(
    site_file: Path, slapd: Slapd, practitioners: Directory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A false alarm undone (the ticket closed), then the owner, whose password was scrambled, gets a one-time one:
    the comment reaches the closed ticket and the command ends as a success."""
    owner = practitioners.practitioners[49]
    incident = _contain(site_file, owner)
    assert main(["undo", incident, "--site", str(site_file)]) == 0
    monkeypatch.setattr(incident_cli, "_is_terminal", lambda: True)
    capsys.readouterr()

    code = main(["recover", incident, "--account", owner.uid, "--operator", "helpdesk-3", "--approved-by", "dr-rssi",
                 "--site", str(site_file)])

    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "no open ticket" not in out + err
    ticket = _everything_written(tmp_path / "tickets")
    assert "Given back to its owner by helpdesk-3: 1 of 1 accounts given back." in ticket
    assert main(["evidence", "verify", incident, "--site", str(site_file)]) == 0
