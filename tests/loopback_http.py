"""A real HTTP server on loopback that answers with an ``httpx.Request -> httpx.Response`` handler.

So a contract fake (``tests/identity_fakes.py``) can be reached over a real socket — by a
subprocess, or by code that must not know it is being tested — with the same answers it gives
through ``httpx.MockTransport``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

import httpx

__all__ = ["LoopbackServer"]

Handler = Callable[[httpx.Request], httpx.Response]


class LoopbackServer:
    """``with LoopbackServer(handler) as server:`` … ``server.url`` is ``http://127.0.0.1:<port>``."""

    def __init__(self, handler: Handler, port: int = 0) -> None:
        self.handler = handler
        outer = self

        class _Request(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = httpx.Request(self.command, f"{outer.url}{self.path}",
                                        headers=[(k, v) for k, v in self.headers.items()], content=body)
                response = outer.handler(request)
                content = response.read()
                self.send_response(response.status_code)
                for name, value in response.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, format: str, *args: object) -> None:  # quiet: tests read their own output
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", port), _Request)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="loopback-http", daemon=True)

    def __enter__(self) -> "LoopbackServer":
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.server.shutdown()
        self.server.server_close()
