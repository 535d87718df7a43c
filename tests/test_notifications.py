"""The incident is told: the SOC on its hook, the DPO by e-mail with the drafts, each practitioner's referent.

Real receivers on loopback (an SMTP server, an HTTP hook) and a real slapd; the containment runs
playbooks/credential-misuse.yaml. Afterwards: what each mailbox and the hook hold, what the journal
says was sent, and that the hook's secret is nowhere but on the wire.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import LdapAdmin, bind_result
from tests.notify_testbed import SOC_SECRET, Receivers, no_secret_in, notify_site, receivers  # noqa: F401
from tourniquet.cli.main import main
from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import Slapd
from tourniquet.engine.execute import execute_playbook
from tourniquet.journal import read_journal, verify_chain

PLAYBOOK = str(Path(__file__).resolve().parents[1] / "playbooks" / "credential-misuse.yaml")


@pytest.fixture
def suspects(practitioners: Directory, ldap_admin: LdapAdmin) -> list:
    yield [practitioners.practitioners[i] for i in (0, 1)]  # chu-lille, ch-roubaix
    ldap_admin.reset_all(practitioners)


def notifications(journal: Path) -> list[dict]:
    return [r for r in read_journal(journal) if r["type"] == "notification"]


def test_a_containment_tells_the_soc_the_dpo_and_each_referent_never_the_account(
    tmp_path: Path, slapd: Slapd, practitioners: Directory, receivers: Receivers, suspects: list,
    capsys: pytest.CaptureFixture[str],
) -> None:
    site = notify_site(tmp_path, slapd, practitioners, receivers, [p.uid for p in suspects])

    summary = execute_playbook(PLAYBOOK, {"accounts": [p.uid for p in suspects], "reason": "ARS alert 7"},
                               dry_run=False, site=str(site), incident="inc-notify-1")

    assert summary.status == "completed", summary.error
    for person in suspects:
        assert bind_result(slapd, person.dn, person.password) == "invalidCredentials"
    # The SOC: one JSON and one Mattermost message, on the hook path holding the secret.
    paths = [path for path, _ in receivers.hook.requests]
    assert paths == [f"/hooks/{SOC_SECRET}"] * 2
    (json_body, mattermost) = [body for _, body in receivers.hook.requests]
    assert "inc-notify-1: contained (2/2 account(s))" in json_body["title"]
    assert "2 of 2 account(s) contained" in json_body["message"] and json_body["type"] == "success"
    assert "inc-notify-1: contained" in mattermost["text"]
    # The DPO: one e-mail in French, the two drafts attached, the Art. 33 deadline in Paris time.
    (dpo,) = receivers.smtp.to("dpo@grades.example")
    assert "périmètre figé" in dpo.subject and "inc-notify-1" in dpo.subject
    text = dpo.text()
    assert "Échéance de notification à la CNIL (RGPD art. 33)" in text
    assert "72 h après la prise de connaissance" in text and "(heure de Paris)" in text
    assert "Personnes concernées :" in text and "Par catégorie :" in text
    assert "tourniquet incidents notified inc-notify-1 --cnil" in text
    assert set(dpo.attachments()) == {"notification.md", "declaration-cert-sante.md"}
    assert "CNIL" in dpo.attachments()["notification.md"] or "Notification" in dpo.attachments()["notification.md"]
    # Each practitioner through their establishment's referent; the account's own mailbox gets nothing.
    (lille,) = receivers.smtp.to("referent.lille@chu-lille.example")
    (roubaix,) = receivers.smtp.to("referent.roubaix@ch-roubaix.example")
    assert suspects[0].uid in lille.text() and "utilisé par quelqu'un d'autre" in lille.text()
    assert "le support au 03 20 00 00 00" in lille.text()
    assert suspects[1].uid in roubaix.text()
    for person in suspects:
        assert receivers.smtp.to(person.mail) == [], "never the account's own mailbox"
    assert len(receivers.smtp.mails) == 3
    # The journal: every message, its channel described, its hash; no personal body; no secret anywhere.
    journal = Path(summary.journal or "")
    assert verify_chain(journal) > 0
    sent = notifications(journal)
    assert {(r["role"], r["kind"], r["status"]) for r in sent} == {
        ("practitioner", "account-contained", "sent"), ("dpo", "scope-frozen", "sent"), ("soc", "contained", "sent")}
    assert all(len(r["digest"]) == 64 and "body" not in r for r in sent)
    assert {r["channel"] for r in sent if r["role"] == "soc"} == {
        "json://" + receivers.hook_url.split("://")[1], "mmost://" + receivers.hook_url.split("://")[1]}
    report = (journal.parent / "report.md").read_text()
    assert "## Notifications" in report and "soc contained via json://" in report
    no_secret_in(tmp_path / "evidence", tmp_path / "state", capsys.readouterr().out, capsys.readouterr().err)


def test_a_partial_containment_says_who_was_not_and_why(
    tmp_path: Path, slapd: Slapd, practitioners: Directory, receivers: Receivers, suspects: list,
) -> None:
    site = notify_site(tmp_path, slapd, practitioners, receivers, [suspects[0].uid])

    summary = execute_playbook(PLAYBOOK, {"accounts": [suspects[0].uid, "nobody-such"]}, dry_run=False,
                               site=str(site), incident="inc-notify-2")

    assert summary.status == "completed with errors"
    message = receivers.hook.requests[0][1]
    assert "partially contained (1/2 account(s))" in message["title"]
    assert "Not contained:" in message["message"] and "nobody-such: refused (" in message["message"]
    assert message["type"] == "warning"
    assert len(receivers.smtp.to("referent.lille@chu-lille.example")) == 1


def test_a_dry_run_sends_only_the_plan_awaiting_approval_and_lists_what_would_be_sent(
    tmp_path: Path, slapd: Slapd, practitioners: Directory, receivers: Receivers, suspects: list,
) -> None:
    site = notify_site(tmp_path, slapd, practitioners, receivers, [p.uid for p in suspects],
                       link="https://prefect.grades.example")

    summary = execute_playbook(PLAYBOOK, {"accounts": [p.uid for p in suspects]}, dry_run=True, site=str(site),
                               incident="inc-notify-3")

    assert summary.status == "planned"
    assert receivers.smtp.mails == [], "a dry run e-mails nobody"
    titles = [body["title"] for _, body in receivers.hook.requests if "title" in body]
    assert titles == ["[Tourniquet] inc-notify-3: plan awaiting approval (2 account(s))"]
    report = Path(summary.report or "").read_text()
    assert "practitioner account-contained (referent Mme Referente Lille)" in report
    assert "would be sent" in report


def test_an_unreachable_channel_leaves_the_message_in_the_outbox_and_the_containment_complete(
    tmp_path: Path, slapd: Slapd, practitioners: Directory, receivers: Receivers, suspects: list,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from aiosmtpd.controller import Controller

    from tests.loopback_http import LoopbackServer
    from tests.notify_testbed import Hook, MailServer
    from tourniquet.demo.slapd import find_free_port

    mail_port, hook_port = find_free_port(), find_free_port()  # nothing listens there yet: both are "down"
    site = notify_site(tmp_path, slapd, practitioners, receivers, [suspects[0].uid],
                       **receivers.notify_section(tmp_path, smtp_port=mail_port, hook_host=f"127.0.0.1:{hook_port}"))

    summary = execute_playbook(PLAYBOOK, {"accounts": [suspects[0].uid]}, dry_run=False, site=str(site),
                               incident="inc-notify-4")

    assert summary.status == "completed", "a notification never fails the containment"
    assert bind_result(slapd, suspects[0].dn, suspects[0].password) == "invalidCredentials"
    queued = notifications(Path(summary.journal or ""))
    assert queued and all(r["status"] == "queued" for r in queued)
    assert "NOT delivered, waits in the outbox" in Path(summary.report or "").read_text()
    outbox = tmp_path / "state" / "outbox" / "notify"
    assert len(list(outbox.rglob("*.json"))) == 4  # soc json + mattermost, dpo, referent

    # The channels come back: `tourniquet outbox --deliver` sends what waited, once, and journals it.
    mails, hook = MailServer(), Hook()
    controller = Controller(mails, hostname="127.0.0.1", port=mail_port)
    controller.start()
    try:
        with LoopbackServer(hook, port=hook_port):
            assert main(["outbox", "--deliver", "--site", str(site)]) == 0
            assert main(["outbox", "--deliver", "--site", str(site)]) == 0
    finally:
        controller.stop()
    assert len(mails.mails) == 2 and len(hook.requests) == 2, "each once"
    assert not list(outbox.rglob("*.json"))
    delivered = [r for r in notifications(Path(summary.journal or "")) if r["status"] == "sent"]
    assert len(delivered) == 4 and all(r.get("from_outbox") for r in delivered)
    assert main(["evidence", "verify", "inc-notify-4", "--site", str(site)]) == 0, "the deliveries are sealed"
    no_secret_in(tmp_path / "evidence", tmp_path / "state", capsys.readouterr().out)


def test_a_channel_secret_echoed_by_a_failing_hook_leaks_nowhere(
    prefect_harness: None, tmp_path: Path, slapd: Slapd, practitioners: Directory, receivers: Receivers,
    suspects: list, capfd: pytest.CaptureFixture[str],
) -> None:
    """The SOC's JSON hook answers 500 with the URL it was called on (the secret); the run goes through Prefect."""
    import httpx

    from tests.loopback_http import LoopbackServer
    from tests.test_secrets_echoed import _prefect_database, encodings
    from tourniquet.secrets import forms_of

    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text=f"no route for {request.url} ({request.url.path})")

    with LoopbackServer(echo) as echoing:
        host = echoing.url.split("://")[1]
        section = receivers.notify_section(tmp_path)
        section["soc"] = [f"json://{host}/hooks/{{env: TEST_SOC_HOOK}}", section["soc"][1]]
        site = notify_site(tmp_path, slapd, practitioners, receivers, [suspects[0].uid], **section)
        code = main(["run", PLAYBOOK, "--site", str(site), "-i", f"accounts={suspects[0].uid}",
                     "--incident", "INC-NOTIFY-SECRET"])
    captured = capfd.readouterr()

    assert code == 0, captured.err
    assert "  told     soc contained via json://" in captured.out, "the run says what was told"
    assert "NOT delivered, waits in the outbox" in captured.out
    journal = tmp_path / "evidence" / "INC-NOTIFY-SECRET" / "journal.jsonl"
    soc = [r for r in notifications(journal) if r["role"] == "soc"]
    assert sorted(r["status"] for r in soc) == ["queued", "sent"]
    assert "500" in next(r["error"] for r in soc if r["status"] == "queued")
    forms = encodings(SOC_SECRET) | forms_of(SOC_SECRET)
    leaks = {str(p): [f for f in forms if f in p.read_bytes().decode("utf-8", "replace")]
             for p in tmp_path.rglob("*") if p.is_file()}
    leaks = {k: v for k, v in leaks.items() if v}
    for name, text in (("stdout", captured.out), ("stderr", captured.err)):
        if any(f in text for f in forms):
            leaks[name] = [f for f in forms if f in text]
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        runs = [r for r in client.read_flow_runs(limit=200)
                if (r.parameters or {}).get("incident") == "INC-NOTIFY-SECRET"]
        assert runs
        ids = [r.id for r in runs]
        texts = [str(s.message) for run in runs for s in client.read_flow_run_states(run.id)]
        texts += [log.message for log in client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)))]
        texts += [str(a.data) + str(a.description) for a in client.read_artifacts(
            artifact_filter=ArtifactFilter(), flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))]
    assert any("notify" in t for t in texts), "the notifications reached Prefect's logs"
    prefect_text = "\n".join(texts)
    if any(f in prefect_text for f in forms):
        leaks["prefect"] = [f for f in forms if f in prefect_text]
    for path in _prefect_database():
        data = path.read_bytes()
        if any(f.encode() in data for f in forms):
            leaks[f"prefect database {path.name}"] = [f for f in forms if f.encode() in data]
    assert leaks == {}, leaks


