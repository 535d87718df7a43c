"""The AD flavor against a real Samba 4 Active Directory DC (tests/samba_ad.py), bound as a delegated service account.

Whole-domain diffs before and after: containment changes the contained practitioners' ``userAccountControl``
and ``pwdLastSet`` and nothing else in the domain; undo and reinstate bring everything back but the
password. The stolen password is tried after every step — by a simple LDAP bind and by an NTLM logon —
and never works again from the scramble on: not after ``undo`` within the "old password allowed period"
(the DC accepts the previous password for an hour), not after a helpdesk re-enables the account and clears
"must change password".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.directory_helpers import call
from tests.samba_ad import (
    BREAKGLASS,
    COMPUTER_DN,
    CONTACT_DN,
    DISABLED,
    OUTSIDE,
    PEOPLE,
    PRACTITIONERS,
    SambaDC,
    assert_dead,
    diff,
    group_dn,
    samba_dc,  # noqa: F401 - fixture
)
from tourniquet.cli.main import main
from tourniquet.config import load_site
from tourniquet.engine.execute import execute_playbook
from tourniquet.site import Site

ISOLATE = """\
playbook: contain-and-isolate-ad
version: 1
title: Contain, and take the account out of its establishment groups
inputs:
  accounts:
    type: list[str]
limits:
  max_accounts: 20
steps:
  - id: resolve
    action: directory.resolve
    with: {ids: "${{ inputs.accounts }}"}
  - id: snapshot
    action: directory.snapshot
    for_each: ${{ steps.resolve.accounts }}
    with: {account: "${{ item }}"}
  - id: scramble
    action: directory.scramble_password
    for_each: ${{ steps.resolve.accounts }}
    with: {account: "${{ item }}"}
  - id: lock
    action: directory.lock
    for_each: ${{ steps.resolve.accounts }}
    with: {account: "${{ item }}"}
  - id: reset
    action: directory.force_password_reset
    for_each: ${{ steps.resolve.accounts }}
    with: {account: "${{ item }}"}
  - id: groups
    action: directory.remove_groups
    for_each: ${{ steps.resolve.accounts }}
    with: {account: "${{ item }}", patterns: ["cn=chu-*,ou=groupes,*", "cn=ehpad-*,ou=groupes,*"]}
