"""What did the stolen accounts touch? Exact counts on a log whose ground truth is known.

Three compromised accounts (adupont, bmartin, cdurand) among a bystander's normal traffic:
adupont read patients 0-99 (identity), bmartin 50-149 (identity + phone, ten of them twice),
cdurand searched by social security number. People seen by several accounts count once; events
before the window, at its end (exclusive) or by the bystander are not counted. The same log is
read from SQLite, JSON lines (plain and gzipped folder) and CSV: every source gives the same answer.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tourniquet.connectors.audit import AuditConfig, ColumnMapping, connect
from tourniquet.demo.access_log import (
    IDENTITY,
    Access,
    make_nir,
    patient_id,
    write_csv,
    write_jsonl,
    write_sqlite,
)
from tourniquet.errors import ConfigError
from tourniquet.nir import is_nir, nir_key
from tourniquet.scope import AffectedSubject

T0 = datetime(2025, 9, 1, tzinfo=timezone.utc)
SINCE, UNTIL = T0 + timedelta(days=1), T0 + timedelta(days=29)
NAMES = ("last_name", "first_name")

#: NIRs that a classifier accepting only sex 1/2 and months 01-12 would miss, and one it would find.
VALID_NIRS = [make_nir("7", 90, 30, "2A"), make_nir("2", 72, 62, "59"), make_nir("8", 1, 42, "2B"),
              make_nir("1", 85, 5, "75")]


def _wrong_key(nir: str) -> str:
    return nir[:13] + f"{(int(nir[13:]) % 97) + 1:02d}"


def _with_key(body: str) -> str:
    return body + f"{nir_key(body):02d}"


#: Values shaped like NIRs that are not: wrong key, month 13, order 000, department 00, 15 random digits.
NOT_NIRS = [_wrong_key(make_nir("1", 85, 5, "75")), _with_key("1851378006084"), _with_key("1850578006000"),
            _with_key("1850500006084"), "123456789012345"]


def incident_log() -> list[Access]:
    log: list[Access] = []
    a_start, b_start, c_start = T0 + timedelta(days=2), T0 + timedelta(days=3), T0 + timedelta(days=4)
    log.append(Access(SINCE + timedelta(hours=1), "adupont", None, "login", (), "10.0.0.1"))
    log += [Access(a_start + timedelta(minutes=i), "adupont", patient_id(i), "view", NAMES, "10.0.0.1")
            for i in range(100)]
    log += [Access(b_start + timedelta(minutes=i), "bmartin", patient_id(50 + i), "search", NAMES + ("phone",),
                   "185.220.101.7") for i in range(100)]
    log += [Access(b_start + timedelta(hours=5, minutes=i), "bmartin", patient_id(50 + i), "search",
                   NAMES + ("phone",), "185.220.101.8") for i in range(10)]
    for i, value in enumerate(VALID_NIRS + NOT_NIRS):
        log.append(Access(c_start + timedelta(minutes=i), "cdurand", patient_id(200 + i), "search", ("last_name",),
                          "185.220.101.9", query=value))
    log.append(Access(c_start + timedelta(hours=1), "cdurand", patient_id(0), "view", ("nir", "last_name"),
                      "185.220.101.9"))
    # Not in scope: before the window, at its (exclusive) end, another account.
    log.append(Access(SINCE - timedelta(seconds=1), "adupont", patient_id(900), "view", IDENTITY, "10.0.0.1"))
    log.append(Access(UNTIL, "adupont", patient_id(901), "view", IDENTITY, "10.0.0.1"))
    log += [Access(a_start + timedelta(seconds=i), "zbystander", patient_id(i), "view", IDENTITY + ("phone",),
                   "10.0.0.2") for i in range(1000)]
    return log


def _config(kind: str, path: Path) -> AuditConfig:
    return AuditConfig(kind=kind, path=str(path), columns=ColumnMapping(may_hold_nir=["query"]))  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", "jsonl", "jsonl.gz-folder", "csv"])
def audit_client(request: pytest.FixtureRequest, tmp_path: Path):
    log = incident_log()
    if request.param == "sqlite":
        write_sqlite(log, tmp_path / "log.sqlite")
        config = _config("sqlite", tmp_path / "log.sqlite")
    elif request.param == "jsonl":
        write_jsonl(log, tmp_path / "log.jsonl")
        config = _config("jsonl", tmp_path / "log.jsonl")
    elif request.param == "jsonl.gz-folder":
        (tmp_path / "exports").mkdir()
        write_jsonl(log[::2], tmp_path / "exports" / "day1.jsonl.gz")
        write_jsonl(log[1::2], tmp_path / "exports" / "day2.jsonl")
        config = _config("jsonl", tmp_path / "exports")
    else:
        write_csv(log, tmp_path / "log.csv")
        config = _config("csv", tmp_path / "log.csv")
    client = connect(config, state_dir=None)
    yield client
    client.close()


def test_scope_counts_people_records_and_categories_exactly(audit_client) -> None:
    scope = audit_client.snapshot_scope(["adupont", "bmartin", "cdurand"], SINCE, UNTIL)
    by = {a.account: a for a in scope.accounts}

    a, b, c, total = by["adupont"], by["bmartin"], by["cdurand"], scope.total
    assert (a.events, a.subjects) == (101, 100)
    assert a.records_by_category == {"identity": 100}
    assert a.first == SINCE + timedelta(hours=1) and a.last == T0 + timedelta(days=2, minutes=99)
    assert (b.events, b.subjects) == (110, 100)
    assert b.records_by_category == {"contact": 110, "identity": 110}
    assert b.source_ips == ["185.220.101.7", "185.220.101.8"]
    assert (c.events, c.subjects) == (10, 10)
    assert c.records_by_category == {"identity": 10, "social_security_number": 5}
    assert c.subjects_by_category == {"identity": 10, "social_security_number": 5}

    # patients 0-149 (adupont ∪ bmartin, cdurand's patient 0 among them) + 200-208: each person once.
    assert total.subjects == 150 + 9
    assert total.events == 101 + 110 + 10
    assert total.subjects_by_category == {"contact": 100, "identity": 159, "social_security_number": 5}
    assert total.records_by_category == {"contact": 110, "identity": 220, "social_security_number": 5}


def test_affected_subjects_list_each_person_once_with_what_was_exposed(audit_client) -> None:
    seen: list[AffectedSubject] = []
    scope = audit_client.snapshot_scope(["adupont", "bmartin", "cdurand"], SINCE, UNTIL, on_subject=seen.append)

    assert scope.subjects is None, "streamed to the callback, not kept"
    people = {s.subject: s for s in seen}
    assert len(seen) == len(people) == 159
    assert people[patient_id(0)].accounts == ["adupont", "cdurand"]
    assert people[patient_id(0)].categories == ["identity", "social_security_number"]
    assert people[patient_id(55)].accounts == ["adupont", "bmartin"]
    assert people[patient_id(55)].records == 3
    assert people[patient_id(55)].categories == ["contact", "identity"]
    assert {patient_id(900), patient_id(901)}.isdisjoint(people), "outside the window"
    assert patient_id(999) not in people, "only the bystander read it"
    nir_exposed = {s.subject for s in seen if "social_security_number" in s.categories}
    assert nir_exposed == {patient_id(0)} | {patient_id(200 + i) for i in range(len(VALID_NIRS))}


def test_frozen_events_are_exactly_the_matching_ones(audit_client) -> None:
    events = list(audit_client.events(audit_client.plan(["bmartin", "cdurand"], SINCE, UNTIL)))

    assert len(events) == 120
    assert {e.account for e in events} == {"bmartin", "cdurand"}
    if audit_client.source.sorted_groups:  # SQL sources hand the evidence over oldest first
        assert [e.timestamp for e in events] == sorted(e.timestamp for e in events)
    assert sum(e.nir_shown for e in events) == len(VALID_NIRS)


def test_an_account_with_no_events_is_listed_with_zeros(audit_client) -> None:
    scope = audit_client.snapshot_scope(["nobody"], SINCE, UNTIL)

    assert scope.accounts[0].account == "nobody" and scope.accounts[0].events == 0
    assert scope.total.subjects == 0 and scope.subjects == []


@pytest.mark.parametrize("value", VALID_NIRS + [
    "1 85 05 78 006 084 " + make_nir("1", 85, 5, "78", "006", 84)[-2:],   # written with spaces
    make_nir("3", 51, 50, "99", "135"),                                    # born abroad, month 50+
])
def test_classifier_recognises_real_nir_shapes(value: str) -> None:
    assert is_nir(value)


@pytest.mark.parametrize("value", NOT_NIRS + ["", "2A", make_nir("5", 85, 5, "78"), make_nir("1", 85, 15, "78")])
def test_classifier_refuses_what_is_not_a_nir(value: str) -> None:
    assert not is_nir(value)


def test_source_problems_are_domain_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        connect(_config("sqlite", tmp_path / "missing.sqlite"), state_dir=None)
    write_sqlite(incident_log()[:5], tmp_path / "log.sqlite")
    with pytest.raises(ConfigError, match="no table 'other_table' .*it has: access_log"):
        connect(AuditConfig(kind="sqlite", path=str(tmp_path / "log.sqlite"), table="other_table"), state_dir=None)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="not a plain table or column name"):
        connect(AuditConfig(kind="sqlite", path=str(tmp_path / "log.sqlite"),  # type: ignore[call-arg]
                            columns=ColumnMapping(account="account) OR (1=1")), state_dir=None)


def test_an_export_in_the_platform_vocabulary_counts_what_each_action_code_shows(tmp_path: Path) -> None:
    """action_fields and categories apply to file exports too (a subject table cannot be joined to a file)."""
    codes = {"view": "CONSULT_FICHE", "search": "RECH", "login": "AUTH"}
    lines = [{"horodatage": a.ts.isoformat(), "utilisateur": a.account, "ipp": a.patient_id,
              "code": codes[a.action], "ip": a.source_ip} for a in incident_log()]
    lines.append({"horodatage": (SINCE + timedelta(hours=2)).isoformat(), "utilisateur": "adupont", "ipp": "P9",
                  "code": "EXPORT_CSV", "ip": "10.0.0.1"})
    (tmp_path / "export.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    config = AuditConfig.model_validate({
        "kind": "jsonl", "path": str(tmp_path / "export.jsonl"),
        "columns": {"timestamp": "horodatage", "account": "utilisateur", "subject": "ipp", "action": "code",
                    "source_ip": "ip"},
        "action_fields": {"CONSULT_FICHE": ["nom", "prenom"], "RECH": ["nom", "prenom", "telephone"], "AUTH": []},
        "categories": {"nom": "identity", "prenom": "identity", "telephone": "contact"}})
    client = connect(config, state_dir=None)
    try:
        scope = client.snapshot_scope(["adupont", "bmartin"], SINCE, UNTIL)
    finally:
        client.close()

    by = {a.account: a for a in scope.accounts}
    assert by["adupont"].records_by_category == {"identity": 100}
    assert by["bmartin"].records_by_category == {"contact": 110, "identity": 110}
    assert scope.unknown_actions == {"EXPORT_CSV": 1}, "a code the vocabulary does not list is reported"
    assert scope.total.subjects == 151


def test_a_subject_table_needs_an_sql_log() -> None:
    with pytest.raises(ValueError, match="subjects: joining a subject table needs an SQL log"):
        AuditConfig.model_validate({"kind": "jsonl", "path": "x", "action_fields": {},
                                    "subjects": {"table": "patient", "key": "id"}})
    with pytest.raises(ValueError, match="national_id_key"):
        AuditConfig.model_validate({"kind": "sqlite", "path": "x", "subjects": {
            "table": "patient", "key": "id", "fields": {"nir": "nir"}, "national_id": "nir"}})


@given(name=st.text(max_size=30), where=st.sampled_from(["table", "timestamp", "account", "subject", "source_ip"]))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_hostile_table_and_column_names_are_refused_with_a_clear_error(tmp_path: Path, name: str, where: str) -> None:
    database = tmp_path / "log.sqlite"
    if not database.exists():
        write_sqlite(incident_log()[:5], database)
    settings_ = {"kind": "sqlite", "path": str(database)}
    if where == "table":
        settings_["table"] = name
    else:
        settings_["columns"] = {where: name}  # type: ignore[assignment]
    try:
        client = connect(AuditConfig.model_validate(settings_), state_dir=None)
    except ConfigError as exc:
        assert "audit" in str(exc)
        return
    client.close()  # only a real name can pass
    assert name.lower() in {"access_log", "ts", "account", "patient_id", "action", "fields", "source_ip", "query"}
