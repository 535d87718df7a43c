"""The same incidents read from a real PostgreSQL access log (server started by the tests).

First a log that stores timestamps as ``timestamptz`` and the fields shown as a ``text[]`` array, with its own
column names and action codes: the mapping in the site configuration bridges them. Then the three-region
platform of ``test_audit_platform`` in PostgreSQL — ``plateforme.journal_acces`` with the patient id as text,
``plateforme.patient`` keyed by a bigint, a server whose default time zone is Europe/Paris — read through
``tourniquet run`` with a site file and no view: the same ground truth as on SQLite.
Missing PostgreSQL skips locally and fails in CI.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import write_site
from tests.helpers import LdapAdmin
from tests.postgresql import free_port, throwaway_postgres
from tests.test_audit_platform import (  # noqa: F401 - fixtures
    PLAYBOOK,
    accesses,
    assert_matches_truth,
    assert_people_to_warn_reach_people,
    compromised,
    planted_starts,
    platform,
    scope_folder,
    windows_of,
)
from tests.test_audit_scope import SINCE, UNTIL, VALID_NIRS, incident_log
from tourniquet.cli.main import main
from tourniquet.connectors.audit import AuditConfig, ColumnMapping, connect
from tourniquet.demo.access_log import patient_id, write_sqlite
from tourniquet.demo.platform import Platform, PlatformAccess
from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import Slapd
from tourniquet.errors import ConfigError, TransientError


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL 15 for this module (tests/postgresql.py)."""
    with throwaway_postgres() as dsn:
        yield dsn


@pytest.fixture(scope="module")
def platform_log(postgres: str) -> str:
    """The incident log in the platform's own schema: other names, other action codes, arrays."""
    import psycopg

    codes = {"view": "CONSULT", "search": "RECH", "login": "AUTH"}
    with psycopg.connect(postgres, autocommit=True) as connection:
        connection.execute("CREATE SCHEMA platform")
        connection.execute("CREATE TABLE platform.journal_acces (horodatage timestamptz NOT NULL, "
                           "utilisateur text NOT NULL, ipp text, code_action text, champs text[], ip inet, "
                           "recherche text)")
        with connection.cursor() as cursor:
            with cursor.copy("COPY platform.journal_acces FROM STDIN") as copy:
                for a in incident_log():
                    copy.write_row((a.ts, a.account, a.patient_id, codes[a.action], list(a.fields),
                                    a.source_ip, a.query))
        connection.execute("CREATE INDEX ON platform.journal_acces (utilisateur, horodatage)")
    return postgres


def _config(dsn: str, **overrides: object) -> AuditConfig:
    return AuditConfig.model_validate({
        "kind": "postgresql", "dsn": dsn, "table": "platform.journal_acces",
        "columns": ColumnMapping(timestamp="horodatage", account="utilisateur", subject="ipp", action="code_action",
                                 fields="champs", source_ip="ip", may_hold_nir=["recherche"]),
        "actions": {"CONSULT": "view", "RECH": "search", "AUTH": "login"}, "page_size": 50, **overrides,
    })


def test_postgresql_gives_the_same_scope_as_the_embedded_log(platform_log: str, tmp_path: Path) -> None:
    write_sqlite(incident_log(), tmp_path / "log.sqlite")
    reference = connect(AuditConfig(kind="sqlite", path=str(tmp_path / "log.sqlite"),
                                    columns=ColumnMapping(may_hold_nir=["query"])), state_dir=None)  # type: ignore[arg-type]
    client = connect(_config(platform_log), state_dir=None)
    accounts = ["adupont", "bmartin", "cdurand"]
    try:
        scope = client.snapshot_scope(accounts, SINCE, UNTIL)
        expected = reference.snapshot_scope(accounts, SINCE, UNTIL)
    finally:
        client.close()
        reference.close()

    assert scope.total.subjects == 159 and scope.total.events == 221
    assert scope.total.subjects_by_category == {"contact": 100, "identity": 159, "social_security_number": 5}
    assert scope.model_dump() == expected.model_dump()


