"""Hygiene on a platform where accounts were already misused before the first run — the usual case.

The generated platform (tests/testbed/hygiene_data.py), access log only (SQLite, 90 days, ~400,000
events): 300 normal practitioners — day workers, night shifts, emergency departments (~40 patients a
day, around the clock), people back from holiday, new hires, and the look-alikes: people who moved to
nights weeks ago, teleworkers on a home network only they use, on-call doctors at night from a mobile
carrier's shared range — and the 11 accounts of ``ATTACKS``: misused since 10, 30, 45 or 60 days on
top of their owner's work (day, night-shift or emergency), at night, from the intruder's own network
(two of them share one intruder), 15 to 60 new patients a night.

Every misused account must be found by at least one misuse check, with the day its misuse began
(within a day); no normal account is flagged. The benchmark (bench/bench_hygiene.py --seeds) does
the same on 10,000 normal accounts and 10 M events, over five seeds.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from tests.testbed.hygiene_data import (
    ATTACKS,
    MISUSE_CHECKS,
    NORMAL_PROFILES,
    SCHEMA,
    Scenario,
    build_scenario,
    write_access_log,
)
from tourniquet.config import SiteConfig
from tourniquet.connectors.audit import AuditConfig
from tourniquet.hygiene import Finding, HygieneResult, load_hygiene_text, run_hygiene
from tourniquet.hygiene.checks import CHECKS
from tourniquet.site import Site

pytestmark = pytest.mark.slow  # ~5 s to generate the platform, ~2 s per run

PLAYBOOK = Path(__file__).resolve().parents[1] / "playbooks" / "hygiene.yaml"
NORMAL_ROLES = {name for name, _ in NORMAL_PROFILES}
AS_OF = datetime(2026, 11, 28, tzinfo=timezone.utc)


def access_playbook(platform: dict[str, object] | None = None) -> str:
    """The shipped daily playbook reduced to its access-log checks, same parameters, no response."""
    data = yaml.safe_load(PLAYBOOK.read_text(encoding="utf-8"))
    data["checks"] = [c for c in data["checks"] if CHECKS[c["check"]].kind == "access"]
    data.pop("respond", None)
    if platform:
        data["platform"] = {**data.get("platform", {}), **platform}
    return yaml.safe_dump(data, sort_keys=False)


def access_site(folder: Path, database: Path) -> Site:
    return Site(SiteConfig(
        site="t", state_dir=folder / "state", evidence_dir=folder / "evidence",
        audit=AuditConfig(kind="sqlite", path=str(database)),  # type: ignore[call-arg]
        directory={"url": "ldap://127.0.0.1:9", "allow_plaintext": True, "bind_dn": "cn=x",  # never contacted
                   "bind_password": {"env": "UNUSED"}, "base_dn": "ou=people,dc=x"},
    ))


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Scenario, Path]]:
    folder = tmp_path_factory.mktemp("ongoing")
    scenario = build_scenario(300, days=90, seed=1, plants={}, attacks=ATTACKS, activity=0.4)
    write_access_log(scenario, folder / "audit.sqlite", seed=11)
    yield scenario, folder / "audit.sqlite"


@pytest.fixture(scope="module")
def daily(platform: tuple[Scenario, Path], tmp_path_factory: pytest.TempPathFactory) -> HygieneResult:
    scenario, database = platform
    site = access_site(tmp_path_factory.mktemp("run"), database)
    return run_hygiene(load_hygiene_text(access_playbook()), site, as_of=scenario.as_of, respond=False)


def _by_account(result: HygieneResult) -> dict[str, list[Finding]]:
    found: dict[str, list[Finding]] = {}
    for finding in result.findings:
        found.setdefault(finding.account, []).append(finding)
    return found


def test_every_misused_account_is_found_with_the_day_it_began(platform: tuple[Scenario, Path],
                                                              daily: HygieneResult) -> None:
    scenario, _ = platform
    assert len(scenario.attacks) == len(ATTACKS) and {a.plan.days_ago for a in scenario.attacks.values()} >= {10, 30, 60}
    found = _by_account(daily)
    for uid, attack in scenario.attacks.items():
        kinds = {f.kind for f in found.get(uid, [])}
        assert kinds & MISUSE_CHECKS, (uid, attack.plan)
        # the two checks made for this: neither needs a clean recent baseline
        assert {"night_network", "behaviour_change"} <= kinds, (uid, attack.plan, kinds)
        for finding in found[uid]:
            if "started" in finding.evidence:
                started = date.fromisoformat(finding.evidence["started"])
                assert abs((started - attack.start).days) <= 1, (uid, finding.kind, started, attack.start)


def test_no_normal_account_is_flagged_not_even_the_look_alikes(platform: tuple[Scenario, Path],
                                                                daily: HygieneResult) -> None:
    scenario, _ = platform
    profiles = {a.profile for a in scenario.accounts if a.role in NORMAL_ROLES}
    assert profiles >= {"day", "night_shift", "emergency", "job_change", "teleworker", "on_call"}
    roles = {a.uid: a.role for a in scenario.accounts}
    flagged = {(f.account, roles[f.account], f.kind, f.summary) for f in daily.findings if roles[f.account] != "ongoing"}
    assert flagged == set()
    assert all(info["status"] == "completed" for info in daily.checks.values()), daily.checks


def test_the_change_point_view_explains_what_is_not_reported(platform: tuple[Scenario, Path],
                                                             daily: HygieneResult) -> None:
    """People who moved to nights have a change point too: off-hours up, the same patients (dated within a
    week: with a few accesses a day and no weekends, the first nights say little)."""
    scenario, _ = platform
    evidence = json.loads((daily.run_dir / "evidence" / "behaviour-change.json").read_text(encoding="utf-8"))
    view = {entry["account"]: entry for entry in evidence["changes"]}
    movers = [a for a in scenario.accounts if a.profile == "job_change"]
    assert movers
    for account in movers:
        entry = view[account.uid]
        assert not entry["flagged"] and "moved to nights" in entry["why_not"]
        moved = scenario.as_of.date() - timedelta(days=account.switch_back)
        assert abs((date.fromisoformat(entry["day"]) - moved).days) <= 7, (account.uid, entry["day"], moved)
    for uid in scenario.attacks:
        assert view[uid]["flagged"] and view[uid]["peers"]["ratio"] < 1.25


def test_the_baseline_is_the_accounts_normal_period_not_the_attack(platform: tuple[Scenario, Path],
                                                                   daily: HygieneResult) -> None:
    """The 60-day misuse fills the 60 days an off-hours baseline used to take: the baseline now ends
    the day it began."""
    scenario, _ = platform
    uid, attack = next((u, a) for u, a in scenario.attacks.items() if a.plan.days_ago == 60 and a.plan.host == "day")
    off = next(f for f in daily.findings if f.account == uid and f.kind == "off_hours")
    baseline = off.evidence["baseline"]
    assert abs((date.fromisoformat(baseline["to"]) - attack.start).days) <= 1
    assert baseline["why"].startswith("before its change on")
    assert off.evidence["baseline_off_hours_per_day"] < 1 < 10 < off.evidence["recent_off_hours_per_day"]


def test_each_finding_says_why_in_numbers(platform: tuple[Scenario, Path], daily: HygieneResult) -> None:
    scenario, _ = platform
    for finding in daily.findings:
        assert finding.evidence_ref == f"evidence/{finding.check}.json"
        assert (daily.run_dir / finding.evidence_ref).exists()
        assert finding.evidence["window"]
        if finding.kind == "night_network":
            attack = scenario.attacks[finding.account]
            assert finding.evidence["network"] == f"{attack.network}.0/24"
            assert finding.evidence["other_accounts_in_working_hours"] == 0
            assert finding.evidence["off_hours_events"] >= 20 and finding.evidence["nights"] >= 3
        elif finding.kind == "behaviour_change":
            change = finding.evidence["change"]
            assert change["metrics"]["patients"]["after_per_day"] > change["metrics"]["patients"]["before_per_day"]
            assert finding.evidence["peers"]["accounts"] >= 5
            assert "home network" in finding.evidence["peers"]["group"]
    shared = [f for f in daily.findings if f.kind == "night_network" and f.evidence["other_accounts_off_hours"]]
    assert len(shared) == 2  # one intruder, two accounts: each finding names the other


def test_a_known_network_is_never_a_night_network(platform: tuple[Scenario, Path], tmp_path: Path) -> None:
    scenario, database = platform
    intruders = sorted({f"{a.network}.0/24" for a in scenario.attacks.values()})
    playbook = load_hygiene_text(access_playbook({"known_networks": intruders}))
    result = run_hygiene(playbook, access_site(tmp_path, database), as_of=scenario.as_of, respond=False)
    assert not [f for f in result.findings if f.kind == "night_network"]
    assert {f.account for f in result.findings if f.kind == "behaviour_change"} == set(scenario.attacks)


def _write(path: Path, rows: list[tuple[str, str, str, str, str, str]]) -> None:
    connection = sqlite3.connect(path)
    connection.execute(SCHEMA)
    connection.executemany("INSERT INTO access_log VALUES (?,?,?,?,?,?)", rows)
    connection.commit()
    connection.close()


def test_an_establishment_that_changes_all_at_once_is_not_an_intrusion(tmp_path: Path) -> None:
    """A ward whose new screen logs every patient of a list, around the clock, from one day on: every
    account of that network steps up at the same date; its peers explain it."""
    rows = []
    switch = AS_OF.date() - timedelta(days=20)
    for n in range(12):
        for back in range(60, 0, -1):
            day = AS_OF.date() - timedelta(days=back)
            after = day >= switch
            for k in range(30 if after else 10):
                hour = (k * 5) % 24 if after else 8 + k % 8  # after: listed around the clock
                rows.append((f"{day} {hour:02d}:{n:02d}:{k:02d}", f"nurse{n}", f"P{n}-{back}-{k}", "view", "", f"10.9.9.{n + 2}"))
    _write(tmp_path / "audit.sqlite", rows)
    result = run_hygiene(load_hygiene_text(access_playbook()), access_site(tmp_path, tmp_path / "audit.sqlite"),
                         as_of=AS_OF, respond=False)
    assert not [f for f in result.findings if f.kind == "behaviour_change"]
    evidence = json.loads((result.run_dir / "evidence" / "behaviour-change.json").read_text(encoding="utf-8"))
    assert len(evidence["changes"]) == 12
    for entry in evidence["changes"]:
        assert entry["day"] == switch.isoformat() and not entry["flagged"]
        assert "its peers changed too" in entry["why_not"] and entry["peers"]["accounts"] == 11