def test_the_soc_hears_when_accounts_are_given_back_and_when_a_run_fails(
    tmp_path: Path, slapd: Slapd, practitioners: Directory, receivers: Receivers, suspects: list,
) -> None:
    owner = suspects[0]
    site = notify_site(tmp_path, slapd, practitioners, receivers, [owner.uid])
    summary = execute_playbook(PLAYBOOK, {"accounts": [owner.uid]}, dry_run=False, site=str(site),
                               incident="inc-notify-5")
    assert summary.status == "completed"
    receivers.hook.requests.clear()

    assert main(["conclude", "inc-notify-5", "--by", "Dr Martin", "--finding", "phishing", "--site", str(site)]) == 0
    assert main(["recover", "inc-notify-5", "--account", owner.uid, "--password-file", str(tmp_path / "otp"),
                 "--site", str(site)]) == 0

    titles = [body["title"] for _, body in receivers.hook.requests if "title" in body]
    assert titles == ["[Tourniquet] inc-notify-5: 1 account(s) recovered"]
    assert f"- {owner.uid}" in receivers.hook.requests[0][1]["message"]

    # The directory is down: the run fails, and the SOC is told so, with why.
    receivers.hook.requests.clear()
    from tourniquet.demo.slapd import find_free_port

    down = tmp_path / "down"
    down.mkdir()
    broken = notify_site(down, slapd, practitioners, receivers, [owner.uid])
    broken.write_text(broken.read_text().replace(slapd.url, f"ldap://127.0.0.1:{find_free_port()}"))
    failed = execute_playbook(PLAYBOOK, {"accounts": [owner.uid]}, dry_run=False, site=str(broken),
                              incident="inc-notify-6")
    assert failed.status.startswith("failed"), failed.status
    body = receivers.hook.requests[0][1]
    assert body["title"].startswith("[Tourniquet] inc-notify-6: failed")
    assert "Error: " in body["message"]