def test_postgresql_events_stream_in_order_with_canonical_actions(platform_log: str) -> None:
    client = connect(_config(platform_log), state_dir=None)
    try:
        events = list(client.events(client.plan(["cdurand"], SINCE, UNTIL)))
    finally:
        client.close()

    assert len(events) == 10
    assert [e.timestamp for e in events] == sorted(e.timestamp for e in events)
    assert {e.action for e in events} == {"search", "view"}
    assert sum(e.nir_shown for e in events) == len(VALID_NIRS)
    assert events[0].subject == patient_id(200) and events[0].fields == ("last_name",)


def test_postgresql_errors_are_translated(platform_log: str, postgres: str) -> None:
    with pytest.raises(ConfigError, match="no table 'platform.missing' .*platform.journal_acces"):
        connect(_config(platform_log, table="platform.missing"), state_dir=None)
    with pytest.raises(TransientError):  # nothing listens there: down, worth retrying
        connect(_config(f"host=127.0.0.1 port={free_port()} user=postgres dbname=postgres"), state_dir=None)


@pytest.fixture(scope="module")
def platform_pg(postgres: str, platform: Platform, accesses: list[PlatformAccess]) -> str:
    """The platform in its own PostgreSQL schema; the server's default time zone is not UTC."""
    import psycopg

    regions = ("HDF", "NOR", "PDL")
    with psycopg.connect(postgres, autocommit=True) as connection:
        connection.execute("ALTER DATABASE postgres SET timezone TO 'Europe/Paris'")
        connection.execute("CREATE SCHEMA plateforme")
        connection.execute("CREATE TABLE plateforme.patient (id_patient bigint PRIMARY KEY, region text, nom text, "
                           "prenom text, date_naissance date, telephone text, email text, nir text)")
        connection.execute("CREATE TABLE plateforme.journal_acces (horodatage timestamptz NOT NULL, "
                           "utilisateur text NOT NULL, id_patient text, code_action text NOT NULL, ip_source inet)")
        with connection.cursor() as cursor:
            with cursor.copy("COPY plateforme.patient FROM STDIN") as copy:
                for p in platform.patients:
                    copy.write_row((p.id, regions[p.region % 3], p.nom, p.prenom, p.date_naissance, p.telephone,
                                    p.email, p.nir))
            with cursor.copy("COPY plateforme.journal_acces FROM STDIN") as copy:
                for a in accesses:
                    copy.write_row((a.ts, a.user, None if a.patient is None else str(a.patient), a.code, a.ip))
        connection.execute("CREATE INDEX ON plateforme.journal_acces (utilisateur, horodatage)")
        connection.execute("ANALYZE")
    return postgres


@pytest.mark.slow
def test_cli_run_on_the_platform_in_postgresql_gives_the_ground_truth(
        prefect_harness: None, platform_pg: str, platform: Platform, accesses: list[PlatformAccess], tmp_path: Path,
        slapd: Slapd, practitioners: Directory, ldap_admin: LdapAdmin, capsys: pytest.CaptureFixture[str]) -> None:
    site = write_site(tmp_path, slapd, practitioners, audit=platform.site_audit(
        kind="postgresql", dsn=platform_pg, table="plateforme.journal_acces", subjects_table="plateforme.patient"))
    since = min(planted_starts(accesses).values()) - timedelta(days=3)
    try:
        code = main(["run", PLAYBOOK, "--site", str(site), "--incident", "inc-platform-pg",
                     "-i", f"accounts={','.join(compromised(platform))}", "-i", f"since={since.isoformat()}"])
    finally:
        ldap_admin.reset_all(practitioners)

    assert code == 0, capsys.readouterr().err
    folder = scope_folder(tmp_path / "evidence" / "inc-platform-pg")
    scope = json.loads((folder / "scope.json").read_text())
    truth = platform.truth(windows_of(scope), accesses)
    assert_matches_truth(scope, truth)
    assert_people_to_warn_reach_people(folder, truth, platform)
    queries = json.loads((folder / "queries.json").read_text())
    assert {q["name"] for q in queries} >= {"daily accesses", "owner history", "scope groups", "scope events"}
