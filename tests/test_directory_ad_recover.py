"""A real incident on an Active Directory site is over: ``recover`` gives the account back, on a real Samba DC.

Containment left the account disabled with ``pwdLastSet: 0``; ``recover`` sets a one-time password, demands a
new one at first logon (``pwdLastSet: 0`` again) and enables the account. The read-back cannot rest on
``pwdLastSet`` alone (0 before, 0 after): ``msDS-KeyVersionNumber``, raised by the DC on each password
write, proves the password was set. The owner's logon with the one-time password is refused with "must
change password" (773) — the password is right and opens nothing else — and after the owner's own change
the new password works, while the stolen one never does.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.samba_ad import (
    DISABLED,
    MUST_CHANGE,
    PRACTITIONERS,
    WRONG_PASSWORD,
    SambaDC,
    assert_dead,
    diff,
    samba_dc,  # noqa: F401 - fixture
)
from tourniquet.cli import incident as incident_cli
from tourniquet.cli.main import main
from tourniquet.engine.execute import execute_playbook
from tourniquet.journal import read_journal

SHOWN = re.compile(r"^  (\S+): (\S{4}-\S{4}-\S{4}-\S{4})$", re.MULTILINE)


def _key_version(dc: SambaDC, dn: str) -> int:
    return int(dc.read(dn, "msDS-KeyVersionNumber")["msDS-KeyVersionNumber"][0])


def test_recover_gives_a_one_time_password_that_must_be_changed_at_first_logon(
    samba_dc: SambaDC, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    owner = PRACTITIONERS[7]
    site_file = samba_dc.site_file(tmp_path)
    summary = execute_playbook("credential-misuse", {"accounts": [owner.upn]}, dry_run=False, site=str(site_file))
    assert summary.status == "completed", summary.error
    assert samba_dc.read(owner.dn, "userAccountControl", "pwdLastSet") == {"userAccountControl": ["514"],
                                                                            "pwdLastSet": ["0"]}
    assert main(["conclude", summary.incident, "--by", "dr-rssi", "--finding", "phishing, password reused",
                 "--site", str(site_file)]) == 0
    before, version = samba_dc.dump(), _key_version(samba_dc, owner.dn)
    monkeypatch.setattr(incident_cli, "_is_terminal", lambda: True)
    capsys.readouterr()

    code = main(["recover", summary.incident, "--account", owner.sam, "--operator", "helpdesk-3",
                 "--site", str(site_file)])

    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "must choose a new one at the first login" in out
    [(account, otp)] = SHOWN.findall(out)
    assert account == owner.sam
    # the directory: enabled, a new password must be chosen, one password write — and nothing else changed
    changes = diff(before, samba_dc.dump())
    assert list(changes) == [owner.dn.lower()] and changes[owner.dn.lower()] == {
        "userAccountControl": (["514"], ["512"])}, "pwdLastSet is 0 before and after"
    assert samba_dc.read(owner.dn, "pwdLastSet") == {"pwdLastSet": ["0"]}
    assert _key_version(samba_dc, owner.dn) == version + 1, "the read-back's proof: one password write"
    records = list(read_journal(tmp_path / "evidence" / summary.incident / "journal.jsonl"))
    [handed] = [r for r in records if r["type"] == "change" and r.get("operation") == "set_one_time_password"]
    assert handed["outcome"] == "applied", "read back: a new password (msDS-KeyVersionNumber) that must be changed"
    assert handed["after"] == {"password": "one-time, given to the operator", "must_change": True}
    # the owner: the one-time password is right but only lets them choose a new one; the stolen one is dead
    assert samba_dc.bind(owner.upn, otp) == MUST_CHANGE
    assert samba_dc.ntlm(owner.sam, otp) == MUST_CHANGE
    assert_dead(samba_dc, owner, "after recover")

    assert samba_dc.change_own_password(owner, otp, "Owner-Chose-This-7!") == "success"

    assert samba_dc.bind(owner.upn, "Owner-Chose-This-7!") == "ok"
    assert samba_dc.ntlm(owner.sam, "Owner-Chose-This-7!") == "ok"
    assert_dead(samba_dc, owner, "after the owner's own change")
    # Said in docs/how-to/active-directory.md: the one-time password is now "the previous password", which the
    # DC still accepts for an hour (old password allowed period) — whoever saw it must forget it.
    assert (samba_dc.bind(owner.upn, otp), samba_dc.ntlm(owner.sam, otp)) == ("ok", "ok")
    ticket = "\n".join(p.read_text() for p in (tmp_path / "tickets").rglob("*") if p.is_file())
    assert "Given back to its owner by helpdesk-3: 1 of 1 accounts given back." in ticket and otp not in ticket
    assert f"given back: {owner.sam}" in ticket
    assert "only lets the owner choose a new password at the first login" in " ".join(ticket.split())


def test_a_contained_account_still_disabled_refuses_even_the_right_password(
    samba_dc: SambaDC, tmp_path: Path,  # noqa: F811
) -> None:
    """What the DC answers while contained: 52e for any wrong password (the stolen one included), and 533
    (disabled) only for the right one — so a helpdesk that sees 533 knows the caller holds the password."""
    person = PRACTITIONERS[8]
    summary = execute_playbook("credential-misuse", {"accounts": [person.sam]}, dry_run=False,
                               site=str(samba_dc.site_file(tmp_path)))
    assert summary.status == "completed", summary.error
    samba_dc.set_password(person.dn, "Known-To-The-Test-8")  # as an administrator would, to look

    assert samba_dc.bind(person.upn, "Known-To-The-Test-8") == DISABLED
    assert samba_dc.bind(person.upn, person.password) == WRONG_PASSWORD
