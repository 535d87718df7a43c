"""HTTP plumbing shared by the identity provider clients: one httpx client, errors translated.

Every call has a timeout (connect and read/write, from the site configuration). httpx
errors never leave this module: an unreachable or overloaded IdP becomes a
:class:`~tourniquet.errors.TransientError` (Prefect retries it) — but only when the call
is idempotent or provably never reached the server; anything else is permanent.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tourniquet.connectors.identity.base import SYSTEM, IdentityConfig
from tourniquet.errors import PermanentError, TransientError
from tourniquet.secrets import mask

__all__ = ["http_client", "http_errors", "error_text"]


def http_client(config: IdentityConfig, base_url: str, transport: httpx.BaseTransport | None) -> httpx.Client:
    """An httpx client with the site's timeouts and TLS settings; ``transport`` is the test seam."""
    verify: bool | ssl.SSLContext = config.verify_certificates
    if config.verify_certificates and config.ca_file:
        verify = ssl.create_default_context(cafile=config.ca_file)
    return httpx.Client(
        base_url=base_url.rstrip("/"),
        timeout=httpx.Timeout(config.timeout, connect=config.connect_timeout),
        verify=verify,
        transport=transport,
        follow_redirects=False,  # a redirect to a login page is an error, not a success
        headers={"User-Agent": "tourniquet", "Accept": "application/json"},
    )


@contextmanager
def http_errors(what: str, *, idempotent: bool, name: str = "identity provider") -> Iterator[None]:
    """Translate httpx exceptions for one call into Tourniquet errors that say what to do (masked: an
    exception's text can carry a URL or a body)."""
    try:
        yield
    except httpx.ConnectTimeout as exc:
        raise TransientError(mask(f"{what}: {name} did not answer the connection in time ({exc})"),
                             system=SYSTEM) from exc
    except httpx.ConnectError as exc:
        text = mask(str(exc))
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate" in text.lower():
            raise PermanentError(
                f"{what}: the {name}'s TLS certificate is not trusted — set ca_file to the CA that signed it ({text})",
                system=SYSTEM) from exc
        raise TransientError(f"{what}: {name} unreachable ({text})", system=SYSTEM) from exc
    except (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        if idempotent:
            raise TransientError(f"{what}: {name} timed out or dropped the connection ({type(exc).__name__})",
                                 system=SYSTEM) from exc
        raise PermanentError(
            f"{what}: {name} timed out after the request was sent; it may or may not have been applied — "
            f"check at the {name} before running again ({type(exc).__name__})", system=SYSTEM) from exc
    except httpx.HTTPError as exc:
        raise PermanentError(mask(f"{what}: {type(exc).__name__}: {exc}"), system=SYSTEM) from exc


def error_text(response: httpx.Response) -> str:
    """The provider's own error message, short, from a JSON or text body.

    Masked before it is cut short: an error page that echoes the request (a proxy error, a 500
    with the form body) would otherwise carry the client secret, or half of it, into the error.
    """
    try:
        body: Any = response.json()
    except ValueError:
        return mask(response.text).strip()[:200]
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("error", "error_description", "errorMessage") if body.get(k)]
        return mask(": ".join(parts))[:200]
    return mask(str(body))[:200]
