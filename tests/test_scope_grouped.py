"""The scope of many accounts at once, in one grouped pass, says exactly what each account's own scope says.

Scenario: a regional platform (three regions' patients, 120 days) where 24 practitioners' accounts were
misused in the four styles attribution knows, next to 36 clean ones. With ``since: auto`` each account
gets its own window, so the SQL source reads all of them in one pass: the accounts and their windows
joined to the log as one table, not one ``OR`` term each. The figures of that pass — per account
(events, people, categories, addresses, anomalous split, attack start) and the people list — must be
those of the same scope read the old way (one ``OR`` term per window), and each account's row those of
a scope of that account alone; on SQLite and on a real PostgreSQL. At incident size the scope is read in a
process of its own (three regions' scopes would otherwise share one core): the same figures, the same
frozen events and people files, and a failure there is the step's error.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
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


def test_at_incident_size_the_scope_is_read_in_a_process_of_its_own_with_the_same_figures_and_files(
    sqlite_log: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three regions' scopes would share one core on the threads of one flow run: at size, each gets a process."""
    import gzip

    from tourniquet.actions import scope_process
    from tourniquet.actions.audit import _people_columns

    config = AuditConfig.model_validate(sqlite_log)
    keys = {u: u for u in USERS}

    def read(where: Path, own_process_from: int) -> scope_process.ScopeReading:
        monkeypatch.setattr(scope_process, "OWN_PROCESS_FROM", own_process_from)
        where.mkdir()
        files = scope_process.ScopeFiles(where / "events.jsonl.gz", where / "subjects.csv",
                                         where / "people-to-warn.csv", _people_columns(config))
        client = connect(config, state_dir=None)
        try:
            return scope_process.read_scope(client, config, keys, "auto", END, files)
        finally:
            client.close()

    here, there = read(tmp_path / "here", 10**9), read(tmp_path / "there", 1)

    assert there.scope.model_dump() == here.scope.model_dump()
    assert there.events == here.events > 0
    assert [q["sql"] for q in there.queries] == [q["sql"] for q in here.queries]
    for name in ("subjects.csv", "people-to-warn.csv"):
        assert (tmp_path / "there" / name).read_text() == (tmp_path / "here" / name).read_text()
    assert gzip.decompress((tmp_path / "there" / "events.jsonl.gz").read_bytes()) == \
        gzip.decompress((tmp_path / "here" / "events.jsonl.gz").read_bytes())
    assert oct((tmp_path / "there" / "subjects.csv").stat().st_mode & 0o777) == "0o600"


def test_a_failure_in_the_scope_s_own_process_is_the_step_s_error_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tourniquet.actions import scope_process
    from tourniquet.errors import TourniquetError

    monkeypatch.setattr(scope_process, "OWN_PROCESS_FROM", 1)
    config = AuditConfig.model_validate(site_audit(kind="sqlite", path=str(tmp_path / "missing.sqlite")))
    with pytest.raises(TourniquetError):
        scope_process.read_scope(None, config, {"ps001": "ps001"}, "auto", END, None)
