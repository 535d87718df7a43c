"""The 72-hour clock: the deadlines flow, run with the clock moved forward, reminds once at 48 h and 70 h.

A real containment freezes the scope (awareness: the alert's time); the ``deadlines`` flow then runs
in a real Prefect server at chosen times. The DPO's mailbox and the SOC's hook get each reminder once,
then the late notice; nothing for an incident whose CNIL filing was recorded with ``incidents notified``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.helpers import LdapAdmin
from tests.notify_testbed import Receivers, notify_site, receivers  # noqa: F401
from tourniquet.cli.main import main
from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import Slapd
from tourniquet.engine.execute import execute_playbook
from tourniquet.flows.deadlines import deadlines

PLAYBOOK = str(Path(__file__).resolve().parents[1] / "playbooks" / "credential-misuse.yaml")


@pytest.fixture
def contained(tmp_path: Path, slapd: Slapd, practitioners: Directory, receivers: Receivers,
              ldap_admin: LdapAdmin) -> tuple[Path, datetime]:
    person = practitioners.practitioners[0]
    site = notify_site(tmp_path, slapd, practitioners, receivers, [person.uid])
    alert = (datetime.now(timezone.utc) - timedelta(hours=2)).replace(microsecond=0)
    for incident in ("inc-clock-late", "inc-clock-filed"):
        summary = execute_playbook(PLAYBOOK, {"accounts": [person.uid], "alert_time": alert.isoformat()},
                                   dry_run=False, site=str(site), incident=incident)
        assert summary.status == "completed", summary.error
        ldap_admin.reset_all(practitioners)
    receivers.smtp.mails.clear()
    receivers.hook.requests.clear()
    return site, alert


def reminders(receivers: Receivers) -> list[str]:
    return sorted([m.subject for m in receivers.smtp.mails] + [t.splitlines()[0] for t in receivers.hook.texts()])


def test_reminders_at_48_and_70_hours_once_each_and_none_after_the_filing(
    prefect_harness: None, contained: tuple[Path, datetime], receivers: Receivers, capsys: pytest.CaptureFixture[str],
) -> None:
    site, alert = contained
    assert main(["incidents", "notified", "inc-clock-filed", "--cnil", "CNIL-2026-0042", "--cert-sante", "CS-77",
                 "--by", "M. DPO", "--site", str(site)]) == 0
    assert "cnil filing CNIL-2026-0042 recorded by M. DPO" in capsys.readouterr().out

    assert deadlines(site=str(site), now=alert + timedelta(hours=47)) == []
    sent = deadlines(site=str(site), now=alert + timedelta(hours=48, minutes=5))
    assert {(s["incident"], s["reminder"], s["role"]) for s in sent} == {
        ("inc-clock-late", "48h", "dpo"), ("inc-clock-late", "48h", "soc")}
    assert deadlines(site=str(site), now=alert + timedelta(hours=49)) == [], "once"
    assert [s["reminder"] for s in deadlines(site=str(site), now=alert + timedelta(hours=70, minutes=1))] == ["70h"] * 2
    assert deadlines(site=str(site), now=alert + timedelta(hours=71)) == []
    assert [s["reminder"] for s in deadlines(site=str(site), now=alert + timedelta(hours=73))] == ["late"] * 2
    assert deadlines(site=str(site), now=alert + timedelta(hours=90)) == []

    subjects = reminders(receivers)
    assert len(subjects) == 3 * 3, "48 h, 70 h, late: to the DPO's mailbox, the SOC's JSON and Mattermost hooks"
    dpo = [m for m in receivers.smtp.mails if "dpo@grades.example" in m.recipients]
    assert [m.subject.split(": ", 1)[1] if ": " in m.subject else m.subject for m in dpo][0].startswith(
        "notification CNIL dans")
    assert "EN RETARD" in dpo[-1].subject and "motifs du retard" in dpo[-1].text()
    assert not any("inc-clock-filed" in s for s in subjects), "none after `incidents notified`"

    for incident in ("inc-clock-late", "inc-clock-filed"):  # reminders and filings are sealed, not a loose tail
        assert main(["evidence", "verify", incident, "--site", str(site)]) == 0, capsys.readouterr().out

    # `incidents` shows the clock: the late one, the filed one.
    capsys.readouterr()
    assert main(["incidents", "--site", str(site)]) == 0
    listing = capsys.readouterr().out
    assert "inc-clock-filed  [filed]" in listing and "CNIL CNIL-2026-0042 by M. DPO" in listing
    assert "inc-clock-late  [running]" in listing and " left — deadline 20" in listing
    assert main(["incidents", "--site", str(site), "--at", (alert + timedelta(hours=75)).isoformat()]) == 1
    listing = capsys.readouterr().out
    assert "inc-clock-late  [late]  Art. 33: LATE by 3 h 00" in listing
    assert "no CNIL filing recorded" in listing


def test_the_alert_s_time_starts_the_clock_when_the_alert_starts_the_plan(
    prefect_harness: None, tmp_path: Path, slapd: Slapd, practitioners: Directory, receivers: Receivers,
) -> None:
    """The respond deployment's trigger passes the event's time (prefect.yaml): the clock starts there."""
    from tourniquet.config import load_site
    from tourniquet.flows.respond import respond
    from tourniquet.notices.dispatch import incident_clock
    from tourniquet.site import Site

    person = practitioners.practitioners[0]
    site = notify_site(tmp_path, slapd, practitioners, receivers, [person.uid])

    result = respond(accounts=person.uid, dry_run=True, site=str(site), incident="inc-clock-alert",
                     alert_time="2026-12-01T10:00:00Z")

    assert isinstance(result, dict) and result["status"] == "planned", result
    runtime = Site(load_site(site))
    try:
        clock = incident_clock(runtime, "inc-clock-alert")
    finally:
        runtime.close()
    assert clock.awareness == datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc) and clock.awareness_source == "alert"
    assert clock.deadline == datetime(2026, 12, 4, 10, 0, tzinfo=timezone.utc)
    assert clock.state(datetime(2026, 12, 2, tzinfo=timezone.utc)) == "no scope yet", "a plan freezes no scope"


def test_a_filing_for_an_incident_that_is_not_there_or_a_hostile_one_is_refused_by_name(
    tmp_path: Path, slapd: Slapd, practitioners: Directory, receivers: Receivers, capsys: pytest.CaptureFixture[str],
) -> None:
    site = notify_site(tmp_path, slapd, practitioners, receivers, [])

    assert main(["incidents", "notified", "inc-never", "--cnil", "X-1", "--by", "M. DPO", "--site", str(site)]) != 0
    assert "incident inc-never: no journal" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["incidents", "notified", "../../etc", "--cnil", "X-1", "--by", "M. DPO", "--site", str(site)])
    assert exited.value.code == 2 and "incident id '../../etc' must be" in capsys.readouterr().err
    (tmp_path / "evidence" / "inc-here").mkdir(parents=True)
    (tmp_path / "evidence" / "inc-here" / "journal.jsonl").write_text("")
    assert main(["incidents", "notified", "inc-here", "--by", "M. DPO", "--site", str(site)]) != 0
    assert "nothing to record" in capsys.readouterr().err
    assert main(["incidents", "notified", "inc-here", "--cnil", "A\x1b[2J", "--by", "M. DPO", "--site", str(site)]) != 0
    assert "--cnil" in capsys.readouterr().err
    assert main(["incidents", "--site", str(site)]) == 0
    assert "inc-here  [no scope yet]  Art. 33 clock: awareness not recorded" in capsys.readouterr().out
