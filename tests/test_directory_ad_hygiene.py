"""Hygiene on Active Directory attributes, read from a real Samba DC by the delegated service account.

``dormant`` reads ``lastLogonTimestamp`` (a FILETIME) and ``whenCreated``, and leaves disabled
(``userAccountControl`` 0x2) and expired (``accountExpires``) accounts alone; ``password_age`` reads
``pwdLastSet`` and skips an account that must already change its password (``pwdLastSet: 0``);
``unprotected`` reads the domain's ``lockoutThreshold`` (0 on a fresh Samba domain: never locks out).
The reference day is set 400 days ahead, so that accounts created by the fixture are old enough to judge;
each account's activity is written relative to it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from tests.samba_ad import BASE, PRACTITIONERS, SambaDC, samba_dc  # noqa: F401 - fixture
from tourniquet.connectors.directory import directory_time
from tourniquet.hygiene.loader import load_hygiene_text
from tourniquet.hygiene.runner import run_hygiene

PLAYBOOK = """\
hygiene: ad-hygiene
version: 1
title: Active Directory hygiene
checks:
  - id: dormant
    check: dormant
    severity: low
    with: {days: 90}
  - id: old-password
    check: password_age
    severity: medium
    with: {days: 365}
  - id: unprotected
    check: unprotected
    severity: medium
"""
EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)


def filetime(moment: datetime) -> str:
    return str(int((moment - EPOCH).total_seconds() * 10_000_000))


def test_dormant_old_passwords_and_lockout_from_ad_attributes(samba_dc: SambaDC, tmp_path: Path) -> None:  # noqa: F811
    as_of = datetime.now(timezone.utc) + timedelta(days=400)
    active, dormant, disabled, expired, must_change = PRACTITIONERS[9:14]
    samba_dc.set(active.dn, lastLogonTimestamp=filetime(as_of - timedelta(days=10)))
    samba_dc.set(dormant.dn, lastLogonTimestamp=filetime(as_of - timedelta(days=200)))
    samba_dc.set(disabled.dn, userAccountControl="514")
    samba_dc.set(expired.dn, accountExpires=filetime(as_of - timedelta(days=1)))
    samba_dc.set(must_change.dn, pwdLastSet="0")
    mine = {p.sam for p in (active, dormant, disabled, expired, must_change)}

    result = run_hygiene(load_hygiene_text(PLAYBOOK), samba_dc.site_file(tmp_path), as_of=as_of, respond=False)

    found: dict[str, dict[str, str]] = {}
    for finding in result.findings:
        if finding.account in mine:
            found.setdefault(finding.check, {})[finding.account] = finding.summary
    assert sorted(found["dormant"]) == sorted([dormant.sam, must_change.sam]), found["dormant"]
    last = (as_of - timedelta(days=200)).date()
    assert found["dormant"][dormant.sam] == f"dormant: last login {last:%Y-%m-%d} in the last 90 days"
    assert found["dormant"][must_change.sam] == "dormant: no login recorded in the last 90 days"
    assert sorted(found["old-password"]) == sorted([active.sam, dormant.sam]), "disabled, expired, must-change: not"
    assert found["old-password"][active.sam].startswith("password unchanged for 400 days")
    assert sorted(found["unprotected"]) == sorted(mine)
    assert found["unprotected"][active.sam] == (f"{BASE} never locks an account out (lockoutThreshold 0): "
                                                "password guessing is free")
    assert result.accounts_swept >= len(PRACTITIONERS)


def test_directory_times_read_both_ldap_and_ad_formats() -> None:
    assert directory_time("20261128091403Z") == datetime(2026, 11, 28, 9, 14, 3, tzinfo=timezone.utc)
    assert directory_time("20261206080356.0Z") == datetime(2026, 12, 6, 8, 3, 56, tzinfo=timezone.utc)
    assert directory_time("133000000000000000") == EPOCH + timedelta(microseconds=13_300_000_000_000_000)
    assert directory_time("0") is None and directory_time("9223372036854775807") is None
    assert directory_time("not a time") is None
