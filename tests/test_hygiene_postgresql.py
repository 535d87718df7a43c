"""The access checks of the daily hygiene playbook on a real PostgreSQL access log.

The same generated platform as tests/test_hygiene_platform.py (tests/testbed/hygiene_data.py),
smaller: 40 normal practitioners, the access-log plants (2 mass extractions in one day, 2
night-time users, 2 from an unknown network, 2 low-and-slow scrapers) and 3 accounts misused for
10, 30 and 45 days (a day worker, a night-shift worker, an emergency department) over 70 days
(~110,000 events). The log is written to SQLite, then copied into PostgreSQL in a platform's own schema:
``timestamptz`` timestamps, ``inet`` addresses, a ``text[]`` of fields, French column names, and
a server whose sessions default to Europe/Paris time.
The access checks of playbooks/hygiene.yaml must find every planted case and flag no normal
account on PostgreSQL, exactly as on SQLite, with the same numbers. Missing PostgreSQL skips locally and fails in CI.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import yaml

from tests.postgresql import throwaway_postgres
from tests.testbed.hygiene_data import (
    MISUSE_CHECKS,
    NORMAL_PROFILES,
    PLANTS,
    AttackPlan,
    Scenario,
    build_scenario,
    write_access_log,
)
from tourniquet.config import SiteConfig
from tourniquet.connectors.audit import AuditConfig, ColumnMapping
from tourniquet.hygiene import HygieneResult, load_hygiene_text, run_hygiene
from tourniquet.hygiene.checks import CHECKS
from tourniquet.site import Site

PLAYBOOK = Path(__file__).resolve().parents[1] / "playbooks" / "hygiene.yaml"
ACCESS_PLANTS = {name: PLANTS[name] for name in ("spike", "night", "foreign_ip", "slow")}
ATTACKS = (AttackPlan("day", 10), AttackPlan("night_shift", 30), AttackPlan("emergency", 45))
NORMAL_ROLES = {name for name, _ in NORMAL_PROFILES}
TABLE = "plateforme.journal_acces"
COLUMNS = ColumnMapping(timestamp="horodatage", account="utilisateur", subject="ipp", action="code_action",
                        fields="champs", source_ip="ip")


@dataclass
class Logs:
    scenario: Scenario
    sqlite: Path
    dsn: str
    events: int


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logs]:
    import psycopg

    folder = tmp_path_factory.mktemp("hygiene-pg")
    scenario = build_scenario(40, days=70, plants=ACCESS_PLANTS, attacks=ATTACKS)
    events = write_access_log(scenario, folder / "audit.sqlite")
    with throwaway_postgres() as dsn:
        source = sqlite3.connect(folder / "audit.sqlite")
        with psycopg.connect(dsn, autocommit=True) as connection:
            # A French platform's server runs in local time: sessions see timestamptz in Europe/Paris
            # unless the client asks otherwise (the checks' windows and hours are UTC).
            connection.execute("ALTER DATABASE postgres SET timezone = 'Europe/Paris'")
            connection.execute("CREATE SCHEMA plateforme")
            connection.execute(f"CREATE TABLE {TABLE} (horodatage timestamptz NOT NULL, utilisateur text NOT NULL, "
                               "ipp text NOT NULL, code_action text NOT NULL, champs text[], ip inet)")
            with connection.cursor() as cursor, cursor.copy(f"COPY {TABLE} FROM STDIN") as copy:
                for ts, account, patient, action, fields, ip in source.execute("SELECT * FROM access_log"):
                    moment = datetime.fromisoformat(ts).replace(tzinfo=timezone.utc)  # stored as UTC text
                    copy.write_row((moment, account, patient, action, fields.split(","), ip))
            connection.execute(f"CREATE INDEX ON {TABLE} (utilisateur, horodatage)")
            connection.execute(f"CREATE INDEX ON {TABLE} (horodatage)")
            connection.execute(f"ANALYZE {TABLE}")
        source.close()
        yield Logs(scenario, folder / "audit.sqlite", dsn, events)


def _access_playbook() -> str:
    """The shipped daily playbook reduced to its access-log checks, same parameters, no response."""
    data = yaml.safe_load(PLAYBOOK.read_text(encoding="utf-8"))
    data["checks"] = [c for c in data["checks"] if CHECKS[c["check"]].kind == "access"]
    data.pop("respond", None)
    return yaml.safe_dump(data, sort_keys=False)


def _run(tmp_path: Path, audit: AuditConfig, as_of: datetime) -> HygieneResult:
    site = Site(SiteConfig(
        site="t", state_dir=tmp_path / "state", evidence_dir=tmp_path / "evidence", audit=audit,
        directory={"url": "ldap://127.0.0.1:9", "allow_plaintext": True, "bind_dn": "cn=x",  # never contacted
                   "bind_password": {"env": "UNUSED"}, "base_dn": "ou=people,dc=x"},
    ))
    return run_hygiene(load_hygiene_text(_access_playbook()), site, as_of=as_of, respond=False)


def _found(result: HygieneResult) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for finding in result.findings:
        found.setdefault(finding.kind, set()).add(finding.account)
    return found


@pytest.fixture(scope="module")
def on_sqlite(logs: Logs, tmp_path_factory: pytest.TempPathFactory) -> HygieneResult:
    audit = AuditConfig(kind="sqlite", path=str(logs.sqlite))  # type: ignore[call-arg]
    return _run(tmp_path_factory.mktemp("sqlite-run"), audit, logs.scenario.as_of)


@pytest.fixture(scope="module")
def on_postgresql(logs: Logs, tmp_path_factory: pytest.TempPathFactory) -> HygieneResult:
    audit = AuditConfig.model_validate({"kind": "postgresql", "dsn": logs.dsn, "table": TABLE, "columns": COLUMNS})
    return _run(tmp_path_factory.mktemp("pg-run"), audit, logs.scenario.as_of)


@pytest.mark.parametrize("backend", ["on_sqlite", "on_postgresql"])
def test_every_planted_case_is_found_and_no_normal_account_is_flagged(
    logs: Logs, backend: str, request: pytest.FixtureRequest
) -> None:
    result: HygieneResult = request.getfixturevalue(backend)
    scenario = logs.scenario
    assert logs.events > 50_000
    assert all(info["status"] == "completed" for info in result.checks.values()), result.checks
    found = _found(result)
    assert set(scenario.expected) <= set(found), found
    roles = {a.uid: a.role for a in scenario.accounts}
    assert {(f.account, f.kind) for f in result.findings if roles[f.account] in NORMAL_ROLES} == set()
    spikes = {a.uid for a in scenario.role("spike")}
    slow = {a.uid for a in scenario.role("slow")}
    ongoing = set(scenario.attacks)
    for kind, planted in scenario.expected.items():
        # one day of mass extraction also piles up distinct patients over the rolling window; the slow
        # scrapers' days stand out against their days before the scraping; a misused account may show anywhere
        allowed = planted | ongoing | (spikes if kind == "slow_scraping" else slow if kind == "unusual_volume" else set())
        assert planted <= found[kind] <= allowed, (kind, found[kind], planted)
    for uid, attack in scenario.attacks.items():
        kinds = {f.kind for f in result.findings if f.account == uid}
        assert kinds & MISUSE_CHECKS, (uid, attack)
        starts = {f.evidence["started"] for f in result.findings if f.account == uid and "started" in f.evidence}
        assert starts and all(abs((date.fromisoformat(s) - attack.start).days) <= 1 for s in starts), (uid, starts)


def test_postgresql_gives_the_same_findings_and_figures_as_sqlite(
    on_sqlite: HygieneResult, on_postgresql: HygieneResult
) -> None:
    def findings(result: HygieneResult) -> dict[tuple[str, str], dict[str, object]]:
        return {(f.kind, f.account): f.evidence for f in result.findings}

    sqlite, postgresql = findings(on_sqlite), findings(on_postgresql)
    assert sqlite.keys() == postgresql.keys()
    for key, evidence in sqlite.items():
        other = postgresql[key]
        if key[0] == "new_source_ip":  # first_seen: SQLite keeps the stored text, PostgreSQL a timestamptz
            for mine, theirs in zip(evidence["new_addresses"], other["new_addresses"]):  # type: ignore[call-overload]
                assert datetime.fromisoformat(mine.pop("first_seen")).replace(tzinfo=timezone.utc) == \
                    datetime.fromisoformat(theirs.pop("first_seen"))
        assert evidence == other, key
