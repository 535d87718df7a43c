"""The scope of many accounts at once, in one grouped pass, says exactly what each account's own scope says.

Scenario: a regional platform (three regions' patients, 120 days) where 24 practitioners' accounts were
misused in the four styles attribution knows, next to 36 clean ones. With ``since: auto`` each account
gets its own window, so the SQL source reads all of them in one pass: the accounts and their windows
joined to the log as one table, not one ``OR`` term each. The figures of that pass — per account
(events, people, categories, addresses, anomalous split, attack start) and the people list — must be
those of the same scope read the old way (one ``OR`` term per window), and each account's row those of
a scope of that account alone; on SQLite and on a real PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.postgresql import throwaway_postgres
from tourniquet.connectors.audit import AuditConfig, connect
from tourniquet.connectors.audit.sql import SqlSource
from tourniquet.demo.platform import Platform, build_platform, site_audit, write_platform_sqlite
from tourniquet.scope import AffectedSubject, Scope

END = datetime(2025, 9, 8, tzinfo=timezone.utc)
USERS = [f"ps{n:03d}" for n in range(60)]
ATTACKED = USERS[::5] + USERS[1::5][:12]


@pytest.fixture(scope="module")
def platform() -> Platform:
    return build_platform(USERS, ATTACKED, end=END, days=120, patients_per_region=3000,
                          attack_days_ago=(40, 22, 11, 30, 55), attack_per_day=25, seed=12)


@pytest.fixture(scope="module")
def sqlite_log(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("grouped") / "platform.sqlite"
    write_platform_sqlite(platform, path)
    return site_audit(kind="sqlite", path=str(path))


@pytest.fixture(scope="module")
def postgres_log(platform: Platform) -> Iterator[dict[str, Any]]:
    import psycopg

    with throwaway_postgres() as dsn:
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute("CREATE TABLE patient (id_patient bigint PRIMARY KEY, region text, nom text, "
                               "prenom text, date_naissance date, telephone text, email text, nir text)")
            connection.execute("CREATE TABLE journal_acces (horodatage timestamptz NOT NULL, utilisateur text NOT "
                               "NULL, id_patient bigint, code_action text NOT NULL, ip_source text)")
            with connection.cursor() as cursor:
                with cursor.copy("COPY patient FROM STDIN") as copy:
                    for p in platform.patients:
                        copy.write_row((p.id, "R", p.nom, p.prenom, p.date_naissance, p.telephone, p.email, p.nir))
                with cursor.copy("COPY journal_acces FROM STDIN") as copy:
                    for a in platform.accesses():
                        copy.write_row((a.ts, a.user, a.patient, a.code, a.ip))
            connection.execute("CREATE INDEX ON journal_acces (utilisateur, horodatage)")
            connection.execute("ANALYZE")
        yield site_audit(kind="postgresql", dsn=dsn)


def _scope(audit: dict[str, Any], accounts: list[str], grouped_from: int,
           monkeypatch: pytest.MonkeyPatch) -> tuple[Scope, list[AffectedSubject], list[dict[str, Any]]]:
    monkeypatch.setattr(SqlSource, "GROUPED_FROM", grouped_from)
    client = connect(AuditConfig.model_validate(audit), state_dir=None)
    people: list[AffectedSubject] = []
    try:
        scope = client.snapshot_scope(accounts, "auto", END, on_subject=people.append)
        queries = list(client.source.queries)  # type: ignore[attr-defined]
    finally:
        client.close()
    return scope, people, queries


def _row(scope: Scope, account: str) -> dict[str, Any]:
    (row,) = [r for r in scope.accounts if r.account == account]
    return row.model_dump()


@pytest.mark.parametrize("log", ["sqlite_log", "postgres_log"])
def test_one_grouped_pass_gives_the_figures_of_the_per_window_reading_and_of_each_account_alone(
    log: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    audit = request.getfixturevalue(log)

    grouped, grouped_people, queries = _scope(audit, USERS, 1, monkeypatch)
    per_window, per_window_people, old_queries = _scope(audit, USERS, 10**9, monkeypatch)

    assert any(" JOIN " in q["sql"] and "VALUES" in q["sql"] for q in queries)  # it did read in one grouped pass
    assert not any("VALUES" in q["sql"] for q in old_queries)
    assert grouped.model_dump() == per_window.model_dump()
    assert [p.model_dump() for p in grouped_people] == [p.model_dump() for p in per_window_people]
    assert grouped.total.anomalous.events > 0 and {r.account for r in grouped.accounts if r.attack_start} >= set(ATTACKED[:6])
    for account in (ATTACKED[0], ATTACKED[7], USERS[3]):
        alone, _, _ = _scope(audit, [account], 10**9, monkeypatch)
        assert _row(alone, account) == _row(grouped, account)
    assert grouped.since < END - timedelta(days=20)
