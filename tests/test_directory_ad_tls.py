"""The certificate an Active Directory site needs, on a real Samba DC.

The DC's certificate comes from the site's CA and names how the site reaches it (here ``127.0.0.1``):
the connection is verified, a certificate from another CA is refused, and the
DC refuses a simple bind in clear ("ldap server require strong auth", Samba's default, as on Windows
with LDAP signing required), so a site must use ``ldaps://`` or StartTLS.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.samba_ad import PEOPLE, SERVICE_DN, SERVICE_PASSWORD, SambaDC, make_certificates, samba_dc  # noqa: F401
from tourniquet.connectors.directory import DirectoryClient, DirectoryConfig
from tourniquet.errors import PermanentError


def _client(url: str, ca: Path | None, **extra: object) -> DirectoryClient:
    config = DirectoryConfig(flavor="ad", url=url, ca_file=str(ca) if ca else None, bind_dn=SERVICE_DN,
                             bind_password={"env": "UNUSED"}, base_dn=PEOPLE, timeout=10, **extra)
    return DirectoryClient(config, password=SERVICE_PASSWORD)


def test_the_dc_certificate_is_verified_by_address(samba_dc: SambaDC) -> None:  # noqa: F811
    """The site names the DC by IP: the certificate must hold it as an IP subjectAltName (Samba's own
    generated certificate names only the DC's host name). Not tried by ``localhost``: libldap checks
    that name against the machine's own host name instead."""
    with _client("ldaps://127.0.0.1:636", samba_dc.ca) as client:
        assert client.read(PEOPLE, ["ou"]) == {"ou": ["Praticiens"]}


def test_a_dc_certificate_from_another_ca_is_refused(samba_dc: SambaDC, tmp_path: Path) -> None:  # noqa: F811
    stranger, _, _ = make_certificates(tmp_path, "elsewhere")
    with _client(samba_dc.url, stranger) as client:
        with pytest.raises(PermanentError, match="TLS failed"):
            client.read(PEOPLE, ["ou"])


def test_the_dc_refuses_a_simple_bind_in_clear(samba_dc: SambaDC) -> None:  # noqa: F811
    with _client("ldap://127.0.0.1:389", None, allow_plaintext=True) as client:
        with pytest.raises(PermanentError, match="(?i)strong"):
            client.read(PEOPLE, ["ou"])
