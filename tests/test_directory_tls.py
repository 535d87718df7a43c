"""The directory over TLS: StartTLS and LDAPS against a slapd whose certificate a test CA signed, and a
server certificate from an unknown CA refused (certificate checks are on unless a site turns them off).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.helpers import require_slapd
from tourniquet.connectors.directory import DirectoryClient, DirectoryConfig
from tourniquet.demo.practitioners import generate, write_ldif
from tourniquet.demo.slapd import Slapd
from tourniquet.errors import ConfigError, PermanentError

pytestmark = pytest.mark.usefixtures("each_transport")

SUFFIX = "dc=sante,dc=example"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(folder: Path, name: str) -> tuple[Path, ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name)).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    path = folder / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, key, cert


def make_server_cert(folder: Path, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls_slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Slapd, Path, Path]]:
    require_slapd()
    folder = tmp_path_factory.mktemp("tls")
    ca, ca_key, ca_cert = make_ca(folder, "test-ca")
    stranger, _, _ = make_ca(folder, "unknown-ca")
    cert, key = make_server_cert(folder, ca_key, ca_cert)
    server = Slapd(SUFFIX, "root-secret-tls", directory=folder / "slapd", tls=(str(ca), str(cert), str(key)))
    server.configure(write_ldif(generate(5, SUFFIX), folder / "data.ldif"))
    server.start()
    yield server, ca, stranger
    server.stop()


def _client(server: Slapd, url: str, ca: Path, **extra: object) -> DirectoryClient:
    config = DirectoryConfig(url=url, ca_file=str(ca), bind_dn=server.root_dn, bind_password={"env": "UNUSED"},
                             base_dn=f"ou=people,{SUFFIX}", timeout=5, **extra)
    return DirectoryClient(config, password=server.root_password)


def test_starttls_with_the_site_ca_works(tls_slapd: tuple[Slapd, Path, Path]) -> None:
    server, ca, _ = tls_slapd
    with _client(server, server.url, ca, start_tls=True) as client:
        account = client.resolve(generate(5, SUFFIX).practitioners[0].uid)
        assert client.connection().tls_started
    assert account.dn.endswith(f"ou=people,{SUFFIX}")


def test_ldaps_with_the_site_ca_works(tls_slapd: tuple[Slapd, Path, Path]) -> None:
    server, ca, _ = tls_slapd
    with _client(server, str(server.ldaps_url), ca) as client:
        assert client.read(f"ou=people,{SUFFIX}", ["ou"]) == {"ou": ["people"]}


@pytest.mark.parametrize("scheme", ["starttls", "ldaps"])
def test_a_certificate_from_an_unknown_ca_is_refused(tls_slapd: tuple[Slapd, Path, Path], scheme: str) -> None:
    server, _, stranger = tls_slapd
    url, extra = (server.url, {"start_tls": True}) if scheme == "starttls" else (str(server.ldaps_url), {})
    with _client(server, url, stranger, **extra) as client:
        with pytest.raises(PermanentError, match="TLS failed"):
            client.read(f"ou=people,{SUFFIX}", ["ou"])


def test_a_certificate_naming_another_host_is_refused(tls_slapd: tuple[Slapd, Path, Path]) -> None:
    server, ca, _ = tls_slapd
    with _client(server, f"ldaps://localhost:{server.ldaps_port}", ca) as client:  # the certificate names 127.0.0.1
        with pytest.raises(PermanentError, match="TLS failed"):
            client.read(f"ou=people,{SUFFIX}", ["ou"])


def test_a_ca_file_that_is_not_there_is_named_before_anything_is_sent(tls_slapd: tuple[Slapd, Path, Path],
                                                                       tmp_path: Path) -> None:
    server, _, _ = tls_slapd
    with pytest.raises(ConfigError, match="ca_file .*missing.pem.* is not a file"):
        _client(server, str(server.ldaps_url), tmp_path / "missing.pem")


def test_a_ca_file_that_holds_no_certificate_is_a_tls_failure(tls_slapd: tuple[Slapd, Path, Path],
                                                               tmp_path: Path) -> None:
    server, _, _ = tls_slapd
    garbage = tmp_path / "ca.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    with _client(server, str(server.ldaps_url), garbage) as client:
        with pytest.raises(PermanentError, match="TLS failed"):
            client.read(f"ou=people,{SUFFIX}", ["ou"])
