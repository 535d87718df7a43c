"""A hostile LDAP server on loopback: it speaks just enough LDAP (bind, search, modify) to reach the step under test,
then answers with control values or messages chosen by the test — for the tests of what each transport does with them.

Messages are BER written by hand (a few tag-length-value helpers), as a server would put them on the wire.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

POST_READ = "1.3.6.1.1.13.2"
MATCHED_VALUES = "1.2.826.0.1.3344810.2.3"
PAGED_RESULTS = "1.2.840.113556.1.4.319"
SUCCESS = b"\x0a\x01\x00\x04\x00\x04\x00"  # LDAPResult: success, no matchedDN, no diagnostic


def tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + content


def control(oid: str, value: bytes) -> bytes:
    return tlv(0x30, tlv(0x04, oid.encode()) + tlv(0x04, value))


def message(message_id: int, operation: bytes, controls: bytes = b"") -> bytes:
    return tlv(0x30, tlv(0x02, message_id.to_bytes(4, "big", signed=True).lstrip(b"\x00") or b"\x00") + operation
               + (tlv(0xA0, controls) if controls else b""))


def entry(dn: str, attributes: dict[str, list[str]]) -> bytes:
    listed = b"".join(tlv(0x30, tlv(0x04, name.encode()) + tlv(0x31, b"".join(tlv(0x04, v.encode()) for v in values)))
                      for name, values in attributes.items())
    return tlv(0x64, tlv(0x04, dn.encode()) + tlv(0x30, listed))


#: What the server answers to one request: (message id, operation tag, the request's bytes) → bytes to send.
Answer = Callable[[int, int, bytes], bytes]


def _read_message(connection: socket.socket) -> bytes | None:
    head = connection.recv(2)
    if len(head) < 2:
        return None
    size = head[1]
    extra = b""
    if size & 0x80:
        extra = connection.recv(size & 0x7F)
        size = int.from_bytes(extra, "big")
    body = b""
    while len(body) < size:
        chunk = connection.recv(size - len(body))
        if not chunk:
            return None
        body += chunk
    return body


def _serve(connection: socket.socket, answer: Answer) -> None:
    try:
        while True:
            body = _read_message(connection)
            if body is None:
                return
            id_size = body[1]
            message_id = int.from_bytes(body[2:2 + id_size], "big")
            operation = body[2 + id_size]
            if operation == 0x42:  # unbind
                return
            connection.sendall(answer(message_id, operation, body[2 + id_size:]))
    except OSError:
        return
    finally:
        connection.close()


@contextmanager
def hostile_server(answer: Answer) -> Iterator[int]:
    """A loopback server answering every request with ``answer``; yields its port."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            connection.settimeout(10)
            threading.Thread(target=_serve, args=(connection, answer), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        server.close()


def _search_base(request: bytes) -> bytes:
    """The baseObject of a SearchRequest (its first element, after the request's own tag and length)."""
    at = 2 + (request[1] & 0x7F if request[1] & 0x80 else 0)
    return request[at + 2:at + 2 + request[at + 1]]


def result(code: int, message: str = "") -> bytes:
    """An LDAPResult: the code, no matchedDN, the diagnostic message."""
    return tlv(0x0A, bytes([code])) + tlv(0x04, b"") + tlv(0x04, message.encode())


def a_directory(modify_controls: bytes = b"", search_done_controls: bytes = b"", modify_code: int = 0,
                search_code: int = 0) -> Answer:
    """Binds succeed; the root DSE lists post-read and matched values; other searches find nothing (with
    ``search_done_controls`` on their end, and ``search_code``); a modify answers ``modify_code`` (success),
    with ``modify_controls`` in its answer."""

    def answer(message_id: int, operation: int, request: bytes) -> bytes:
        if operation == 0x60:  # bind
            return message(message_id, tlv(0x61, SUCCESS))
        if operation == 0x63:  # search: the root DSE (empty base) or anything else
            if not _search_base(request):
                root = entry("", {"supportedControl": [POST_READ, MATCHED_VALUES, PAGED_RESULTS]})
                return message(message_id, root) + message(message_id, tlv(0x65, SUCCESS))
            return message(message_id, tlv(0x65, result(search_code, "from the hostile server")), search_done_controls)
        if operation == 0x66:  # modify
            return message(message_id, tlv(0x67, result(modify_code, "from the hostile server")), modify_controls)
        return message(message_id, tlv(0x65, b"\x0a\x01\x35\x04\x00\x04\x00"))  # unwillingToPerform

    return answer
