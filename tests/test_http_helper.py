"""The one HTTP boundary (``tourniquet.connectors._http``): a contract test, no real server.

Contract test: the "servers" are ``httpx.MockTransport`` handlers answering as HTTP (RFC 9110) and the
ticket, identity and search systems document — statuses, ``Retry-After`` (seconds or an HTTP date,
RFC 9110 section 10.2.3), 429 (RFC 6585), error pages that echo the request — and raising the
exceptions httpx raises for a refused connection, a timeout or an untrusted certificate. What is
checked is what the connectors rely on: the plaintext guard, the translation into Tourniquet errors,
retries for idempotent calls only, the Retry-After cap, and secrets masked in every error text.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tourniquet.config import load_site
from tourniquet.connectors._http import HttpClient, HttpSettings, plaintext_problem, retry_after
from tourniquet.errors import ConfigError, NotFound, PermanentError, TourniquetError, TransientError
from tourniquet.secrets import secret_in_use


class Server:
    """A handler that answers from a script (one answer per request, the last one repeated) and counts."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer


def client(server: Server, *, url: str = "https://tickets.example", sleeps: list[float] | None = None,
           **settings_: Any) -> HttpClient:
    waited = sleeps if sleeps is not None else []
    return HttpClient(HttpSettings("tickets", **settings_), url, system="rt", name="Request Tracker",
                      transport=httpx.MockTransport(server), sleep=waited.append)


# -- the plaintext guard


@pytest.mark.parametrize("url", ["http://rt.example/rt", "http://10.0.0.7:8080", "HTTP://rt.example"])
def test_plaintext_to_another_host_is_refused_naming_the_setting(url: str) -> None:
    """A token or password sent over http:// to a host on the network: refused before anything is sent."""
    server = Server(httpx.Response(200))
    with pytest.raises(ConfigError, match=r"tickets\.allow_plaintext: true"):
        client(server, url=url)
    assert server.requests == []


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/rt", "http://127.3.4.5", "http://[::1]:9200",
                                 "http://localhost:8080", "http://rt.localhost"])
def test_loopback_is_allowed_in_plaintext(url: str) -> None:
    server = Server(httpx.Response(200, json={"ok": True}))
    assert client(server, url=url).json("GET", "/x") == {"ok": True}


def test_allow_plaintext_lets_a_test_system_through() -> None:
    assert client(Server(httpx.Response(204)), url="http://rt.test", allow_plaintext=True).send("GET", "/").status_code == 204


@pytest.mark.parametrize("url", ["ftp://rt.example", "rt.example/rt", "file:///etc/passwd", "http://"])
def test_what_is_not_an_http_url_is_refused(url: str) -> None:
    assert "not an http(s):// URL" in (plaintext_problem(url, allow_plaintext=True, section="tickets") or "")


def test_a_discovered_endpoint_in_plaintext_is_refused_too() -> None:
    """An absolute URL read from an answer (an OIDC discovery document) is guarded like the base URL."""
    server = Server(httpx.Response(200))
    with pytest.raises(ConfigError, match=r"tickets\.endpoint: http://op\.example/revoke"):
        client(server).send("POST", "http://op.example/revoke")
    assert server.requests == []


