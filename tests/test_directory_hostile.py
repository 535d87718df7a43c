"""A directory that never answers, or answers garbage: the connector gives up within its timeout, with an error
that says what it was doing — never a hang, never a traceback.

The "servers" are plain TCP listeners on loopback: one accepts and stays silent (a dead peer behind a firewall
that drops packets), one sends bytes that are not LDAP, one closes every connection at once.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tourniquet.connectors.directory import DirectoryClient, DirectoryConfig
from tourniquet.errors import PermanentError, TransientError

pytestmark = pytest.mark.usefixtures("each_transport")


def _listener(behaviour: Callable[[socket.socket], None]) -> Iterator[int]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            held.append(connection)
            behaviour(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        for connection in held:
            connection.close()
        server.close()


@pytest.fixture()
def silent() -> Iterator[int]:
    yield from _listener(lambda connection: None)


@pytest.fixture()
def garbage() -> Iterator[int]:
    yield from _listener(lambda connection: connection.sendall(b"HTTP/1.1 200 OK\r\n\r\n" + bytes(range(256)) * 4))


@pytest.fixture()
def closing() -> Iterator[int]:
    yield from _listener(lambda connection: connection.close())


def _client(port: int) -> DirectoryClient:
    config = DirectoryConfig(url=f"ldap://127.0.0.1:{port}", allow_plaintext=True, bind_dn="cn=svc",
                             bind_password={"env": "UNUSED"}, base_dn="ou=people,dc=sante,dc=example", timeout=1)
    return DirectoryClient(config, password="not-sent-anywhere-real")


def test_a_server_that_never_answers_is_given_up_on_within_the_timeout(silent: int) -> None:
    started = time.monotonic()
    with _client(silent) as client, pytest.raises(TransientError, match="connecting to ldap://127.0.0.1"):
        client.read("uid=x,ou=people,dc=sante,dc=example")
    assert time.monotonic() - started < 10  # the bind waits 1 s, not forever


def test_a_server_that_answers_garbage_is_an_error_naming_the_operation(garbage: int) -> None:
    with _client(garbage) as client, pytest.raises((PermanentError, TransientError), match="connecting to ldap://"):
        client.read("uid=x,ou=people,dc=sante,dc=example")


def test_a_server_that_hangs_up_is_transient(closing: int) -> None:
    with _client(closing) as client, pytest.raises(TransientError, match="unreachable"):
        client.read("uid=x,ou=people,dc=sante,dc=example")
