"""One incident across three regions: the same attack, three platforms, one response.

Scenario: the ministry's alert names ten impersonated practitioners (by uid, RPPS number or e-mail) spread
over Hauts-de-France, Normandie and Pays de la Loire (4/3/3), each region with its own real slapd, platform
log, tickets and evidence (:mod:`tests.regions_testbed`). One command contains all ten: each id resolves in
the region that holds it, each region's part runs at once as a Prefect subflow with its own guardrails,
bundle, ticket and drafts, and a national summary sealed over the three bundles says how many people were
affected — each person once, though some were seen from two regions. Whole-directory diffs prove nothing
else changed. Then the same with Normandie's directory stopped: two regions contained, Normandie named;
the re-run finishes it without touching the other two.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import bind_result
from tests.regions_testbed import CONTAINMENT, NAMES, Country, changed, country  # noqa: F401 (a fixture)
from tourniquet.cli.main import main
from tourniquet.demo.nation import NationalTruth
from tourniquet.journal import read_journal
from tourniquet.nir import is_nir

PLAYBOOK = str(Path(__file__).resolve().parents[1] / "playbooks" / "credential-misuse.yaml")


@pytest.fixture
def sites(country: Country, tmp_path: Path) -> Iterator[list[str]]:
    yield [str(p) for p in country.sites(tmp_path)]
    country.reset()


def site_args(sites: list[str]) -> list[str]:
    return [arg for site in sites for arg in ("--site", site)]


def run_args(country: Country, sites: list[str], *extra: str) -> list[str]:
    return ["run", PLAYBOOK, *site_args(sites), "-i", f"accounts={','.join(country.ids())}",
            "-i", f"since={country.since().isoformat()}", "-i", "reason=DNS alert 2026-117", *extra]


def headline(out: str) -> str:
    """The command's own first line (log lines come before it on stdout)."""
    return next(line for line in out.splitlines() if line.startswith(("RUN:", "PLAN")))


def incident_of(out: str) -> str:
    return headline(out).split(" incident ")[1].split()[0]


def printed(out: str) -> list[str]:
    """The command's own lines: from its headline on."""
    lines = out.splitlines()
    return lines[lines.index(headline(out)):]


def scope_files(evidence: Path) -> tuple[dict[str, Any], Path]:
    (folder,) = sorted((evidence / "scope").iterdir())
    return json.loads((folder / "scope.json").read_text()), folder


def national_truth(country: Country, tmp_path: Path, incident: str) -> NationalTruth:
    """The generator's own count over the windows each region's scope used."""
    windows = {}
    for name in NAMES:
        scope, _ = scope_files(tmp_path / name / "evidence" / incident)
        windows[name] = {a["account"]: (datetime.fromisoformat(a["since"]), datetime.fromisoformat(a["until"]))
                         for a in scope["accounts"]}
    return country.nation.truth(windows, {name: region.accesses for name, region in country.regions.items()})


def latest_summary(tmp_path: Path, incident: str) -> dict[str, Any]:
    records = list(read_journal(tmp_path / "hdf" / "evidence" / f"{incident}-national" / "journal.jsonl"))
    return [r["figures"] for r in records if r["type"] == "national_summary"][-1]  # type: ignore[no-any-return]


def assert_counts_are_the_truth(summary: dict[str, Any], truth: NationalTruth) -> None:
    regions = {r["region"]: r for r in summary["regions"]}
    for name in NAMES:
        assert regions[name]["people"] == truth.regions[name].people, name
        assert regions[name]["people_by_category"] == truth.regions[name].people_by_category, name
        assert regions[name]["records"] == sum(truth.regions[name].events.values()), name
        assert len(regions[name]["accounts"]) == truth.accounts[name]
    assert truth.in_several_regions > 0, "some patients were seen from two regions"
    assert summary["in_several_regions"] == truth.in_several_regions
    assert summary["people"] == truth.people < sum(truth.regions[name].people for name in NAMES), \
        "each person counted once nationally"
    assert summary["people_by_category"] == truth.people_by_category
    assert summary["accounts"] == 10 and summary["complete"] is True