@pytest.mark.parametrize("section, body", [
    ("tickets", "tickets: {kind: rt, url: 'http://rt.example/rt', token: {env: RT_TOKEN}}"),
    ("audit", "audit: {kind: opensearch, url: 'http://search.example:9200'}"),
    ("identity", "identity: {kind: oidc, url: 'http://op.example', client_id: platform}"),
])
def test_a_site_file_in_plaintext_is_refused_when_it_is_read(tmp_path: Path, section: str, body: str) -> None:
    site = tmp_path / "tourniquet.yaml"
    site.write_text(f"""site: t
directory: {{url: 'ldaps://ldap.example', bind_dn: cn=x, bind_password: {{env: X}}, base_dn: dc=x}}
{body}
""", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{site}: .*{section}\.url: .*{section}\.allow_plaintext"):
        load_site(site)


# -- translation: httpx never escapes


@pytest.mark.parametrize("status, idempotent, error, words", [
    (401, True, PermanentError, "authentication"),
    (403, False, PermanentError, "authentication or rights refused"),
    (404, True, NotFound, "not found"),
    (400, True, PermanentError, "HTTP 400"),
    (302, True, PermanentError, "redirected"),
    (429, True, TransientError, "rate limiting"),
    (429, False, TransientError, "rate limiting"),  # refused before it was processed: safe to send later
    (503, True, TransientError, "down or overloaded"),
    (500, False, PermanentError, "may have been applied"),
    (502, False, PermanentError, "check at Request Tracker"),
])
def test_statuses_become_domain_errors(status: int, idempotent: bool, error: type[Exception], words: str) -> None:
    answer = httpx.Response(status, headers={"location": "https://sso.example/login"} if status == 302 else {},
                            json={"message": "the system's words"})
    with pytest.raises(error, match=words) as caught:
        client(Server(answer)).request("POST", "/ticket", idempotent=idempotent)
    assert type(caught.value) is error
    assert caught.value.system == "rt"  # type: ignore[attr-defined]
    if status != 302:
        assert "the system's words" in str(caught.value)


@pytest.mark.parametrize("failure, idempotent, error, words", [
    (httpx.ConnectError("[Errno 111] Connection refused"), False, TransientError, "unreachable"),
    (httpx.ConnectTimeout("timed out"), False, TransientError, "unreachable"),
    (httpx.ReadTimeout("timed out"), True, TransientError, "timed out"),
    (httpx.ReadTimeout("timed out"), False, PermanentError, "may or may not have been applied"),
    (httpx.RemoteProtocolError("Server disconnected"), False, PermanentError, "may or may not"),
    (httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"), True, PermanentError,
     r"tickets\.ca_file"),
    (httpx.UnsupportedProtocol("Request URL has an unsupported protocol"), True, PermanentError, "Unsupported"),
])
def test_transport_failures_become_domain_errors(failure: Exception, idempotent: bool, error: type[Exception],
                                                 words: str) -> None:
    with pytest.raises(error, match=words):
        client(Server(failure)).request("POST", "/ticket", idempotent=idempotent)


@settings(max_examples=80, deadline=None)
@given(status=st.integers(200, 599), method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
       body=st.one_of(st.binary(max_size=200), st.just(b"\xff\xfe{"), st.just(b"[1, {\"error\": null}]")))
def test_no_answer_lets_an_httpx_error_escape(status: int, method: str, body: bytes) -> None:
    """Whatever a hostile server answers, the caller gets a value or a Tourniquet error."""
    try:
        client(Server(httpx.Response(status, content=body))).json(method, "/x")
    except TourniquetError:
        pass


# -- retries: idempotent calls only, bounded, with backoff


def test_an_idempotent_call_is_retried_with_backoff_then_gets_through() -> None:
    server = Server(httpx.Response(503), httpx.ConnectError("refused"), httpx.Response(200, json={"id": 1}))
    sleeps: list[float] = []
    assert client(server, sleeps=sleeps).json("GET", "/ticket/1") == {"id": 1}
    assert len(server.requests) == 3 and sleeps == [0.2, 0.4]


def test_retries_are_bounded() -> None:
    server = Server(httpx.Response(503))
    with pytest.raises(TransientError):
        client(server, retries=2).request("GET", "/ticket/1")
    assert len(server.requests) == 3


@pytest.mark.parametrize("answer", [httpx.Response(503), httpx.ReadTimeout("slow"), httpx.ConnectError("refused")])
def test_a_call_that_is_not_idempotent_is_sent_once(answer: httpx.Response | Exception) -> None:
    """A POST that creates a comment may have been applied: sent again, it could be applied twice."""
    server = Server(answer, httpx.Response(201, json={"id": 2}))
    with pytest.raises((TransientError, PermanentError)):
        client(server).request("POST", "/ticket/1/comment", json={"Content": "locked"})
    assert len(server.requests) == 1


def test_a_post_said_idempotent_is_retried() -> None:
    """A search sent as POST (TheHive's query, OpenSearch's _search) only reads: the connector says so."""
    server = Server(httpx.Response(502), httpx.Response(200, json=[]))
    assert client(server).json("POST", "/api/v1/query", idempotent=True) == []
    assert len(server.requests) == 2


def test_authentication_failures_are_not_retried() -> None:
    server = Server(httpx.Response(401))
    with pytest.raises(PermanentError):
        client(server).request("GET", "/ticket/1")
    assert len(server.requests) == 1


# -- Retry-After: honoured within a cap


def test_retry_after_within_the_cap_is_honoured() -> None:
    server = Server(httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200, json={}))
    sleeps: list[float] = []
    client(server, sleeps=sleeps, retry_after_cap=5).request("GET", "/x")
    assert sleeps == [3.0]


