"""An identity provider that echoes the client secret in its error pages: the secret is found nowhere.

A real HTTP server on loopback answers like Keycloak (tests/identity_fakes.py), except that its first
token answer is a 502 proxy page quoting the request — the form body with the client secret
URL-encoded, the secret raw, the basic-auth header ``client_id:secret`` in base64, the bytes in
hex, the secret URL-encoded twice, in HTML entities, cut short after 14 characters, wrapped onto
the next line, and the whole form body in base64 — and every user search a 500 whose Java stack trace quotes the bearer token and the secret
again. The credential-misuse playbook runs against it (through the CLI in-process, as a subprocess,
and as a plan): the directory containment completes, ending the IdP sessions fails, the run ends
FAILED naming the failure. Afterwards no form of the secret or of any token is in any file under
the test's folder (evidence, anchor log, outbox, tickets), in stdout/stderr, or in the Prefect
database — read byte by byte, and through the API: flow and task run states, logs, artifacts,
events. The masks are there instead: the errors were stored, masked.
"""

from __future__ import annotations

import base64
import html
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest

from tests.conftest import write_site
from tests.helpers import LdapAdmin, bind_result
from tests.identity_fakes import FakeKeycloak
from tests.loopback_http import LoopbackServer
from tourniquet.cli.main import main
from tourniquet.demo.practitioners import Directory
from tourniquet.demo.slapd import Slapd

PLAYBOOK = str(Path(__file__).resolve().parents[1] / "playbooks" / "credential-misuse.yaml")
#: Every encoding differs from the raw text: '/', '+', '=', '&', a space, a non-ASCII letter.
SECRET = "kc/Sécr3t+v@l=ue&x y-0b5e"


def encodings(secret: str, user: str = "tourniquet", *, halves: bool = True) -> set[str]:
    """How an echo may show a secret — written out here, independently of the code under test."""
    raw = secret.encode()
    forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret), raw.hex(), raw.hex().upper(),
             json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    for data in (raw, f"{user}:{secret}".encode()):
        for encoded in (base64.b64encode(data), base64.urlsafe_b64encode(data)):
            forms |= {encoded.decode(), encoded.decode().rstrip("=")}
    forms |= {quote(quote(secret, safe=""), safe=""), quote_plus(quote_plus(secret)), html.escape(secret),
              html.escape(secret, quote=False)}
    if halves:
        forms |= {secret[:10], secret[-10:]}  # half a secret, as a cut error text would leave it
    return forms


