"""The daily hygiene run on a generated platform whose ground truth is known.

The platform: a dedicated slapd (built like the session fixture, plus the lastbind overlay so
that ``authTimestamp`` exists) holding 200 normal practitioners and 21 planted accounts; the
national register extract as published (zipped, 2,000 other practitioners, 300 ADELI lines,
one line per activity); 100 days of access log (~570,000 events) in SQLite. Normal accounts
follow realistic profiles — day workers (80 %), night shift (10 %), emergency departments
with many new patients every day (5 %), people back from holiday (3 %), new hires (2 %).
Planted: 3 not in the register + 1 without an RPPS number, 3 dormant, 3 unprotected (2 under
the no-lockout policy, 1 pointing at a policy that does not exist), 2 mass extractions in one
day, 2 night-time users, 2 from an unknown network, 2 "low and slow" scrapers (30 new patients
a day for 25 days, under any per-day threshold) — and 3 look-alikes that must stay silent
(a locked dormant account, a new account not used yet, an account with a recent login but no
access-log event).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import ldap3
import pytest

from tests.conftest import write_site
from tests.helpers import bind_result, require_slapd
from tests.testbed.hygiene_data import (
    NORMAL_PROFILES,
    HygieneSlapd,
    Scenario,
    build_scenario,
    write_access_log,
    write_directory_ldif,
    write_register,
)
from tourniquet.engine.run import ApprovalDecision, ApprovalRequest
from tourniquet.hygiene import HygieneResult, load_hygiene_text, run_hygiene

pytestmark = pytest.mark.slow  # ~10 s to generate the platform, ~3 s per hygiene run

PLAYBOOK = Path(__file__).resolve().parents[1] / "playbooks" / "hygiene.yaml"
NORMAL = 200
NORMAL_ROLES = {name for name, _ in NORMAL_PROFILES}


@dataclass
class Platform:
    scenario: Scenario
    slapd: HygieneSlapd
    site_file: Path
    register: Path
    events: int

    def site(self, folder: Path) -> Path:
        """A site of its own (state, evidence) for a test that writes."""
        return write_site(folder, self.slapd, self.scenario.directory, directory={"page_size": 50},
                          audit={"kind": "sqlite", "path": str(self.site_file.parent / "audit.sqlite")})


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    require_slapd()
    folder = tmp_path_factory.mktemp("hygiene")
    scenario = build_scenario(NORMAL)
    server = HygieneSlapd(scenario.directory.suffix, "root-secret-for-tests", directory=folder / "slapd")
    server.configure(write_directory_ldif(scenario, folder / "data.ldif"))
    server.start()
    events = write_access_log(scenario, folder / "audit.sqlite")
    register = write_register(scenario, folder / "register")
    site_file = write_site(folder, server, scenario.directory, directory={"page_size": 50},
                           audit={"kind": "sqlite", "path": str(folder / "audit.sqlite")})
    yield Platform(scenario, server, site_file, register.parent, events)
    server.stop()


@pytest.fixture(scope="module")
def daily(platform: Platform) -> HygieneResult:
    return run_hygiene(str(PLAYBOOK), platform.site_file, as_of=platform.scenario.as_of,
                       register=str(platform.register))


def _found(result: HygieneResult) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for finding in result.findings:
        found.setdefault(finding.kind, set()).add(finding.account)
    return found


def test_every_planted_case_is_found_and_no_normal_account_is_flagged(platform: Platform, daily: HygieneResult) -> None:
    scenario = platform.scenario
    assert scenario.normal == NORMAL and platform.events > 500_000
    assert daily.accounts_swept == NORMAL + 21  # the whole people subtree, in pages of 50
    assert all(info["status"] == "completed" for info in daily.checks.values()), daily.checks
    found = _found(daily)
    for kind, planted in scenario.expected.items():
        assert planted <= found.get(kind, set()), f"{kind}: missed {planted - found.get(kind, set())}"
    roles = {a.uid: a.role for a in scenario.accounts}
    flagged_normal = {(f.account, f.kind) for f in daily.findings if roles.get(f.account) in NORMAL_ROLES}
    assert flagged_normal == set(), flagged_normal
    look_alikes = {a.uid for name in ("dormant_locked", "new_account", "recent_login") for a in scenario.role(name)}
    assert look_alikes.isdisjoint(f.account for f in daily.findings)
    # Each planted account shows up only under its own sign, except that one day of mass extraction
    # also piles up distinct patients over the rolling window, and that the low-and-slow scrapers' days
    # are well above their own oldest days in the log (the per-day check no longer compares them with
    # the scraping itself).
    spikes = {a.uid for a in scenario.role("spike")}
    slow = {a.uid for a in scenario.role("slow")}
    allowed = {"slow_scraping": spikes, "unusual_volume": slow}
    for kind, accounts in found.items():
        extra = accounts - scenario.expected[kind]
        assert extra <= allowed.get(kind, set()), (kind, extra)


def test_low_and_slow_scraping_is_caught_over_weeks_and_against_the_accounts_own_oldest_days(
    platform: Platform, daily: HygieneResult
) -> None:
    slow = {a.uid for a in platform.scenario.role("slow")}
    found = _found(daily)
    assert slow <= found["slow_scraping"]
    finding = next(f for f in daily.findings if f.kind == "slow_scraping" and f.account in slow)
    assert finding.evidence["distinct_patients_in_window"] > 3 * finding.evidence["peer_median"]
    assert finding.evidence["distinct_patients_in_window"] > 2 * finding.evidence["reference_window_patients"]
    scraping_since = (platform.scenario.as_of - timedelta(days=25)).date().isoformat()
    assert finding.evidence["reference_window"]["to"] <= scraping_since  # the log's oldest weeks, not the last ones
    # ~30 more patients a day for 25 days: against the 30 days just before, the scraping would be its own
    # baseline; against the days before its change point (the day the scraping began) it is 4 times its usual.
    for volume in (f for f in daily.findings if f.kind == "unusual_volume" and f.account in slow):
        assert volume.evidence["baseline_basis"] == f"own baseline (before its change on {scraping_since})"
        assert volume.evidence["baseline"]["to"] == scraping_since


def test_each_finding_cites_the_evidence_that_raised_it(platform: Platform, daily: HygieneResult) -> None:
    lines = daily.findings_file.read_text(encoding="utf-8").splitlines() if daily.findings_file else []
    assert len(lines) == len(daily.findings)
    summary = daily.markdown_file.read_text(encoding="utf-8") if daily.markdown_file else ""
    for finding in daily.findings:
        assert finding.account in summary
        evidence = json.loads((daily.run_dir / finding.evidence_ref).read_text(encoding="utf-8"))
        assert any(flagged["account"] == finding.account for flagged in evidence["flagged"])
        if finding.kind == "not_in_register":
            assert finding.evidence["register_file"] == platform.register.joinpath("PS_LibreAcces_202611270200.zip").name
            assert evidence["register_date"].startswith("2026-11-27")
        elif finding.kind in ("unusual_volume", "off_hours", "new_source_ip", "slow_scraping"):
            assert evidence["queries"] and all("SELECT" in q["sql"] and "params" in q for q in evidence["queries"])
            assert finding.evidence["window"]


def test_the_access_log_is_aggregated_in_the_database(platform: Platform, daily: HygieneResult) -> None:
    """Every query returns one row per account (or per account and day, or account and address), never
    events; the access checks share the per-day and per-address queries, run once."""
    cited = [q for path in (daily.run_dir / "evidence").glob("*.json")
             for q in json.loads(path.read_text(encoding="utf-8")).get("queries", [])]
    queries = list({(q["name"], q["sql"]): q for q in cited}.values())
    assert queries and all("GROUP BY" in q["sql"] or "DISTINCT" in q["sql"] or "MIN(" in q["sql"] for q in queries)
    assert len(queries) <= 6, [q["name"] for q in queries]  # coverage, dormant's, per day, per address, windows
    accounts, days = len(platform.scenario.accounts), platform.scenario.days
    assert all(q["rows"] <= accounts * days for q in queries)
    assert sum(q["rows"] for q in queries) < platform.events / 20


def test_findings_at_high_get_a_dry_run_plan_and_nothing_changes(platform: Platform, daily: HygieneResult) -> None:
    assert len(daily.responses) == 1
    plan = daily.responses[0]
    high = {f.account for f in daily.findings if f.severity.rank >= 3 and f.suggested_playbook == "credential-misuse"}
    assert plan["mode"] == "dry-run" and plan["status"] == "planned" and set(plan["accounts"]) == high
    assert Path(plan["plan"]).exists() and "plans" in plan["plan"]
    assert {c["target"] for c in plan["changes"] if c["operation"] == "lock"} == high
    slow = platform.scenario.role("slow")[0].person
    assert bind_result(platform.slapd, slow.dn, slow.password) == "success"  # a plan changes nothing


STRICT = """hygiene: strict
title: Contain low-and-slow scraping, with a person's approval
checks:
  - id: low-and-slow
    check: slow_scraping
    severity: critical
    suggest: credential-misuse