def test_a_prefect_notification_block_is_a_channel(
    prefect_harness: None, tmp_path: Path, slapd: Slapd, practitioners: Directory, receivers: Receivers,
    suspects: list,
) -> None:
    """The SOC's channel is a Prefect custom-webhook block (it keeps its own secret); the hook gets the outcome."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    CustomWebhookNotificationBlock(name="soc", url=f"{receivers.hook_url}/block/{SOC_SECRET}",
                                   json_data={"subject": "{{subject}}", "body": "{{body}}"}).save(
        "tourniquet-soc-test", overwrite=True)
    section = receivers.notify_section(tmp_path)
    section["soc"] = [{"prefect_block": "custom-webhook/tourniquet-soc-test"}]
    site = notify_site(tmp_path, slapd, practitioners, receivers, [suspects[0].uid], **section)

    summary = execute_playbook(PLAYBOOK, {"accounts": [suspects[0].uid]}, dry_run=False, site=str(site),
                               incident="inc-notify-7")

    assert summary.status == "completed"
    (path, body), = [(p, b) for p, b in receivers.hook.requests if p.startswith("/block/")]
    assert body["subject"] == "[Tourniquet] inc-notify-7: contained (1/1 account(s))"
    soc = [r for r in notifications(Path(summary.journal or "")) if r["role"] == "soc"]
    assert [(r["channel"], r["status"]) for r in soc] == [("Prefect block custom-webhook/tourniquet-soc-test", "sent")]


@pytest.mark.parametrize("content, said", [
    ("name,email\nX,x@y.example\n", "missing column(s) establishment"),
    ("establishment,name,email\ncn=a*,A,\n", ":2: a referent needs an email or a url"),
    ("establishment,name,email\ncn=a*,A,x@y.example&to=attacker@evil.example\n", "is not an e-mail address"),
    (b"establishment,name,email\n\xff\xfe\n", "not UTF-8 text"),
    (None, "cannot read it"),
])
def test_a_referents_file_that_cannot_be_used_is_named_when_the_site_is_read(
    tmp_path: Path, slapd: Slapd, practitioners: Directory, receivers: Receivers, content: str | bytes | None,
    said: str,
) -> None:
    from tourniquet.config import load_site
    from tourniquet.errors import ConfigError

    site = notify_site(tmp_path, slapd, practitioners, receivers, [])
    referents = tmp_path / "referents.csv"
    if content is None:
        referents.unlink()
        referents.mkdir()
    else:
        referents.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(ConfigError, match="referents file .*referents.csv") as raised:
        load_site(site)
    assert said in str(raised.value)


def test_a_channel_that_never_answers_is_given_up_on_and_the_message_waits(
    tmp_path: Path, slapd: Slapd, practitioners: Directory, receivers: Receivers, suspects: list,
) -> None:
    import socket

    silent = socket.socket()  # accepts connections, never says a word
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        section = receivers.notify_section(tmp_path)
        section["soc"] = [f"json://127.0.0.1:{silent.getsockname()[1]}/hooks/{{env: TEST_SOC_HOOK}}"]
        section["timeout"] = 2
        site = notify_site(tmp_path, slapd, practitioners, receivers, [suspects[0].uid], **section)
        summary = execute_playbook(PLAYBOOK, {"accounts": [suspects[0].uid]}, dry_run=False, site=str(site),
                                   incident="inc-notify-8")
    finally:
        silent.close()

    assert summary.status == "completed"
    (soc,) = [r for r in notifications(Path(summary.journal or "")) if r["role"] == "soc"]
    assert soc["status"] == "queued" and "did not finish within" in soc["error"]
    assert len(receivers.smtp.to("dpo@grades.example")) == 1, "the other roles' channels were not held up"


def test_a_run_waiting_for_an_approval_tells_the_soc_where_to_answer(
    tmp_path: Path, slapd: Slapd, practitioners: Directory, receivers: Receivers, suspects: list,
) -> None:
    """Two accounts, a ceiling of one: the run asks; outside Prefect nobody answers, so nothing changes."""
    site = notify_site(tmp_path, slapd, practitioners, receivers, [p.uid for p in suspects],
                       site={"limits": {"max_accounts_ceiling": 1}})

    summary = execute_playbook(PLAYBOOK, {"accounts": [p.uid for p in suspects]}, dry_run=False, site=str(site),
                               incident="inc-notify-9")

    assert summary.status == "failed"
    for person in suspects:
        assert bind_result(slapd, person.dn, person.password) == "success"
    titles = [body["title"] for _, body in receivers.hook.requests if "title" in body]
    assert titles == ["[Tourniquet] inc-notify-9: approval needed (credential-misuse)",
                      "[Tourniquet] inc-notify-9: failed, no account contained"]
    assert "nobody approved" in receivers.hook.requests[2][1]["message"], "the failure says why"
    asked = receivers.hook.requests[0][1]["message"]
    assert "2 accounts exceed the limit of 1" in asked and "is a no: nothing changes" in asked
    assert receivers.smtp.mails == [], "nothing was contained: no practitioner, no DPO message"


def test_a_referent_row_naming_the_account_s_own_address_is_not_used(
    tmp_path: Path, slapd: Slapd, practitioners: Directory, receivers: Receivers, suspects: list,
) -> None:
    """A referents file that (by mistake or malice) routes to the practitioner's own mailbox: nobody is sent there."""
    owner = suspects[0]
    site = notify_site(tmp_path, slapd, practitioners, receivers, [owner.uid])
    (tmp_path / "referents.csv").write_text(f"establishment,name,email\n*,Le titulaire,{owner.mail.upper()}\n")

    summary = execute_playbook(PLAYBOOK, {"accounts": [owner.uid]}, dry_run=False, site=str(site),
                               incident="inc-notify-10")

    assert summary.status == "completed"
    assert receivers.smtp.to(owner.mail) == [] and receivers.smtp.to(owner.mail.upper()) == []
    assert not [r for r in notifications(Path(summary.journal or "")) if r["role"] == "practitioner"]


