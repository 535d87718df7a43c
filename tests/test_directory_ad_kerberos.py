"""What a disable leaves open on Active Directory: Kerberos, tried against the Samba DC's own KDC.

A TGT obtained before the containment stays in the attacker's cache, valid until it expires (the report's
"What remains" says so for every AD site). The Samba 4.17 KDC refuses it new service tickets once the
account is disabled; a Windows DC re-checks only a TGT older than 20 minutes, and service tickets already
issued are never asked again. The previous password, which NTLM and simple binds accept for an hour after
a reset, is not accepted by this KDC.
"""

from __future__ import annotations

from pathlib import Path

from tests.directory_helpers import call
from tests.samba_ad import PRACTITIONERS, SambaDC, samba_dc  # noqa: F401 - fixture
from tourniquet.config import load_site
from tourniquet.site import Site


def test_a_tgt_issued_before_the_disable_stays_in_the_cache_but_gets_no_new_service_ticket(
    samba_dc: SambaDC, tmp_path: Path,  # noqa: F811
) -> None:
    person = PRACTITIONERS[16]
    env = samba_dc.kerberos(tmp_path)
    assert samba_dc.kinit(person, person.password, env) == "ok", "the attacker logs on with the stolen password"
    site = Site(load_site(samba_dc.site_file(tmp_path)))
    try:
        locked, _ = call(site, "directory.lock", account=site.directory.resolve(person.sam))
    finally:
        site.close()
    assert locked.outcome == "applied"
    assert any("TGTs up to 10 h" in text for text in locked.remains)

    assert "KDC policy rejects request" in samba_dc.service_ticket(env)
    (tmp_path / "later").mkdir()
    refused = samba_dc.kinit(person, person.password, samba_dc.kerberos(tmp_path / "later"))
    assert "credentials have been revoked" in refused, "no new TGT for a disabled account"


def test_the_kdc_does_not_accept_the_previous_password(samba_dc: SambaDC, tmp_path: Path) -> None:  # noqa: F811
    person = PRACTITIONERS[17]
    env = samba_dc.kerberos(tmp_path)
    samba_dc.set_password(person.dn, "Kerberos-Before-17!")
    samba_dc.set_password(person.dn, "Kerberos-After-17!")

    assert samba_dc.bind(person.upn, "Kerberos-Before-17!") == "ok", "an LDAP bind still takes the previous one"
    assert samba_dc.kinit(person, "Kerberos-Before-17!", env) != "ok"
    assert samba_dc.kinit(person, "Kerberos-After-17!", env) == "ok"
