"""The access checks read the platform's own table and column names, and keep the work in SQL."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tourniquet.config import SiteConfig
from tourniquet.connectors.audit import AuditConfig, ColumnMapping
from tourniquet.connectors.audit.aggregates import AuditDb
from tourniquet.connectors.audit.dialects import PostgresDialect
from tourniquet.errors import ConfigError
from tourniquet.hygiene import load_hygiene_text, run_hygiene
from tourniquet.site import Site

AS_OF = datetime(2026, 11, 28, tzinfo=timezone.utc)
COLUMNS = ColumnMapping(timestamp="horodatage", account="utilisateur", subject="patient", action="acte",
                        fields="champs", source_ip="adresse")


def _platform_log(path: Path, epoch: bool = False) -> None:
    """A platform that names things its own way: 30 colleagues in one network, one odd account."""
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE journal_acces (horodatage TEXT, utilisateur TEXT, patient TEXT, acte TEXT, "
                       "champs TEXT, adresse TEXT)")
    rows = []
    for back in range(1, 40):
        day = (AS_OF - timedelta(days=back)).date().isoformat()
        for n in range(30):
            for k in range(10):
                rows.append((f"{day}T{9 + k % 8:02d}:1{k}:00Z", f"user{n}", f"P{n}-{k}", "view", "", f"10.1.1.{n + 2}"))
        if back <= 3:  # the odd one: at 2 am local (1 am UTC), from an unknown network
            rows += [(f"{day}T01:0{k}:00Z", "user7", f"Q{k}", "search", "", "198.51.100.9") for k in range(8)]
    if epoch:
        rows = [(int(datetime.fromisoformat(r[0].replace("Z", "+00:00")).timestamp()), *r[1:]) for r in rows]
    connection.executemany("INSERT INTO journal_acces VALUES (?,?,?,?,?,?)", rows)
    connection.commit()
    connection.close()


def _site(tmp_path: Path, audit: AuditConfig) -> Site:
    return Site(SiteConfig(
        site="t", state_dir=tmp_path / "state", evidence_dir=tmp_path / "evidence", audit=audit,
        directory={"url": "ldap://127.0.0.1:9", "allow_plaintext": True, "bind_dn": "cn=x",
                   "bind_password": {"env": "UNUSED"}, "base_dn": "ou=people,dc=x"},
    ))


PLAYBOOK = """hygiene: access
title: access checks only
checks:
  - id: hours
    check: off_hours
    with: {min_events: 10, recent_days: 3, baseline_days: 30}
  - id: network
    check: new_source_ip
    with: {recent_days: 3, baseline_days: 30}
  - id: volume
    check: unusual_volume
"""


@pytest.mark.parametrize("time_format", ["%Y-%m-%dT%H:%M:%SZ", "epoch"])
def test_the_platform_column_names_are_used_and_only_the_odd_account_is_reported(tmp_path: Path, time_format: str) -> None:
    database = tmp_path / "journal.sqlite"
    _platform_log(database, epoch=time_format == "epoch")
    audit = AuditConfig(kind="sqlite", path=str(database), table="journal_acces", columns=COLUMNS,
                        time_format=time_format)
    result = run_hygiene(load_hygiene_text(PLAYBOOK), _site(tmp_path, audit), as_of=AS_OF, respond=False)
    assert {(f.check, f.account) for f in result.findings} == {("hours", "user7"), ("network", "user7")}
    assert all(info["status"] == "completed" for info in result.checks.values())
    network = next(f for f in result.findings if f.check == "network")
    assert network.evidence["new_addresses"][0]["network"] == "198.51.100.0/24"
    assert network.evidence["new_addresses"][0]["first_seen"].startswith("2026-11-25")


def test_a_log_that_does_not_have_the_configured_columns_fails_the_check_not_the_run(tmp_path: Path) -> None:
    database = tmp_path / "journal.sqlite"
    _platform_log(database)
    audit = AuditConfig(kind="sqlite", path=str(database), table="journal_acces")  # default column names
    result = run_hygiene(load_hygiene_text(PLAYBOOK), _site(tmp_path, audit), as_of=AS_OF, respond=False)
    assert {info["status"] for info in result.checks.values()} == {"failed"}
    assert "check audit.table and audit.columns" in result.checks["hours"]["error"]
    assert result.findings_file is not None and result.findings_file.exists()


def test_names_that_could_inject_sql_are_refused(tmp_path: Path) -> None:
    database = tmp_path / "journal.sqlite"
    _platform_log(database)
    with pytest.raises(ConfigError, match="not a plain table or column name"):
        AuditDb(AuditConfig(kind="sqlite", path=str(database), table="journal_acces; DROP TABLE x"))
    with pytest.raises(ConfigError, match="not found"):
        AuditDb(AuditConfig(kind="sqlite", path=str(tmp_path / "missing.sqlite")))
    with pytest.raises(ConfigError, match="time_format"):
        AuditDb(AuditConfig(kind="sqlite", path=str(database), table="journal_acces", time_format="%d/%m/%Y %H:%M"))


def test_the_same_queries_speak_postgresql_placeholders() -> None:
    dialect = PostgresDialect()
    sql = dialect.sql(f"SELECT a FROM t WHERE {dialect.local_hour('ts')} < :work_start AND x LIKE 'a%' AND ts >= :recent")
    assert "%(work_start)s" in sql and "%(recent)s" in sql and "%(tz_hours)s" in sql and "'a%%'" in sql
    assert ":work_start" not in sql
