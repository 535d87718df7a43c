"""A directory that never answers, or answers garbage: the connector gives up within its timeout, with an error
that says what it was doing — never a hang, never a traceback. Once per transport (ldap3, libldap).

The "servers" are plain TCP listeners on loopback: one accepts and stays silent (a dead peer behind a firewall
that drops packets), one sends bytes that are not LDAP, one closes every connection at once; and one speaks
LDAP (:mod:`tests.ldap_wire`) but answers a modify or a paged search with control values that do not parse.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.ldap_wire import PAGED_RESULTS, POST_READ, a_directory, control, hostile_server
from tourniquet.connectors.directory import DirectoryClient, DirectoryConfig, Modification
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


# --------------------------------------------------------------------------- hostile control bytes, on the wire

DN = "uid=jdupont,ou=people,dc=sante,dc=example"
LOCK = [Modification("pwdAccountLockedTime", "replace", ("000001010000Z",))]
HOSTILE_VALUES = [b"", b"\x64", b"\x64\x84\xff\xff\xff\xff", b"\x64\x02\x04\x05", b"\x30\x00", b"\xff" * 64,
                  b"\x64\x05\x04\x00\x30\x81"]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_a_post_read_answer_that_does_not_parse_is_a_permanent_error_naming_the_modify(value: bytes) -> None:
    with hostile_server(a_directory(modify_controls=control(POST_READ, value))) as port, _client(port) as client:
        with client.read_ahead([DN]), pytest.raises(PermanentError, match=f"modifying {DN}: .*does not parse"):
            client.send(DN, LOCK)


@pytest.mark.parametrize("value", HOSTILE_VALUES[:5])
def test_a_paged_results_answer_that_does_not_parse_is_a_permanent_error_naming_the_sweep(value: bytes) -> None:
    with hostile_server(a_directory(search_done_controls=control(PAGED_RESULTS, value))) as port, \
            _client(port) as client, pytest.raises(PermanentError, match="paged search: .*does not parse"):
        list(client.iter_entries())


@pytest.mark.parametrize("controls", [b"\x30\x05\x04", b"\x04\x03abc", b"\x30\x03\x01\x01\xff", b"\xff\xff",
                                      b"\x30\x06\x02\x04\x7f\xff\xff\xff"])
def test_a_controls_element_that_is_not_ber_is_an_error_naming_the_modify_or_ignored_never_a_crash(
        controls: bytes) -> None:
    """The modify itself succeeded: an answer control that is not one (no OID, an INTEGER for an OID) may be
    ignored — then the state is read again, not taken from it — or refused as an error naming the modify."""
    with hostile_server(a_directory(modify_controls=controls)) as port, _client(port) as client:
        with client.read_ahead([DN]):
            try:
                client.send(DN, LOCK)
            except (PermanentError, TransientError) as exc:
                assert f"modifying {DN}: " in str(exc)


@pytest.mark.parametrize(("code", "expected"), [(10, PermanentError), (53, PermanentError), (80, PermanentError),
                                                (51, TransientError), (3, TransientError)],
                         ids=["referral", "unwillingToPerform", "other", "busy", "timeLimitExceeded"])
def test_a_modify_answered_with_anything_but_success_is_an_error_naming_the_entry(
        code: int, expected: type[Exception]) -> None:
    """ldap3 leaves a referral or timeLimitExceeded unraised: the connector never takes them for success."""
    with hostile_server(a_directory(modify_code=code)) as port, _client(port) as client:
        with pytest.raises(expected, match=f"modifying {DN}: "):
            client.send(DN, LOCK)


@pytest.mark.parametrize(("code", "expected"), [(10, PermanentError), (3, TransientError)],
                         ids=["referral", "timeLimitExceeded"])
def test_a_search_ended_with_a_referral_or_time_limit_is_an_error_not_an_empty_answer(
        code: int, expected: type[Exception]) -> None:
    with hostile_server(a_directory(search_code=code)) as port, _client(port) as client:
        with pytest.raises(expected, match="searching: "):
            client.search("(uid=jdupont)", ["uid"])