"""


@pytest.fixture
def site_file(samba_dc: SambaDC, tmp_path: Path) -> Path:  # noqa: F811 - the fixture above
    return samba_dc.site_file(tmp_path)


@pytest.fixture
def site(site_file: Path):  # type: ignore[no-untyped-def]
    runtime = Site(load_site(site_file))
    yield runtime
    runtime.close()


def _only(changes: dict, dns: list[str]) -> None:  # type: ignore[type-arg]
    assert sorted(changes) == sorted(dn.lower() for dn in dns), changes


def test_ad_ids_resolve_by_samaccountname_upn_mail_rpps_and_dn_and_nothing_else(site: Site) -> None:
    person = PRACTITIONERS[1]  # a contact entry shares this practitioner's mail
    for identifier in (person.sam, person.upn, person.mail, person.rpps, f"8{person.rpps}", person.dn,
                       person.upn.upper()):
        assert site.directory.resolve(identifier).dn.lower() == person.dn.lower(), identifier
    account = site.directory.resolve(person.upn)
    assert (account.uid, account.rpps, account.mail) == (person.sam, person.rpps, person.mail)
    # the RPPS number of practitioner 0 is also held by an entry outside base_dn: never reached
    assert site.directory.resolve(PRACTITIONERS[0].rpps).dn.lower() == PRACTITIONERS[0].dn.lower()

    result, _ = call(site, "directory.resolve", ids=[
        PRACTITIONERS[0].sam, PRACTITIONERS[2].upn, COMPUTER_DN, CONTACT_DN, OUTSIDE.dn, OUTSIDE.sam, PEOPLE,
        group_dn("chu-lille-urgences"), "nobody@sante.test"])

    assert sorted(a.uid for a in result.accounts) == sorted([PRACTITIONERS[0].sam, PRACTITIONERS[2].sam])
    refused = "\n".join(result.not_found)
    for what in (COMPUTER_DN, CONTACT_DN, OUTSIDE.dn, OUTSIDE.sam, PEOPLE, "chu-lille-urgences", "nobody@sante.test"):
        assert what in refused


def test_one_password_write_leaves_the_previous_password_working_so_a_scramble_writes_two(
    samba_dc: SambaDC,  # noqa: F811
) -> None:
    """Why the AD flavor scrambles twice: Samba's "old password allowed period" (60 min, Windows'
    OldPasswordAllowedPeriod) accepts the previous password for simple binds and NTLM after a reset."""
    person = PRACTITIONERS[15]
    assert (samba_dc.bind(person.upn, person.password), samba_dc.ntlm(person.sam, person.password)) == ("ok", "ok")

    samba_dc.set_password(person.dn, "First-Random-Reset-1")

    assert samba_dc.bind(person.upn, person.password) == "ok", "one reset: the stolen password still binds"
    assert samba_dc.ntlm(person.sam, person.password) == "ok", "one reset: the stolen password still logs on (NTLM)"

    samba_dc.set_password(person.dn, "Second-Random-Reset-2")

    assert_dead(samba_dc, person, "after two resets")


def test_the_stolen_password_is_dead_after_each_step_and_after_a_helpdesk_re_enable(
    samba_dc: SambaDC, site: Site,  # noqa: F811
) -> None:
    person = PRACTITIONERS[2]
    account = site.directory.resolve(person.sam)
    version = int(samba_dc.read(person.dn, "msDS-KeyVersionNumber")["msDS-KeyVersionNumber"][0])
    snapshot, _ = call(site, "directory.snapshot", account=account)
    frozen = json.loads(Path(snapshot.file).read_text())
    assert frozen["flavor"] == "ad" and frozen["state"] == {"userAccountControl": ["512"], "pwdLastSet": ["-1"],
                                                             "lockoutTime": []}
    assert {"objectSid", "objectGUID", "whenCreated", "memberOf", "sAMAccountName"} <= set(frozen["attributes"])
    assert not {"unicodePwd", "supplementalCredentials", "ntPwdHistory"} & set(frozen["attributes"])

    scrambled, _ = call(site, "directory.scramble_password", account=account)
    assert scrambled.outcome == "applied"
    assert int(samba_dc.read(person.dn, "msDS-KeyVersionNumber")["msDS-KeyVersionNumber"][0]) == version + 2
    assert_dead(samba_dc, person, "after the scramble")
    locked, _ = call(site, "directory.lock", account=account)
    assert locked.outcome == "applied" and any("Kerberos" in text for text in locked.remains)
    assert_dead(samba_dc, person, "after the lock")
    reset, _ = call(site, "directory.force_password_reset", account=account)
    assert reset.outcome == "applied"
    assert_dead(samba_dc, person, "after the reset")
    removed, _ = call(site, "directory.remove_groups", account=account, patterns=["cn=chu-*,ou=groupes,*"])
    assert removed.groups == [group_dn("chu-lille-urgences")]
    assert_dead(samba_dc, person, "after the groups")
    assert samba_dc.read(person.dn, "userAccountControl", "pwdLastSet") == {"userAccountControl": ["514"],
                                                                             "pwdLastSet": ["0"]}

    # the helpdesk, within the hour, re-enables the account and clears "must change password"
    samba_dc.set(person.dn, userAccountControl="512", pwdLastSet="-1")

    assert_dead(samba_dc, person, "after a helpdesk re-enable that clears must-change")


def test_credential_misuse_changes_only_the_contained_accounts_and_undo_brings_all_back_but_the_password(
    samba_dc: SambaDC, site_file: Path, capsys: pytest.CaptureFixture[str],  # noqa: F811
) -> None:
    people = PRACTITIONERS[3:6]
    before = samba_dc.dump()

    summary = execute_playbook("credential-misuse", {"accounts": [people[0].sam, people[1].upn, people[2].rpps]},
                               dry_run=False, site=str(site_file))

    assert summary.status == "completed", summary.error
    changes = diff(before, samba_dc.dump())
    _only(changes, [p.dn for p in people])
    for person in people:
        entry = changes[person.dn.lower()]
        assert sorted(entry) == ["pwdLastSet", "userAccountControl"], entry
        assert entry["userAccountControl"] == (["512"], ["514"]) and entry["pwdLastSet"][1] == ["0"]
        assert_dead(samba_dc, person, "after containment")
    for other in (PRACTITIONERS[0], BREAKGLASS, OUTSIDE):
        assert samba_dc.bind(other.upn, other.password) == "ok", f"{other.sam} untouched"
    report = Path(summary.report).read_text()  # type: ignore[arg-type]
    assert "## What remains" in report and "Kerberos tickets issued before it stay valid" in report
    assert "NTLM or SMB sessions already established stay open" in report
    ticket = "\n".join(p.read_text() for p in (site_file.parent / "tickets").rglob("*") if p.is_file())
    assert "Kerberos tickets issued before it stay valid" in ticket, "the ticket says it too"

    again = execute_playbook("credential-misuse", {"accounts": [people[0].sam]}, dry_run=False,
                             incident=summary.incident, site=str(site_file))
    assert again.status == "completed" and {c.outcome for c in again.changes if c.system == "directory"} == {"noop"}

    assert main(["undo", summary.incident, "--site", str(site_file)]) == 0

    said = capsys.readouterr().out
    assert all(f"kept   {p.sam}: the password was replaced" in said for p in people)
    changes = diff(before, samba_dc.dump())
    _only(changes, [p.dn for p in people])
    for person in people:
        entry = changes[person.dn.lower()]
        assert list(entry) == ["pwdLastSet"] and entry["pwdLastSet"][1] != ["0"], "enabled, no change demanded"
        assert_dead(samba_dc, person, "after undo, within the old-password hour")


def test_reinstate_puts_back_control_flags_and_groups_as_the_snapshot_recorded(
    samba_dc: SambaDC, site_file: Path, tmp_path: Path,  # noqa: F811
) -> None:
    person = PRACTITIONERS[6]  # a member of chu-lille-urgences, ehpad-les-tilleuls and vpn-soignants
    playbook = tmp_path / "isolate.yaml"
    playbook.write_text(ISOLATE)
    before = samba_dc.dump()

    summary = execute_playbook(str(playbook), {"accounts": [person.mail]}, dry_run=False, site=str(site_file))

    assert summary.status == "completed", summary.error
    changes = diff(before, samba_dc.dump())
    touched = [person.dn, group_dn("chu-lille-urgences"), group_dn("ehpad-les-tilleuls")]
    _only(changes, touched)
    assert sorted(changes[person.dn.lower()]) == ["memberOf", "pwdLastSet", "userAccountControl"]
    assert changes[person.dn.lower()]["memberOf"][1] == [group_dn("vpn-soignants")]
    for group in touched[1:]:
        assert list(changes[group.lower()]) == ["member"]
    assert_dead(samba_dc, person, "after isolation")

    assert main(["reinstate", summary.incident, "--site", str(site_file)]) == 0

    changes = diff(before, samba_dc.dump())
    assert list(changes) == [person.dn.lower()] and list(changes[person.dn.lower()]) == ["pwdLastSet"]
    assert_dead(samba_dc, person, "after reinstate")


def test_lock_and_unlock_keep_every_other_user_account_control_bit(samba_dc: SambaDC, site: Site) -> None:  # noqa: F811
    """MS-ADTS 2.2.16: only ACCOUNTDISABLE (0x2) moves; 66048 = NORMAL_ACCOUNT | DONT_EXPIRE_PASSWORD."""
    person = PRACTITIONERS[14]
    samba_dc.set(person.dn, userAccountControl="66048")
    account = site.directory.resolve(person.sam)

    locked, _ = call(site, "directory.lock", account=account)
    assert locked.outcome == "applied" and samba_dc.read(person.dn, "userAccountControl") == {
        "userAccountControl": ["66050"]}
    assert samba_dc.bind(person.upn, person.password) == DISABLED

    unlocked, _ = call(site, "directory.unlock", account=account)
    assert unlocked.outcome == "applied" and samba_dc.read(person.dn, "userAccountControl") == {
        "userAccountControl": ["66048"]}
    assert samba_dc.bind(person.upn, person.password) == "ok"