def test_retry_after_beyond_the_cap_is_left_to_the_caller() -> None:
    """An hour's wait is not spent inside one call: the error says it, the outbox or Prefect retries later."""
    server = Server(httpx.Response(503, headers={"Retry-After": "3600"}), httpx.Response(200))
    sleeps: list[float] = []
    with pytest.raises(TransientError):
        client(server, sleeps=sleeps, retry_after_cap=5).request("GET", "/x")
    assert sleeps == [] and len(server.requests) == 1
    server = Server(httpx.Response(429, headers={"Retry-After": "3600"}))
    with pytest.raises(TransientError, match="asks to wait 3600 s"):
        client(server, retry_after_cap=5).request("GET", "/x")


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
    later = httpx.Response(503, headers={"Retry-After": format_datetime(now + timedelta(seconds=4), usegmt=True)})
    assert retry_after(later, now=lambda: now) == 4.0
    assert retry_after(httpx.Response(503, headers={"Retry-After": "soon"})) is None
    assert retry_after(httpx.Response(503)) is None


@settings(max_examples=100, deadline=None)
@given(value=st.one_of(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
                       st.sampled_from(["nan", "inf", "-5", "1e400", "Wed, 31 Dec 9999 23:59:59 GMT", "0"])))
def test_any_retry_after_is_a_usable_wait_or_nothing(value: str) -> None:
    """A hostile Retry-After never makes a call sleep for a negative, infinite or undefined time."""
    wait = retry_after(httpx.Response(503, headers={"Retry-After": value}))
    assert wait is None or (0 <= wait < float("inf"))


def test_an_unreadable_ca_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tickets\.ca_file: .*missing\.pem"):
        client(Server(httpx.Response(200)), ca_file=str(tmp_path / "missing.pem"))


# -- secrets masked in every error text

SECRETS = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N")), min_size=12, max_size=40)


@settings(max_examples=60, deadline=None)
@given(secret=SECRETS, status=st.sampled_from([302, 400, 401, 404, 429, 500, 503]),
       before=st.integers(0, 320), after=st.integers(0, 50))
def test_an_answer_echoing_a_secret_never_carries_it_into_the_error(secret: str, status: int, before: int,
                                                                     after: int) -> None:
    """An error page that echoes the request (the form body, a header, a redirect with the token in its
    query): the error says what happened, never the secret — not even a piece of it where the quoted
    answer is cut short (300 characters: ``before`` puts the secret across the cut)."""
    with secret_in_use(secret):
        answer = httpx.Response(status, text="-" * before + secret + "-" * after,
                                headers={"location": f"https://sso.example/?token={quote(secret)}"})
        with pytest.raises(TourniquetError) as caught:
            client(Server(answer)).request("GET", "/x")
        text = str(caught.value)
    pieces = {secret[i:i + 8] for i in range(len(secret) - 7)}
    assert not [piece for piece in pieces if piece in text], text
    assert quote(secret) not in text


@settings(max_examples=30, deadline=None)
@given(secret=SECRETS)
def test_an_exception_quoting_a_secret_never_carries_it_into_the_error(secret: str) -> None:
    with secret_in_use(secret):
        for failure in (httpx.ConnectError(f"cannot reach https://u:{secret}@rt.example"),
                        httpx.ReadTimeout(f"read timeout ({secret})"), httpx.DecodingError(secret)):
            with pytest.raises(TourniquetError) as caught:
                client(Server(failure)).request("POST", "/x")
            assert secret not in str(caught.value)
