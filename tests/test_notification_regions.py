"""Three regions, one incident: each region's DPO gets its own region's figures, the SOC one message.

Three real slapd servers and platform logs (tests/regions_testbed.py), one mail server and one hook on
loopback. Then one region is down: the SOC hears of it, once, in the same incident.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.notify_testbed import Receivers, receivers  # noqa: F401 (a fixture)
from tests.regions_testbed import Country, country  # noqa: F401 (a fixture)
from tourniquet.drafts.words import number
from tourniquet.engine.regions_run import execute_across
from tourniquet.journal import read_journal

PLAYBOOK = str(Path(__file__).resolve().parents[1] / "playbooks" / "credential-misuse.yaml")


@pytest.fixture
def sites(country: Country, receivers: Receivers, tmp_path: Path) -> Iterator[list[str]]:
    overrides = {}
    for name in country.regions:
        folder = tmp_path / name
        folder.mkdir(parents=True, exist_ok=True)
        section = receivers.notify_section(folder)
        section["dpo"] = [section["dpo"][0].replace("to=dpo@grades.example", f"to=dpo-{name}@grades.example")]
        section["establishment"] = f"GRADES {name.upper()}"
        overrides[name] = {"notify": section}
    yield [str(p) for p in country.sites(tmp_path, **overrides)]
    country.reset()


def test_each_region_s_dpo_gets_its_own_figures_and_the_soc_one_message(
    country: Country, sites: list[str], receivers: Receivers, tmp_path: Path,
) -> None:
    run = execute_across(PLAYBOOK, {"accounts": country.ids(), "since": country.since().isoformat()}, sites,
                         dry_run=False, incident="inc-regions-notify")

    assert run.status == "completed", run.error
    for name in country.regions:
        (mail,) = receivers.smtp.to(f"dpo-{name}@grades.example")
        (scope,) = [r for r in read_journal(tmp_path / name / "evidence" / "inc-regions-notify" / "journal.jsonl")
                    if r["type"] == "scope"]
        text = mail.text()
        assert f"(GRADES {name.upper()})" in text
        assert (f"Personnes concernées : {number(scope['people']).replace(chr(0x202f), ' ')} ; enregistrements consultés : "
                f"{number(scope['records']).replace(chr(0x202f), ' ')}.") in text
        assert set(mail.attachments()) == {"notification.md", "declaration-cert-sante.md"}
    assert len([m for m in receivers.smtp.mails if any(r.startswith("dpo") for r in m.recipients)]) == 3
    titles = [body.get("title") or body.get("text", "").splitlines()[0] for _, body in receivers.hook.requests]
    assert titles == ["[Tourniquet] inc-regions-notify: contained (10/10 account(s))"] * 2, \
        "one message for the incident, on each of the SOC's two channels"
    json_message = receivers.hook.requests[0][1]["message"]
    assert "site hdf+nor+pdl" in json_message
    from tourniquet.cli.main import main

    for name, site in zip(country.regions, sites):
        assert main(["evidence", "verify", "inc-regions-notify", "--site", site]) == 0, f"{name}: sealed"


def test_a_region_down_is_told_to_the_soc_once_with_the_incident(
    country: Country, sites: list[str], receivers: Receivers,
) -> None:
    country.regions["pdl"].slapd.stop()

    run = execute_across(PLAYBOOK, {"accounts": country.ids(), "since": country.since().isoformat()}, sites,
                         dry_run=False, incident="inc-regions-down")

    assert run.status == "completed with errors"
    bodies = [body for _, body in receivers.hook.requests if "title" in body]
    assert [b["title"] for b in bodies] == [
        "[Tourniquet] inc-regions-down: partially contained (7/10 account(s))",
        "[Tourniquet] inc-regions-down: region pdl down"]
    assert bodies[0]["message"].count(": waiting (") == 3, "who was not contained, and why"
    assert "could not be done" in bodies[1]["message"]
    assert not receivers.smtp.to("dpo-pdl@grades.example")