@pytest.mark.parametrize("url, where", [
    ("mailtos://tourniquet:hunter2-smtp@smtp.grades.example?to=dpo@grades.example", "user:password@"),
    ("mailtos://smtp.grades.example?user=tourniquet&pass=hunter2-smtp&to=dpo@grades.example", "pass= parameter"),
    ("ntfy://ntfy.grades.example/soc?token=tk_0123456789", "token= parameter"),
])
def test_a_secret_written_inline_in_a_channel_url_is_refused_when_the_site_is_read(
    tmp_path: Path, slapd: Slapd, practitioners: Directory, receivers: Receivers, url: str, where: str,
) -> None:
    from tourniquet.config import load_site
    from tourniquet.errors import ConfigError

    site = notify_site(tmp_path, slapd, practitioners, receivers, [], dpo=[url])
    with pytest.raises(ConfigError, match="secrets are never written inline") as raised:
        load_site(site)
    assert where in str(raised.value) and "hunter2" not in str(raised.value) and "tk_0123" not in str(raised.value)
    fine = url.replace("hunter2-smtp", "{file: smtp-password}").replace("tk_0123456789", "{env: NTFY_TOKEN}")
    (tmp_path / "smtp-password").write_text("x" * 12)
    notify_site(tmp_path, slapd, practitioners, receivers, [], dpo=[fine])
    assert load_site(site).notify is not None
