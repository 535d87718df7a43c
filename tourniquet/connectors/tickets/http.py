"""One HTTP client per ticket system, with every httpx failure translated at this boundary.

Unreachable, timed out, 429 and 5xx → :class:`TransientError` (the outbox keeps the write);
401/403 → :class:`PermanentError` naming authentication; 404 → :class:`NotFound`; any
other 4xx → :class:`PermanentError` with the system's message. httpx never escapes.
"""

from __future__ import annotations

from typing import Any

import httpx

from tourniquet.errors import NotFound, PermanentError, TransientError
from tourniquet.secrets import mask

__all__ = ["HttpApi"]


class HttpApi:
    def __init__(
        self,
        system: str,
        base_url: str,
        *,
        timeout: float,
        ca_file: str | None = None,
        headers: dict[str, str] | None = None,
        auth: httpx.Auth | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.system = system
        self.client = httpx.Client(
            base_url=base_url, timeout=timeout, verify=ca_file or True, headers=headers or {}, auth=auth,
            transport=transport, follow_redirects=False,
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise TransientError(f"{method} {path}: timed out ({type(exc).__name__})", system=self.system) from exc
        except httpx.TransportError as exc:
            raise TransientError(mask(f"{method} {path}: unreachable ({exc})"), system=self.system) from exc
        status = response.status_code
        if status < 300:
            return response
        detail = _detail(response)
        if status >= 500 or status == 429:
            raise TransientError(f"{method} {path}: HTTP {status} {detail}", system=self.system)
        if status in (401, 403):
            raise PermanentError(f"{method} {path}: authentication or rights refused (HTTP {status}) {detail}",
                                 system=self.system)
        if status == 404:
            raise NotFound(f"{method} {path}: not found {detail}", system=self.system)
        if 300 <= status < 400:
            raise PermanentError(mask(f"{method} {path}: redirected to {response.headers.get('location')} "
                                      "(wrong URL or web path?)"), system=self.system)
        raise PermanentError(f"{method} {path}: HTTP {status} {detail}", system=self.system)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise PermanentError(f"{method} {path}: the answer is not JSON (wrong URL?)", system=self.system) from None

    def close(self) -> None:
        self.client.close()


def _detail(response: httpx.Response) -> str:
    """The system's own words, masked before they are cut short (a cut secret would escape the mask)."""
    text = mask(response.text).strip().replace("\n", " ")
    return text[:300]
