"""The one HTTP boundary: every connector that speaks HTTP (identity, tickets, audit) goes through here.

What each of them used to do its own way, done once:

- **timeouts always set**: connect, and read/write/pool, from the site section;
- **TLS**: certificates checked (``verify_certificates``), against ``ca_file`` when given;
- **the plaintext guard**: an ``http://`` URL is refused (:class:`~tourniquet.errors.ConfigError`
  naming ``<section>.allow_plaintext``) unless the host is loopback or the site says
  ``allow_plaintext: true`` — credentials would otherwise cross the network in clear;
- **error translation**: httpx never escapes. Unreachable, timed out, 429, 5xx become
  :class:`TransientError` only when the call is idempotent or provably never reached the server
  (connection refused, 429: the server says it did not act); otherwise :class:`PermanentError`
  saying the call may have been applied. 401/403 → :class:`PermanentError` naming authentication,
  404 → :class:`NotFound`;
- **retries for idempotent calls only**: a few, with a doubling backoff; ``Retry-After`` is honoured
  up to a cap, and a longer wait is left to the caller (Prefect's retries, the ticket outbox);
- **masking**: every error text goes through :func:`tourniquet.secrets.mask` (an error page can
  echo a token or a form body).

May import: ``httpx``, ``tourniquet.errors``, ``tourniquet.secrets``. Imported by:
``connectors.identity``, ``connectors.tickets``, ``connectors.audit``.
"""

from __future__ import annotations

import ipaddress
import json
import math
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from tourniquet.errors import ConfigError, ConnectorError, NotFound, PermanentError, TransientError
from tourniquet.secrets import mask

__all__ = [
    "HttpSettings", "HttpClient", "plaintext_problem", "check_plaintext", "answer_text", "retry_after",
    "IDEMPOTENT_METHODS", "RETRIED_STATUSES",
]

#: Methods whose repetition has the same effect as one call (RFC 9110 section 9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: Answers worth asking again (for an idempotent call): overloaded, or a gateway that lost its upstream.
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Words of a TLS failure: a configuration problem, not worth retrying.
_TLS_WORDS = ("certificate", "ssl", "tls", "handshake", "wrong version number")
#: Keys under which JSON error bodies carry their message (OAuth, Keycloak, Jira, TheHive …).
_MESSAGE_KEYS = ("error", "error_description", "errorMessage", "errorMessages", "message", "errors")
#: Longest piece of an outside system's answer quoted in an error.
DETAIL_LIMIT = 300


@dataclass(frozen=True)
class HttpSettings:
    """How one connector reaches its system: read from its site section (``section`` names it in errors)."""

    section: str
    timeout: float = 10.0
    connect_timeout: float = 5.0
    verify_certificates: bool = True
    ca_file: str | None = None
    allow_plaintext: bool = False
    retries: int = 2
    backoff: float = 0.2
    retry_after_cap: float = 5.0

    def verify(self) -> bool | ssl.SSLContext:
        """What httpx checks the server's certificate against: the system's CAs, or ``ca_file``'s."""
        if not (self.verify_certificates and self.ca_file):
            return self.verify_certificates
        try:
            return ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError(f"{self.section}.ca_file: {self.ca_file}: not a readable CA bundle ({reason})") from None


