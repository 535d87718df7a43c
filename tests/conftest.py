"""Shared fixtures: a real slapd seeded with practitioners, a site pointing at it, a Prefect harness.

One slapd per test session (seeded once with slapadd); each test gets a fresh site
configuration and evidence folder in its tmp_path, and the directory's lock state is
put back after each test that asks for ``site``. Missing slapd skips locally but fails
in CI (``CI`` set), so CI never passes by skipping.

The directory tests run once per LDAP transport (``[ldap3]``, ``[libldap]``): a module says
``pytestmark = pytest.mark.usefixtures("each_transport")``, and every site that test writes (and every
client built with the default ``transport: auto``) goes through that transport.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.helpers import LdapAdmin, require_slapd
from tourniquet.config import load_site
from tourniquet.connectors.directory import connections
from tourniquet.demo.practitioners import Directory, generate, write_ldif
from tourniquet.demo.slapd import Slapd
from tourniquet.site import Site

SUFFIX = "dc=sante,dc=example"
PRACTITIONERS = 60
#: The transport the sites written by :func:`write_site` name (None: the site's default, auto).
directory_transport: str | None = None


@pytest.fixture(params=["ldap3", "libldap"])
def each_transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """This test once through ldap3, once through libldap: site files name it, ``auto`` resolves to it."""
    transport: str = request.param
    choose = connections.choose
    monkeypatch.setattr(connections, "choose", lambda setting: choose(transport if setting == "auto" else setting))
    monkeypatch.setitem(globals(), "directory_transport", transport)
    return transport


@pytest.fixture(scope="session")
def practitioners() -> Directory:
    return generate(PRACTITIONERS, SUFFIX)


@pytest.fixture(scope="session")
def slapd(practitioners: Directory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    require_slapd()
    folder = tmp_path_factory.mktemp("slapd")
    server = Slapd(SUFFIX, "root-secret-for-tests", directory=folder)
    server.configure(write_ldif(practitioners, folder / "data.ldif"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def ldap_admin(slapd: Slapd) -> Iterator[LdapAdmin]:
    admin = LdapAdmin(slapd)
    yield admin
    admin.close()


def write_site(tmp_path: Path, slapd: Slapd, practitioners: Directory, **overrides: object) -> Path:
    secret = tmp_path / "secrets" / "ldap"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text(slapd.root_password + "\n")
    secret.chmod(0o600)
    config: dict[str, object] = {
        "site": "test",
        "state_dir": str(tmp_path / "state"),
        "evidence_dir": str(tmp_path / "evidence"),
        "directory": {
            "url": slapd.url,
            "allow_plaintext": True,
            "bind_dn": slapd.root_dn,
            "bind_password": {"file": str(secret)},
            "base_dn": practitioners.people_dn,
            "default_policy_dn": slapd.policy_dn,
            "timeout": 5,
            **({"transport": directory_transport} if directory_transport else {}),
        },
        "tickets": {"kind": "file", "path": str(tmp_path / "tickets")},
        "limits": {"max_accounts_ceiling": 50, "protected": ["uid=breakglass-*"]},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}  # type: ignore[dict-item]
        else:
            config[key] = value
    path = tmp_path / "tourniquet.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def site_file(tmp_path: Path, slapd: Slapd, practitioners: Directory, ldap_admin: LdapAdmin) -> Iterator[Path]:
    """A site configuration for this test; the directory's lock state is restored afterwards."""
    path = write_site(tmp_path, slapd, practitioners)
    yield path
    ldap_admin.reset_all(practitioners)


@pytest.fixture
def site(site_file: Path) -> Iterator[Site]:
    runtime = Site(load_site(site_file))
    yield runtime
    runtime.close()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect server for the whole session, heartbeat off (see the Prefect reference)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        with prefect_test_harness(server_startup_timeout=90):
            yield
