"""The same incident read from a real PostgreSQL access log (server started by the tests).

The platform stores timestamps as ``timestamptz`` and the fields shown as a ``text[]`` array, with
its own column names and action codes: the mapping in the site configuration bridges them.
Missing PostgreSQL skips locally and fails in CI.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgresql import free_port, throwaway_postgres
from tests.test_audit_scope import SINCE, UNTIL, VALID_NIRS, incident_log
from tourniquet.connectors.audit import AuditConfig, ColumnMapping, connect
from tourniquet.demo.access_log import patient_id, write_sqlite
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
                                    columns=ColumnMapping(may_hold_nir=["query"])))  # type: ignore[arg-type]
    client = connect(_config(platform_log))
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
    client = connect(_config(platform_log))
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
        connect(_config(platform_log, table="platform.missing"))
    with pytest.raises(TransientError):  # nothing listens there: down, worth retrying
        connect(_config(f"host=127.0.0.1 port={free_port()} user=postgres dbname=postgres"))