def _is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always the loopback interface
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plaintext_problem(url: str, *, allow_plaintext: bool, section: str, field: str = "url") -> str | None:
    """Why ``url`` may not be used (``None`` when it may): credentials must not cross a network in clear.

    Pure, so that site validation (at load) and the client factory (at connect) say the same thing.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return f"{section}.{field}: {mask(url)[:200]!r} is not a URL"
    scheme = parts.scheme.lower()
    if scheme == "https":
        return None
    if scheme != "http" or not host:
        return f"{section}.{field}: {mask(url)[:200]!r} is not an http(s):// URL"
    if allow_plaintext or _is_loopback(host):
        return None
    return (f"{section}.{field}: {mask(url)} would send credentials in clear: use https://, or set "
            f"{section}.allow_plaintext: true (only for a test system; loopback hosts are allowed anyway)")


def check_plaintext(url: str, settings: HttpSettings, field: str = "url") -> None:
    """Raise :class:`ConfigError` when :func:`plaintext_problem` finds one."""
    problem = plaintext_problem(url, allow_plaintext=settings.allow_plaintext, section=settings.section, field=field)
    if problem:
        raise ConfigError(problem)


def answer_text(response: httpx.Response, limit: int = DETAIL_LIMIT) -> str:
    """The system's own words, short, from a JSON or text body.

    Masked before it is cut short: an error page that echoes the request (a proxy error, a 500 with
    the form body) would otherwise carry a secret, or half of one, into the error.
    """
    try:
        body: Any = response.json()
    except ValueError:
        return mask(response.text).strip().replace("\n", " ")[:limit]
    if isinstance(body, dict):
        parts = [json.dumps(body[k], ensure_ascii=False) if not isinstance(body[k], str) else body[k]
                 for k in _MESSAGE_KEYS if body.get(k)]
        if parts:
            return mask(": ".join(parts))[:limit]
    return mask(json.dumps(body, ensure_ascii=False))[:limit]


def retry_after(response: httpx.Response, now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> float | None:
    """Seconds the server asks us to wait (``Retry-After``: seconds or an HTTP date), ``None`` if it does not say."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:  # "nan", "inf", "-5" from a hostile server: no usable answer
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, (moment - now()).total_seconds())