def body_in_base64(body: bytes, secret: str) -> str:
    """The base64 characters of a form body that encode the URL-encoded secret alone (whatever its alignment)."""
    encoded = quote_plus(secret).encode()
    start = body.find(encoded)
    assert start >= 0, body
    b64 = base64.b64encode(body).decode()
    return b64[-(-8 * start // 6):8 * (start + len(encoded)) // 6]


@dataclass
class EchoingKeycloak(FakeKeycloak):
    """Keycloak behind a chatty proxy: error pages that quote the request, secrets included."""

    echoed: list[str] = field(default_factory=list)
    token_failures: int = 1
    #: what of each echoed form body in base64 is the secret's alone (checked afterwards: found nowhere)
    bodies: list[str] = field(default_factory=list)

    def _echo(self, request: httpx.Request) -> str:
        basic = base64.b64encode(f"{self.client_id}:{self.secret}".encode()).decode()
        return (f"request: {request.method} {request.url.path} body={request.content.decode()} "
                f"authorization={request.headers.get('Authorization', '')} client_secret={self.secret} "
                f"basic={basic} hex={self.secret.encode().hex()} encoded={quote(self.secret, safe='')} "
                f"twice={quote(quote(self.secret, safe=''), safe='')} html={html.escape(self.secret)} "
                f"cut={self.secret[:14]}... wrapped={self.secret[:9]}\n  {self.secret[9:]} "
                f"body64={self._body64(request)}")

    def _body64(self, request: httpx.Request) -> str:
        if quote_plus(self.secret).encode() not in request.content:
            return ""
        self.bodies.append(body_in_base64(request.content, self.secret))
        return base64.b64encode(request.content).decode()

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/protocol/openid-connect/token") and self.token_failures > 0:
            self.token_failures -= 1
            self.echoed.append("token")
            return httpx.Response(502, text=f"<html><h1>502 Bad Gateway</h1><pre>{self._echo(request)}</pre></html>")
        if path.endswith("/users") and request.method == "GET":
            self.echoed.append("users")
            return httpx.Response(500, text="java.lang.IllegalStateException: upstream refused\n\tat "
                                            f"org.keycloak.Admin.search({self._echo(request)})")
        return super().handle(request)


@pytest.fixture
def echoing(tmp_path: Path, slapd: Slapd, practitioners: Directory, ldap_admin: LdapAdmin
            ) -> Iterator[tuple[Path, EchoingKeycloak]]:
    fake = EchoingKeycloak(secret=SECRET)
    for index in (3, 11, 27):
        fake.add_user(practitioners.practitioners[index].uid, sessions=1)
    secret = tmp_path / "secrets" / "keycloak"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text(SECRET + "\n", encoding="utf-8")
    with LoopbackServer(fake.handle) as server:
        site = write_site(tmp_path, slapd, practitioners, identity={
            "kind": "keycloak", "url": server.url, "allow_plaintext": True, "realm": "sante",
            "client_id": "tourniquet", "client_secret": {"file": str(secret)}, "timeout": 5})
        yield site, fake
    ldap_admin.reset_all(practitioners)


def _leaks(text: str, forms: set[str]) -> list[str]:
    return sorted(form for form in forms if form in text)


def _prefect_database() -> list[Path]:
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

    url = str(PREFECT_SERVER_DATABASE_CONNECTION_URL.value())
    path = Path(url.split(":///", 1)[1])
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-journal")) if p.exists()]


def _prefect_api_text(incidents: list[str]) -> dict[str, str]:
    """What the Prefect API holds about our runs, by kind (each must be non-empty: we looked at real data)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
        TaskRunFilter,
        TaskRunFilterFlowRunId,
    )
    from prefect.events.filters import EventFilter, EventRelatedFilter
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()
    seen: dict[str, list[str]] = {"states": [], "logs": [], "artifacts": [], "events": []}
    with get_client(sync_client=True) as client:
        runs = [r for r in client.read_flow_runs(limit=200) if (r.parameters or {}).get("incident") in incidents]
        assert len(runs) == len(incidents), [r.parameters for r in runs]
        ids = [r.id for r in runs]
        for run in runs:
            seen["states"] += [str(s.message) for s in client.read_flow_run_states(run.id)]
        for task in client.read_task_runs(task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=ids)),
                                          limit=200):
            seen["states"] += [str(s.message) for s in client.read_task_run_states(task.id)]
        seen["logs"] = [log.message for log in client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)))]
        seen["artifacts"] = [json.dumps(a.data, default=str) + str(a.description) for a in client.read_artifacts(
            artifact_filter=ArtifactFilter(), flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))]

        def events() -> list[str]:
            page = client.read_events(EventFilter(related=EventRelatedFilter(
                id=[f"prefect.flow-run.{i}" for i in ids])), limit=50)
            found = [e.model_dump_json() for e in page.events]
            while page.next_page:
                page = client.read_events_page(str(page.next_page))
                found += [e.model_dump_json() for e in page.events]
            return found

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # events are persisted in batches
            seen["events"] = events()
            ended = ('"prefect.flow-run.Failed"', '"prefect.flow-run.Partially contained"')
            if sum(any(name in e for name in ended) for e in seen["events"]) >= len(ids):
                break
            time.sleep(0.5)
    return {kind: "\n".join(texts) for kind, texts in seen.items()}


def test_an_identity_provider_that_echoes_the_secret_leaks_it_nowhere(
    prefect_harness: None, echoing: tuple[Path, EchoingKeycloak], tmp_path: Path, slapd: Slapd,
    practitioners: Directory, capfd: pytest.CaptureFixture[str],
) -> None:
    from prefect.settings import PREFECT_API_URL

    site, fake = echoing
    suspects = [practitioners.practitioners[i] for i in (3, 11, 27)]
    accounts = ",".join(p.uid for p in suspects)

    in_process = main(["run", PLAYBOOK, "--site", str(site), "-i", f"accounts={accounts}", "--incident", "INC-ECHO-1"])
    planned = main(["plan", PLAYBOOK, "--site", str(site), "-i", f"accounts={accounts}", "--incident", "INC-ECHO-3"])
    captured = capfd.readouterr()
    child = subprocess.run(
        [sys.executable, "-m", "tourniquet.cli.main", "run", PLAYBOOK, "--site", str(site), "-i",
         f"accounts={suspects[0].uid}", "--incident", "INC-ECHO-2"],
        env={**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}, capture_output=True, text=True,
        timeout=300)
    verified = main(["evidence", "verify", "INC-ECHO-1", "--site", str(site)])
    captured_verify = capfd.readouterr()

    # the scenario happened: the IdP echoed, the directory containment completed, the IdP part failed: a partial
    # containment, said loudly
    assert {"token", "users"} <= set(fake.echoed) and len(fake.issued) >= 1
    assert in_process == 4 and child.returncode == 4 and planned == 4, (captured.err, child.stderr)
    assert "PARTIAL: 0 of 3 contained; failed: " in captured.err
    assert "PARTIAL: 0 of 1 contained; failed: " in child.stderr
    assert "***" in captured.out + captured.err and "***" in child.stdout + child.stderr, \
        "the echoed text is there, masked"
    assert verified == 0, captured_verify.out
    for person in suspects:
        assert bind_result(slapd, person.dn, person.password) == "invalidCredentials"
    report = (tmp_path / "evidence" / "INC-ECHO-1" / "report.md").read_text()
    assert "Keycloak is down or overloaded (500" in report and "***" in report

    # a token's halves are not checked: its first characters are the JWT header every token shares
    forms = set().union(encodings(SECRET), *(encodings(token, halves=False) for token in fake.issued), fake.bodies)
    assert fake.bodies, "the form body was echoed in base64"
    leaks: dict[str, list[str]] = {}
    for path in sorted(p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(tmp_path / "secrets")):
        found = _leaks(path.read_bytes().decode("utf-8", "replace"), forms)
        if found:
            leaks[str(path.relative_to(tmp_path))] = found
    outputs = {"stdout": captured.out, "stderr": captured.err, "child stdout": child.stdout,
               "child stderr": child.stderr, "verify": captured_verify.out + captured_verify.err}
    for name, text in outputs.items():
        if _leaks(text, forms):
            leaks[name] = _leaks(text, forms)

    api = _prefect_api_text(["INC-ECHO-1", "INC-ECHO-2"])
    assert all(api.values()), {k: len(v) for k, v in api.items()}
    assert "Keycloak is down or overloaded" in api["states"] + api["logs"], "the failure reached Prefect, masked"
    for kind, text in api.items():
        if _leaks(text, forms):
            leaks[f"prefect {kind}"] = _leaks(text, forms)
    for path in _prefect_database():
        data = path.read_bytes()
        found = [form for form in forms if form.encode() in data
                 or json.dumps(form)[1:-1].encode() in data]
        if found:
            leaks[f"prefect database {path.name}"] = sorted(found)

    assert leaks == {}, leaks
    assert (tmp_path / "state" / "evidence-anchors.jsonl").exists() and (tmp_path / "evidence").is_dir()
    assert sum(1 for _ in (tmp_path / "state").rglob("*.json")) > 0, "the outbox and ledger were scanned too"


def test_a_secret_registered_in_every_form_is_masked_in_every_sink_format() -> None:
    """The one masking function, for a secret seen raw, URL-encoded, base64 (basic auth), hex, JSON-escaped."""
    from tourniquet.secrets import mask, register_secret

    secret = 'pw/"quoted"+é=&x'
    register_secret(secret, user="svc")
    forms = encodings(secret, "svc", halves=False)
    texts = [f"{prefix}{form}{suffix}" for form in forms for prefix, suffix in (("", ""), ("a=", "&b"), ("«", "»"))]
    texts.append("Basic " + base64.b64encode(b"anyone-else:" + secret.encode()).decode())
    for text in texts:
        masked = mask(text)
        assert "***" in masked, text
        assert not _leaks(masked, forms), (text, masked)

