"""The incident record: every incident of a site (or of three regions) with its state, through a whole life.

Scenario, on one site: incident A is planned, approved and applied (contained), its investigation
concluded, its account recovered, then closed; incident B is contained and then undone (a false
alarm); incident C is only planned. ``tourniquet incidents`` lists the three with their states at
each stage, ``tourniquet incidents show A`` tells the story from the journal (who approved which plan
hash, what was done per account and system, the conclusion, the recovery). Across three regions, one
incident is one row with its three regions.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.helpers import LdapAdmin
from tests.regions_testbed import Country, country  # noqa: F401 (a fixture)
from tourniquet.cli.main import main
from tourniquet.config import load_site
from tourniquet.demo.practitioners import Directory
from tourniquet.lifecycle import Part, fold
from tourniquet.national.folder import folder_for, latest_summary


def _rows(capsys: pytest.CaptureFixture[str], *sites: str) -> dict[str, dict]:
    capsys.readouterr()
    assert main(["incidents", *[arg for site in sites for arg in ("--site", site)], "--json"]) == 0
    return {row["incident"]: row for row in json.loads(capsys.readouterr().out)}


def _state(capsys: pytest.CaptureFixture[str], site: str, incident: str) -> str:
    return str(_rows(capsys, site)[incident]["state"])


def _ok(argv: list[str], capsys: pytest.CaptureFixture[str], codes: tuple[int, ...] = (0,)) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code in codes, out + err
    return out


def test_one_site_incidents_through_a_whole_life(
    site_file: Path, practitioners: Directory, ldap_admin: LdapAdmin, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    site = str(site_file)
    a, b, c = (practitioners.practitioners[i] for i in (50, 51, 52))
    _ok(["plan", "credential-misuse", "-i", f"accounts={a.rpps}", "--site", site, "--incident", "inc-life-a"], capsys)
    _ok(["plan", "credential-misuse", "-i", f"accounts={b.uid}", "--site", site, "--incident", "inc-life-b"], capsys)
    _ok(["plan", "credential-misuse", "-i", f"accounts={c.uid}", "--site", site, "--incident", "inc-life-c"], capsys)
    assert {i: r["state"] for i, r in _rows(capsys, site).items()} == {
        "inc-life-a": "planned", "inc-life-b": "planned", "inc-life-c": "planned"}

    _ok(["apply", "inc-life-a", "--approver", "Dr Oncall", "--site", site], capsys)
    _ok(["apply", "inc-life-b", "--approver", "Dr Oncall", "--site", site], capsys)
    row = _rows(capsys, site)["inc-life-a"]
    assert (row["state"], row["accounts_named"], row["accounts_contained"]) == ("contained", 1, 1)
    assert row["ticket"] and row["opened"] <= row["last_change"]

    _ok(["conclude", "inc-life-a", "--by", "Dr Enquête", "--finding", "phished password", "--site", site], capsys)
    assert _state(capsys, site, "inc-life-a") == "concluded"
    _ok(["recover", "inc-life-a", "--account", a.uid, "--password-file", str(tmp_path / "otp"), "--site", site],
        capsys)
    assert _state(capsys, site, "inc-life-a") == "recovered"
    _ok(["incidents", "close", "inc-life-a", "--by", "Dr Oncall", "--note", "owner has a new password",
         "--site", site], capsys)

    _ok(["undo", "inc-life-b", "--site", site], capsys)
    states = {i: r["state"] for i, r in _rows(capsys, site).items()}
    assert states == {"inc-life-a": "closed", "inc-life-b": "undone", "inc-life-c": "planned"}

    table = _ok(["incidents", "--site", site], capsys)
    assert table.splitlines()[0].split()[:2] == ["incident", "state"] and "inc-life-c" in table

    story = _ok(["incidents", "show", "inc-life-a", "--site", site], capsys)
    lines = story.splitlines()
    assert lines[0].startswith("incident inc-life-a: closed")
    plan_hash = _rows(capsys, site)["inc-life-a"]["plan"]
    said = "\n".join(lines)
    for expected in (f"plan {plan_hash[:12]} made", f"Dr Oncall approved plan {plan_hash[:12]} (SHA-256 {plan_hash})",
                     f"{a.uid} contained: applied: scramble_password (directory), lock (directory)",
                     "investigation concluded by Dr Enquête: phished password",
                     f"{a.uid} recovered: applied: set_one_time_password (directory)",
                     "incident closed by Dr Oncall: owner has a new password"):
        assert expected in said, said
    times = [line[2:21] for line in lines[1:]]
    assert times == sorted(times), "in time order"
    assert main(["incidents", "show", "inc-nothing-here", "--site", site]) == 2


def test_three_regions_make_one_incident_with_its_regions(
    prefect_harness: None, country: Country, tmp_path: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    sites = [str(p) for p in country.sites(tmp_path)]
    try:
        args = [arg for site in sites for arg in ("--site", site)]
        out = _ok(["run", "credential-misuse", *args, "-i", f"accounts={','.join(country.ids())}",
                   "-i", f"since={country.since().isoformat()}", "-i", "reason=DNS alert"], capsys)
        incident = next(line for line in out.splitlines() if line.startswith("RUN:")).split(" incident ")[1].split()[0]
        rows = _rows(capsys, *sites)
        assert list(rows) == [incident]
        row = rows[incident]
        assert row["regions"] == ["hdf", "nor", "pdl"]
        assert (row["state"], row["accounts_named"], row["accounts_contained"]) == ("scope frozen", 10, 10)
        assert row["people_in_scope"] and row["people_in_scope"] > 0
        national = latest_summary(folder_for(load_site(sites[0]).evidence_dir, incident))
        assert national and row["people_in_scope"] == national["people"], "each person once across regions"
        assert _rows(capsys, sites[0])[incident]["accounts_contained"] == 4  # one region: its own part

        story = _ok(["incidents", "show", incident, *args], capsys)
        assert "regions hdf, nor, pdl" in story.splitlines()[0]
        assert "[nor] " in story and "scope frozen:" in story

        _ok(["undo", incident, *args], capsys, codes=(0, 1))
        assert _rows(capsys, *sites)[incident]["state"] == "undone"
    finally:
        country.reset()


def test_three_regions_plan_then_apply_each_region_its_part(
    country: Country, tmp_path: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    sites = [str(p) for p in country.sites(tmp_path)]
    try:
        args = [arg for site in sites for arg in ("--site", site)]
        _ok(["plan", "credential-misuse", *args, "-i", f"accounts={','.join(country.ids())}",
             "-i", f"since={country.since().isoformat()}", "--incident", "inc-regions-plan"], capsys)
        rows = _rows(capsys, *sites)
        assert (rows["inc-regions-plan"]["state"], rows["inc-regions-plan"]["regions"]) == ("planned",
                                                                                           ["hdf", "nor", "pdl"])
        out = _ok(["apply", "inc-regions-plan", "--approver", "Dr National", *args], capsys)
        assert out.count("approved by Dr National: completed") == 3, out
        row = _rows(capsys, *sites)["inc-regions-plan"]
        assert (row["state"], row["accounts_named"], row["accounts_contained"]) == ("scope frozen", 10, 10)
    finally:
        country.reset()


def test_three_regions_one_approval_in_prefect_applies_each_regions_plan(
    prefect_harness: None, country: Country, tmp_path: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    import threading

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    from tourniquet.flows.respond import respond

    sites = [str(p) for p in country.sites(tmp_path)]
    incident = "inc-regions-approval"
    box: dict = {}
    thread = threading.Thread(target=lambda: box.update(state=respond(
        accounts="\n".join(country.ids()), site="\n".join(sites), incident=incident,
        since=country.since().isoformat(), return_state=True)), daemon=True)
    thread.start()
    try:
        paused = None
        for _ in range(300):
            with get_client(sync_client=True) as client:
                runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[f"{incident}-plan"])))
            paused = next((r for r in runs if r.state and r.state.is_paused()), None)
            if paused:
                break
            time.sleep(0.3)
        assert paused is not None, "the run never waited on its approval"
        rows = _rows(capsys, *sites)
        assert (rows[incident]["state"], rows[incident]["regions"]) == ("awaiting approval", ["hdf", "nor", "pdl"])
        assert main(["approve", incident, "--approver", "Dr National"]) == 0
        thread.join(timeout=180)
        state = box["state"]
        assert state.is_completed(), state.message
        assert [r["region"] for r in state.result()["regions"]] == ["hdf", "nor", "pdl"]
        row = _rows(capsys, *sites)[incident]
        assert (row["state"], row["accounts_named"], row["accounts_contained"]) == ("scope frozen", 10, 10)
        for site in sites:
            journal = [json.loads(line) for line in
                       (Path(site).parent / "evidence" / incident / "journal.jsonl").read_text().splitlines()]
            [approval] = [r for r in journal if r["type"] == "approval" and r["step"] == "plan"]
            assert approval["approver"] == "Dr National" and approval["run"] == str(paused.id)
    finally:
        thread.join(timeout=5)
        country.reset()


def test_the_fold_is_pure_and_expires_an_unanswered_plan() -> None:
    plan = {"format": "tourniquet-plan/1", "incident": "inc-x", "created": "2026-12-01T10:00:00+00:00",
            "expires": "2026-12-02T10:00:00+00:00", "sha256": "ab" * 32, "path": "p",
            "accounts": [{"named_by": "10908301665", "account": "bbernard", "changes": []}]}
    asked = {"type": "approval", "status": "asked", "plan": "ab" * 32, "time": "2026-12-01T10:00:01+00:00",
             "expires": plan["expires"]}
    part = Part("test", plans=[plan], decisions=[asked])
    from datetime import datetime, timezone

    waiting = fold("inc-x", [part], now=datetime(2026, 12, 1, 12, tzinfo=timezone.utc))
    later = fold("inc-x", [part], now=datetime(2026, 12, 3, tzinfo=timezone.utc))
    assert (waiting.state, later.state) == ("awaiting approval", "plan expired")
    assert waiting.accounts_named == ["bbernard"]
    assert [e.text.split(":")[0] for e in waiting.events] == ["plan abababababab made",
                                                             "approval of plan abababababab asked (until 2026-12-02T10"]