class HttpClient:
    """One base URL of one outside system, with the site's timeouts, TLS, guard, retries and error policy.

    :meth:`send` returns the answer whatever its status (for connectors with their own words for
    each status: Keycloak, OIDC); :meth:`request` and :meth:`json` translate the status too.
    ``transport`` is the contract tests' seam (``httpx.MockTransport``); ``sleep`` lets them wait
    for nothing.
    """

    def __init__(
        self,
        settings: HttpSettings,
        base_url: str,
        *,
        system: str,
        name: str = "",
        headers: dict[str, str] | None = None,
        auth: httpx.Auth | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if base_url:  # empty: every call names an absolute URL, guarded in send
            check_plaintext(base_url, settings)
        self.settings = settings
        self.system = system
        self.name = name or system
        self._sleep = sleep
        self._client = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
            verify=settings.verify(),
            headers={"User-Agent": "tourniquet", "Accept": "application/json", **(headers or {})},
            auth=auth,
            transport=transport,
            follow_redirects=False,  # a redirect to a login page is an error, not a success
        )

    def close(self) -> None:
        self._client.close()

    def send(self, method: str, url: str, *, what: str = "", idempotent: bool | None = None,
             **kwargs: Any) -> httpx.Response:
        """One call, tried again while it may and should be; the last answer is returned, any status.

        ``idempotent`` defaults from the method; say ``True`` for a POST that only reads (a search)
        or whose repetition is harmless, ``False`` for a PUT that is not.
        """
        method = method.upper()
        what = what or f"{method} {url}"
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        if "://" in url:  # an absolute URL (a discovered endpoint) is guarded like the base URL
            check_plaintext(url, self.settings, field="endpoint")
        attempts = 1 + (max(0, self.settings.retries) if idempotent else 0)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._client.request(method, url, **kwargs)
            except httpx.HTTPError as exc:
                error = self.transport_error(exc, what, idempotent=idempotent)
                if last or not isinstance(error, TransientError):
                    raise error from exc
                self._sleep(self.settings.backoff * 2 ** attempt)
                continue
            except httpx.InvalidURL as exc:
                raise self._error(PermanentError, f"{what}: invalid URL ({exc})") from exc
            if last or response.status_code not in RETRIED_STATUSES:
                return response
            wait = retry_after(response)
            if wait is not None and wait > self.settings.retry_after_cap:
                return response  # longer than we wait inside one call: the caller retries later
            response.close()
            self._sleep(wait if wait is not None else self.settings.backoff * 2 ** attempt)
        raise AssertionError("unreachable")  # pragma: no cover: the loop returns or raises

    def request(self, method: str, url: str, *, what: str = "", idempotent: bool | None = None,
                **kwargs: Any) -> httpx.Response:
        """:meth:`send`, then any status but 2xx translated into a Tourniquet error."""
        method = method.upper()
        what = what or f"{method} {url}"
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        response = self.send(method, url, what=what, idempotent=idempotent, **kwargs)
        self.raise_for_status(response, what, idempotent=idempotent)
        return response

    def json(self, method: str, url: str, *, what: str = "", idempotent: bool | None = None, **kwargs: Any) -> Any:
        """:meth:`request`, the answer read as JSON (``None`` for an empty one)."""
        what = what or f"{method.upper()} {url}"
        response = self.request(method, url, what=what, idempotent=idempotent, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise self._error(PermanentError, f"{what}: the answer is not JSON (wrong URL?)") from None

    def raise_for_status(self, response: httpx.Response, what: str, *, idempotent: bool) -> None:
        """The generic meaning of a status; connectors with better words check theirs first."""
        if response.status_code >= 300:
            raise self.status_error(response, what, idempotent=idempotent)

    def status_error(self, response: httpx.Response, what: str, *, idempotent: bool) -> Exception:
        """The Tourniquet error for a status that is not a success."""
        status, name = response.status_code, self.name
        detail = answer_text(response)
        if 300 <= status < 400:
            return self._error(PermanentError, f"{what}: redirected to {response.headers.get('location')} "
                                               "(wrong URL or web path?)")
        if status in (401, 403):
            return self._error(PermanentError, f"{what}: authentication or rights refused by {name} "
                                               f"(HTTP {status}) {detail}")
        if status == 404:
            return self._error(NotFound, f"{what}: not found (HTTP 404) {detail}")
        if status == 429:  # refused before it was processed: safe to send again later, whatever the call
            wait = retry_after(response)
            later = f", asks to wait {wait:.0f} s" if wait is not None else ""
            return self._error(TransientError, f"{what}: {name} is rate limiting (HTTP 429{later}) {detail}")
        if status >= 500 and idempotent:
            return self._error(TransientError, f"{what}: {name} is down or overloaded (HTTP {status}) {detail}")
        if status >= 500:
            return self._error(PermanentError, f"{what}: {name} failed (HTTP {status}) {detail}; the call may "
                                               f"have been applied: check at {name} before running again")
        return self._error(PermanentError, f"{what}: HTTP {status} {detail}")

    def _error(self, kind: type[ConnectorError], text: str) -> ConnectorError:
        return kind(mask(text), system=self.system)

    def transport_error(self, exc: httpx.HTTPError, what: str, *, idempotent: bool) -> ConnectorError:
        """The Tourniquet error for an httpx exception (masked: its text can carry a URL or a body)."""
        name, section = self.name, self.settings.section
        text = mask(str(exc))[:DETAIL_LIMIT]
        kind = type(exc).__name__
        if isinstance(exc, httpx.ConnectError) and any(w in text.lower() for w in _TLS_WORDS):
            return self._error(PermanentError, f"{what}: TLS with {name} failed: its certificate is not trusted or "
                                               f"does not name the host — set {section}.ca_file to the CA that "
                                               f"signed it ({text})")
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):  # nothing was sent
            return self._error(TransientError, f"{what}: {name} unreachable ({kind}: {text})")
        if isinstance(exc, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)) and idempotent:
            return self._error(TransientError, f"{what}: {name} timed out or dropped the connection ({kind})")
        if isinstance(exc, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)):
            return self._error(PermanentError, f"{what}: {name} timed out or dropped the connection after the "
                                               f"request was sent; it may or may not have been applied — check at "
                                               f"{name} before running again ({kind})")
        return self._error(PermanentError, f"{what}: {kind}: {text}")