def assert_contained_and_nothing_else(country: Country, name: str, before: dict[str, Any]) -> None:
    region = country.regions[name]
    diff = changed(before, region.dump())
    assert set(diff) == {p.dn.lower() for p in region.compromised()}, f"{name}: zero collateral"
    assert all(attributes <= CONTAINMENT for attributes in diff.values()), diff
    for person in region.compromised():
        assert bind_result(region.slapd, person.dn, person.password) == "invalidCredentials", person.uid


def flow_runs(incident: str) -> dict[str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_=incident)),
                                     sort=FlowRunSort.EXPECTED_START_TIME_DESC)
    newest: dict[str, Any] = {}
    for run in runs:  # the same incident id an earlier test ran today: the newest run of each name
        newest.setdefault(run.name, run)
    return newest


@pytest.mark.slow
def test_ten_accounts_in_three_regions_contained_in_one_run_and_each_person_counted_once(
        prefect_harness: None, country: Country, sites: list[str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    before = {name: region.dump() for name, region in country.regions.items()}

    code = main(run_args(country, sites))

    out, err = capsys.readouterr()
    assert code == 0, out + err
    incident = incident_of(out)
    assert "across 3 sites: 10 of 10 accounts contained" in headline(out), out
    assert "contained: " in out and "PARTIAL" not in err
    for name in NAMES:
        assert_contained_and_nothing_else(country, name, before[name])
    assert_counts_are_the_truth(latest_summary(tmp_path, incident), national_truth(country, tmp_path, incident))

    runs = flow_runs(incident)  # one flow run for the incident, a subflow per region under it
    parent = runs[f"{incident}-credential-misuse"]
    for name in NAMES:
        child = runs[f"{incident}-{name}-credential-misuse"]
        assert child.parent_task_run_id is not None and child.state_type.value == "COMPLETED"
        assert {f"region:{name}", "live"} <= set(child.tags)
    assert parent.state_type.value == "COMPLETED" and parent.state_name == "Contained", parent.state_name

    for name in NAMES:  # each region is its own controller: its own bundle, ticket and drafts
        scope, folder = scope_files(tmp_path / name / "evidence" / incident)
        assert (folder / "notification.md").is_file() and (folder / "declaration-cert-sante.md").is_file()
        assert {a["account"] for a in scope["accounts"]} == {p.uid for p in country.regions[name].compromised()}
        (ticket,) = (tmp_path / name / "tickets").glob("*.json")
        assert incident in ticket.read_text()
        with (folder / "subjects.csv").open() as handle:
            assert all(len(r["national_hash"]) in (0, 64) for r in csv.DictReader(handle))
    national = tmp_path / "hdf" / "evidence" / f"{incident}-national"
    report = (national / "report.md").read_text()
    assert "| **nation** |" in report and "seen in more than one region" in report
    words = [w.strip("`|*,.;:()") for w in (report + (national / "journal.jsonl").read_text()).split()]
    assert not any(is_nir(w) for w in words), "never a NIR in the national summary"

    assert main(["evidence", "verify", incident, *site_args(sites)]) == 0, capsys.readouterr().out
    verified = capsys.readouterr().out
    assert verified.count("] intact") == 4, verified  # three regions and the national summary
    assert "[national] intact" in verified

    # the same command again: every region already done, nothing changes, nothing is run again
    after = {name: region.dump() for name, region in country.regions.items()}
    lengths = {name: len(list(read_journal(tmp_path / name / "evidence" / incident / "journal.jsonl")))
               for name in NAMES}
    assert main(run_args(country, sites)) == 0
    again = capsys.readouterr().out
    assert again.count("by an earlier run: not run again") == 3, again
    assert {name: region.dump() for name, region in country.regions.items()} == after
    assert {name: len(list(read_journal(tmp_path / name / "evidence" / incident / "journal.jsonl")))
            for name in NAMES} == lengths

    # a false alarm after all: undo across the three sites gives every account back
    assert main(["undo", incident, *site_args(sites)]) == 0, capsys.readouterr().out
    undone = capsys.readouterr().out
    assert all(f"[{name}] undo {incident}:" in undone for name in NAMES), undone
    for name, region in country.regions.items():
        locked = {dn for dn, attributes in region.dump().items() if "pwdAccountLockedTime" in attributes}
        assert not locked, f"{name}: unlocked again"
    assert main(["evidence", "verify", incident, *site_args(sites)]) == 0, capsys.readouterr().out


@pytest.mark.slow
def test_a_region_that_is_down_does_not_stop_the_others_and_the_rerun_finishes_it(
        prefect_harness: None, country: Country, sites: list[str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    before = {name: region.dump() for name, region in country.regions.items()}
    normandie = country.regions["nor"]
    normandie.slapd.stop()

    code = main(run_args(country, sites))

    out, err = capsys.readouterr()
    assert code == 4, out + err  # partial: two regions contained, Normandie's accounts wait
    incident = incident_of(out)
    waits = country.ids()[4:7]  # Normandie's three, as the alert named them
    assert "across 3 sites: 7 of 10 contained; waiting: " in headline(out), out
    assert all(f"{name} (region nor down)" in headline(out) for name in waits), headline(out)
    assert "PARTIAL: 7 of 10 contained; waiting: " in err, err
    assert "nor  not run" in out and "its directory could not be searched" in out, out
    for name in ("hdf", "pdl"):
        assert_contained_and_nothing_else(country, name, before[name])
    waiting = [line for line in printed(out) if line.strip().startswith("waiting")]
    assert len(waiting) == 3 and all("nor could not be searched" in line for line in waiting), out
    first = latest_summary(tmp_path, incident)
    assert first["complete"] is False and "not counted: nor" in first["explanation"]
    assert not (tmp_path / "nor" / "evidence" / incident).exists(), "nothing was started in Normandie"
    parent = flow_runs(incident)[f"{incident}-credential-misuse"]
    assert parent.state_type.value == "COMPLETED" and parent.state_name == "Partially contained", parent.state_name

    normandie.slapd.start()
    assert normandie.dump() == before["nor"], "Normandie untouched while it was down"
    contained = {name: country.regions[name].dump() for name in ("hdf", "pdl")}
    lengths = {name: len(list(read_journal(tmp_path / name / "evidence" / incident / "journal.jsonl")))
               for name in ("hdf", "pdl")}

    code = main(run_args(country, sites))

    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "across 3 sites: 10 of 10 accounts contained" in headline(out), out
    assert incident_of(out) == incident, "same command, same day: the same incident"
    assert_contained_and_nothing_else(country, "nor", before["nor"])
    for name in ("hdf", "pdl"):
        assert country.regions[name].dump() == contained[name], f"{name}: not touched again"
        records = list(read_journal(tmp_path / name / "evidence" / incident / "journal.jsonl"))
        assert len(records) == lengths[name], f"{name}: not run again"
    summary = latest_summary(tmp_path, incident)
    assert_counts_are_the_truth(summary, national_truth(country, tmp_path, incident))
    manifests = sorted((tmp_path / "hdf" / "evidence" / f"{incident}-national" / "manifests").iterdir())
    assert [m.name for m in manifests] == ["0001.json", "0002.json"], "the national summary sealed again"

    # a real incident: Normandie gives one account back to its owner (a one-time password)
    owner = country.regions["nor"].compromised()[0]
    password_file = tmp_path / "one-time-password"
    assert main(["conclude", incident, "--by", "Dr Martin", "--finding", "phishing", *site_args(sites)]) == 0
    assert capsys.readouterr().out.count("investigation concluded by Dr Martin") == 3
    assert main(["recover", incident, "--account", f"nor:{owner.uid}", *site_args(sites),
                 "--password-file", str(password_file)]) == 0, capsys.readouterr()
    assert "[nor] RECOVER" in capsys.readouterr().out
    assert password_file.is_file()
    assert "pwdAccountLockedTime" not in normandie.admin().attributes(owner.dn, ["pwdAccountLockedTime"])


def test_ids_found_in_two_regions_or_nowhere_are_named_before_anything_changes(
        country: Country, sites: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A uid two regions both have is ambiguous unless qualified; an unknown one is named with the sites searched."""
    hdf, nor = country.regions["hdf"], country.regions["nor"]
    twin = hdf.directory.practitioners[0]
    twin_dn = f"uid={twin.uid},ou=people,{nor.directory.suffix}"
    admin = nor.admin()
    assert admin.connection.add(twin_dn, ["inetOrgPerson"], {"uid": twin.uid, "cn": "Homonyme", "sn": "Homonyme",
                                                            "mail": f"{twin.uid}@nor.example"}), admin.connection.result
    try:
        before = {name: region.dump() for name, region in country.regions.items()}

        code = main(["plan", PLAYBOOK, *site_args(sites), "-i", f"accounts={twin.uid},nobody-here,"
                     f"nor:{nor.directory.practitioners[1].uid},{country.regions['pdl'].directory.practitioners[2].mail}"])

        out = capsys.readouterr().out
        assert code == 4, out  # two planned, two refused: partial
        assert "2 of 4 planned; refused: " in headline(out) and "nobody-here (no account in hdf, nor, pdl)" in out, out
        refused = [line.strip() for line in printed(out) if line.strip().startswith("refused")]
        assert any(f"'{twin.uid}' names an account in hdf" in line and "and in nor" in line
                   and f"hdf:{twin.uid} or nor:{twin.uid}" in line for line in refused), out
        assert any("'nobody-here' names no account in hdf, nor, pdl" in line for line in refused), out
        lines = {line.split()[0]: line for line in printed(out)[1:] if line.split() and line.split()[0] in NAMES}
        assert "planned: 1 account(s)" in lines["nor"] and "planned: 1 account(s)" in lines["pdl"], out
        assert "no account of this incident" in lines["hdf"], out
        assert {name: region.dump() for name, region in country.regions.items()} == before, "a plan changes nothing"
        assert not any((tmp_path / name / "evidence").exists() for name in NAMES), "no evidence written by a plan"

        code = main(["plan", PLAYBOOK, *site_args(sites), "-i", f"accounts=nor:{twin.uid}"])
        out = capsys.readouterr().out
        assert code == 0 and "planned: 1 account(s)" in out and "  nor  " in out, out
    finally:
        admin.connection.delete(twin_dn)
        admin.close()


def test_each_region_keeps_its_own_guardrails(country: Country, tmp_path: Path) -> None:
    """Hauts-de-France allows 2 accounts without approval, Pays de la Loire protects one of its own: each
    refuses in its region only, and Normandie is contained all the same (no Prefect: nobody can approve)."""
    from tourniquet.engine.regions_run import execute_across

    protected = country.regions["pdl"].compromised()[0]
    sites = [str(p) for p in country.sites(tmp_path, hdf={"limits": {"max_accounts_ceiling": 2}},
                                           pdl={"limits": {"protected": [f"uid={protected.uid}"]}})]
    before = {name: region.dump() for name, region in country.regions.items()}
    try:
        run = execute_across(PLAYBOOK, {"accounts": country.ids(), "since": country.since().isoformat()}, sites,
                             dry_run=False)

        assert run.status == "completed with errors"
        assert run.parts["hdf"].status == "failed" and "nobody approved" in (run.parts["hdf"].error or "")
        assert run.parts["pdl"].status == "completed"
        assert [r["account"] for r in run.parts["pdl"].refused] == [protected.uid], "refused in its region, by name"
        assert run.parts["nor"].status == "completed"
        assert country.regions["hdf"].dump() == before["hdf"], "over its ceiling: nothing changed in hdf"
        assert_contained_and_nothing_else(country, "nor", before["nor"])
        diff = changed(before["pdl"], country.regions["pdl"].dump())
        assert set(diff) == {p.dn.lower() for p in country.regions["pdl"].compromised()[1:]}, "protected untouched"
        assert run.error and "hdf: failed" in run.error and "pdl" not in run.error
        assert run.summary is not None and not run.summary.complete
        assert "not counted: hdf" in run.summary.explanation
        headline = run.outcomes.headline()  # the incident's one headline, in the single-site words
        assert run.outcomes.exit_code() == 4 and run.outcomes.state_name == "Partially contained", headline
        assert headline.startswith("5 of 10 contained; ") and f"{protected.uid} is protected" in headline, headline
    finally:
        country.reset()


@pytest.mark.slow
def test_nothing_contained_when_every_account_is_refused_or_protected(
        prefect_harness: None, country: Country, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown id and one Pays de la Loire protects: nothing is contained anywhere, the command exits 1,
    the headline says why for each, in the single-site words, and the incident's flow run is Failed."""
    protected = country.regions["pdl"].compromised()[0]
    sites = [str(p) for p in country.sites(tmp_path, pdl={"limits": {"protected": [f"uid={protected.uid}"]}})]
    before = {name: region.dump() for name, region in country.regions.items()}
    try:
        code = main(["run", PLAYBOOK, *site_args(sites), "-i", f"accounts=nobody-here,{protected.uid}",
                     "-i", f"since={country.since().isoformat()}", "-i", "reason=DNS alert 2026-117"])

        out, err = capsys.readouterr()
        assert code == 1, out + err
        assert "across 3 sites: nothing contained: " in headline(out), out
        assert f"{protected.uid} is protected" in headline(out), out
        assert "nobody-here (no account in hdf, nor, pdl)" in headline(out), out
        assert "NOTHING CONTAINED: nothing contained: " in err, err
        assert {name: region.dump() for name, region in country.regions.items()} == before, "nothing changed"
        runs = flow_runs(incident_of(out))
        assert runs[f"{incident_of(out)}-credential-misuse"].state_type.value == "FAILED"
    finally:
        country.reset()


def test_the_respond_form_takes_several_sites_one_per_line(prefect_harness: None, country: Country,
                                                           sites: list[str]) -> None:
    from tourniquet.flows.respond import respond

    state = respond(accounts="\n".join(country.ids()), site="\n".join(sites), reason="ministry alert",
                    wait_for_approval=False, return_state=True)

    result = state.result()
    assert result["status"] == "planned" and result["dry_run"] is True
    assert [(r["region"], len(r["accounts"])) for r in result["regions"]] == [("hdf", 4), ("nor", 3), ("pdl", 3)]
    runs = flow_runs(result["incident"])
    assert {f"{result['incident']}-{name}-DRY-RUN" for name in NAMES} <= set(runs), sorted(runs)
    assert runs[f"{result['incident']}-DRY-RUN"].flow_id != runs[f"{result['incident']}-hdf-DRY-RUN"].flow_id


@pytest.mark.slow
def test_a_region_over_its_ceiling_pauses_alone_and_is_approved_by_its_subflow_name(
        prefect_harness: None, country: Country, tmp_path: Path) -> None:
    import threading
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    from tourniquet.flows.respond import respond

    sites = [str(p) for p in country.sites(tmp_path, hdf={"limits": {"max_accounts_ceiling": 2,
                                                                     "approval_timeout_ceiling": "120s"}})]
    before = {name: region.dump() for name, region in country.regions.items()}
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.update(result=respond(
        accounts=" ".join(country.ids()), since=country.since().isoformat(), dry_run=False, site="\n".join(sites),
        incident="inc-regions-approval")), daemon=True)
    try:
        thread.start()
        name, deadline, paused = "inc-regions-approval-hdf-contain", time.monotonic() + 90, None
        while paused is None and time.monotonic() < deadline:
            with get_client(sync_client=True) as client:
                runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])))
            paused = next((r for r in runs if r.state and r.state.is_paused()), None)
            time.sleep(0.3)
        assert paused is not None, "the region over its ceiling waits for a person"
        assert "above the limit of 2" in (paused.state.message or "")
        assert country.regions["hdf"].dump() == before["hdf"], "nothing changes in hdf while it waits"
        assert main(["approve", name, "--approver", "Dr Roux", "--comment", "ministry call"]) == 0
        thread.join(timeout=180)

        assert box["result"]["status"] == "completed", box["result"]
        for region in NAMES:
            assert_contained_and_nothing_else(country, region, before[region])
        records = list(read_journal(tmp_path / "hdf" / "evidence" / "inc-regions-approval" / "journal.jsonl"))
        assert any(r["type"] == "approval" and r.get("approver") == "Dr Roux" for r in records)
    finally:
        thread.join(timeout=180)
        country.reset()