respond:
  playbook: credential-misuse
  propose_at: critical
  execute_at: critical
"""


def test_above_execute_at_nothing_runs_without_approval(platform: Platform, tmp_path: Path) -> None:
    loaded = load_hygiene_text(STRICT, "strict.yaml")
    result = run_hygiene(loaded, platform.site(tmp_path), as_of=platform.scenario.as_of)
    real = [r for r in result.responses if r["mode"] == "run"]
    assert len(real) == 1 and real[0]["status"] == "not started: approval rejected"
    assert real[0]["approval"]["approved"] is False
    for account in platform.scenario.role("slow"):
        assert bind_result(platform.slapd, account.person.dn, account.person.password) == "success"
    assert "approval: no" in (result.markdown_file.read_text(encoding="utf-8") if result.markdown_file else "")


def test_above_execute_at_an_approved_run_contains_the_scrapers(platform: Platform, tmp_path: Path) -> None:
    asked: list[ApprovalRequest] = []

    def approve(request: ApprovalRequest) -> ApprovalDecision:
        asked.append(request)
        return ApprovalDecision(True, "dr.secu", "scraping confirmed")

    loaded = load_hygiene_text(STRICT, "strict.yaml")
    slow = platform.scenario.role("slow")
    try:
        result = run_hygiene(loaded, platform.site(tmp_path), as_of=platform.scenario.as_of, approver=approve)
        real = next(r for r in result.responses if r["mode"] == "run")
        assert real["status"] == "completed", real
        assert set(asked[0].accounts) >= {a.uid for a in slow}
        assert Path(real["journal"]).exists()
        for account in slow:
            assert bind_result(platform.slapd, account.person.dn, account.person.password) == "invalidCredentials"
    finally:
        admin = ldap3.Connection(ldap3.Server(platform.slapd.url), platform.slapd.root_dn,
                                 platform.slapd.root_password, auto_bind=True)
        for account in platform.scenario.accounts:
            admin.modify(account.person.dn, {"pwdAccountLockedTime": [(ldap3.MODIFY_REPLACE, [])],
                                             "pwdReset": [(ldap3.MODIFY_REPLACE, [])]})
        admin.unbind()


def test_the_flow_publishes_a_table_and_a_summary(platform: Platform, prefect_harness: None, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from tourniquet.flows.hygiene import hygiene

    outcome = hygiene(playbook=str(PLAYBOOK), site=str(platform.site(tmp_path)), register_extract=str(platform.register),
                      as_of=platform.scenario.as_of.isoformat(), respond=True)
    assert outcome["findings"] >= sum(len(v) for v in platform.scenario.expected.values())
    assert Path(outcome["findings_file"]).exists()
    assert [r["status"] for r in outcome["responses"]] == ["planned"]  # the plan ran as task runs of this flow
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["hygiene-hygiene-findings", "hygiene-hygiene-summary"])))
    kinds = {a.key: a for a in artifacts}
    assert set(kinds) == {"hygiene-hygiene-findings", "hygiene-hygiene-summary"}
    table = kinds["hygiene-hygiene-findings"].data
    rows = json.loads(table) if isinstance(table, str) else table
    assert {row["check"] for row in rows} >= {"not-registered", "dormant", "low-and-slow"}
    assert all(row["evidence"].startswith("evidence/") for row in rows)


def test_without_a_known_default_policy_every_entry_without_its_own_is_unprotected(
    platform: Platform, tmp_path: Path
) -> None:
    site = write_site(tmp_path, platform.slapd, platform.scenario.directory, directory={"default_policy_dn": None})
    loaded = load_hygiene_text("hygiene: policies\ntitle: t\nchecks:\n  - id: unprotected\n    check: unprotected\n")
    result = run_hygiene(loaded, site, as_of=platform.scenario.as_of)
    reasons = {f.account: f.evidence["reason"] for f in result.findings}
    assert len(reasons) == NORMAL + 21
    assert sum(r == "no pwdPolicySubentry and no default policy" for r in reasons.values()) == NORMAL + 21 - 3


def test_a_site_without_access_log_still_gets_the_directory_checks(platform: Platform, tmp_path: Path) -> None:
    site = write_site(tmp_path, platform.slapd, platform.scenario.directory)  # no audit section
    result = run_hygiene(str(PLAYBOOK), site, as_of=platform.scenario.as_of, register=str(platform.register),
                         respond=False)
    status = {check: info["status"] for check, info in result.checks.items()}
    assert status == {"not-registered": "completed", "dormant": "completed", "old-password": "completed",
                      "unprotected": "completed",
                      "volume": "skipped", "off-hours": "skipped", "new-network": "skipped", "low-and-slow": "skipped",
                      "night-network": "skipped", "behaviour-change": "skipped"}
    found = _found(result)
    assert found["not_in_register"] == platform.scenario.expected["not_in_register"]
    # Without the log, only the directory says who logged in: every entry without a recent login is dormant.
    assert "no access log configured" in result.checks["dormant"]["warnings"][0]


def test_the_command_line_runs_the_same_checks(platform: Platform, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from tourniquet.cli.main import main

    code = main(["hygiene", str(PLAYBOOK), "--site", str(platform.site(tmp_path)), "--register", str(platform.register),
                 "--as-of", platform.scenario.as_of.isoformat(), "--no-respond"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "221 accounts swept" in out and "low-and-slow" in out and "findings.jsonl" in out
