"""One LDAP connection through ldap3 (pure Python, in the core dependencies): the few operations the client sends.

The ``ldap3`` transport: it installs anywhere (no compiler, no OpenLDAP headers), and gives the same
:class:`~.transport.DirectoryConnection` as :mod:`.libldap`: ``search`` and ``modify`` leave entries in
``response`` with values as bytes, and controls in ``result`` decoded by :mod:`.controls` — request
controls are sent as the same BER bytes, and ldap3's own decoding of response controls is replaced
(:func:`_raw_control`) so that post-read and paged answers go through the same few lines of parsing.

What ldap3 does on its own is set the way the connector needs: no schema read (``get_info=NONE``), no
referral chased, aliases never dereferenced, exceptions raised (and translated by
:func:`.errors.ldap_errors`, in :mod:`.connections`), the connect and receive timeouts set, and a fresh
``Server`` for every connection (ldap3 keeps a refused address aside for a few seconds on the object).
ldap3 takes the receive timeout in whole seconds (it packs it into the socket option): rounded up.
Whatever ldap3 fails to decode (a hostile server) is :class:`.errors.MalformedAnswer`, not an IndexError.

May import: ldap3, ``directory.controls``, ``directory.errors``, ``directory.transport``.
Imported by: ``directory.transport`` (when chosen).
"""

from __future__ import annotations

import math
import ssl
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import ldap3
from ldap3.core import exceptions as ldap3_exceptions

from tourniquet.connectors.directory.controls import PAGED_RESULTS, POST_READ, Control, paged, parse_entry, parse_paged
from tourniquet.connectors.directory.errors import MalformedAnswer, NoSuchObject, TlsFailed
from tourniquet.connectors.directory.transport import BASE, ENTRY, SUBTREE, TlsSettings, reachable

__all__ = ["Ldap3Connection"]

_SCOPES = {BASE: ldap3.BASE, SUBTREE: ldap3.SUBTREE}
#: What ldap3 raises when a TLS connection could not be set up (told apart from an unreachable server by
#: trying the port: see :func:`.transport.reachable`).
_TLS_SETUP = (ldap3_exceptions.LDAPCommunicationError, ldap3_exceptions.LDAPStartTLSError,
              ldap3_exceptions.LDAPCertificateError, ldap3_exceptions.LDAPSSLConfigurationError, ssl.SSLError)
#: What ldap3's decoder meets in bytes that are not the LDAP it expects (an index past the end, a length that
#: does not fit, a value of the wrong type).
_UNDECODABLE = (LookupError, TypeError, ValueError, AttributeError, ArithmeticError, struct.error)
#: sizeLimitExceeded ends a search whose entries are kept (as in libldap); every other result ldap3 leaves
#: unraised (a referral, timeLimitExceeded, compare results) is raised, as libldap raises it.
_SIZE_LIMIT_EXCEEDED = 4


def _raise_unless_success(result: dict[str, Any] | None, *, allowed: tuple[int, ...] = ()) -> None:
    code = (result or {}).get("result", 0)
    if code != 0 and code not in allowed:
        raise ldap3_exceptions.LDAPOperationResult(
            result=code, description=(result or {}).get("description"), dn=(result or {}).get("dn"),
            message=(result or {}).get("message"), response_type=(result or {}).get("type"))


def _raw_control(control: Any, from_server: bool = True) -> tuple[str, dict[str, Any]]:
    """A response control with its value left as BER (replaces ldap3's decoder: :mod:`.controls` decodes).

    Only OCTET STRINGs are taken as the OID and the value: a hostile server's INTEGER there would otherwise
    become ``bytes(n)``, n zero bytes.
    """
    first = control[0][3]
    oid = bytes(first).decode("ascii", "replace") if isinstance(first, (bytes, bytearray)) else ""
    criticality, value = False, b""
    for part in control[1:]:
        if part[2] == 4 and isinstance(part[3], (bytes, bytearray)):  # controlValue OCTET STRING
            value = bytes(part[3])
        elif part[2] == 1:  # criticality BOOLEAN
            criticality = bool(part[3])
    return oid, {"criticality": criticality, "value": value}


@contextmanager
def _decoded() -> Iterator[None]:
    """ldap3's own exceptions pass; a decoder's IndexError or ValueError on hostile bytes becomes MalformedAnswer."""
    try:
        yield
    except ldap3_exceptions.LDAPException:
        raise
    except _UNDECODABLE as exc:
        raise MalformedAnswer(f"ldap3 could not decode it: {type(exc).__name__}: {str(exc)[:200]}") from exc


class Ldap3Connection:
    """A connection to ``url``: TLS as the settings say, connecting and each answer bounded by ``timeout`` seconds."""

    def __init__(self, url: str, *, timeout: float, tls: TlsSettings | None = None, start_tls: bool = False) -> None:
        self.url, self.timeout, self.tls, self.start_tls = url, timeout, tls, start_tls
        self.tls_started = False
        self.response: list[dict[str, Any]] = []
        self.result: dict[str, Any] = {}
        parts = urlsplit(url)
        secure = parts.scheme.lower() == "ldaps"
        host = parts.hostname or "localhost"
        settings = None
        if tls is not None:
            # ldap3 builds the context with ssl.create_default_context (TLS 1.2 at least, the CA file or the
            # system's CAs), then checks the host name itself after the handshake when validation is on.
            settings = ldap3.Tls(validate=ssl.CERT_REQUIRED if tls.verify else ssl.CERT_NONE,
                                 ca_certs_file=tls.ca_file, sni=host)
        server = ldap3.Server(host, port=parts.port or (636 if secure else 389), use_ssl=secure, tls=settings,
                              get_info=ldap3.NONE, connect_timeout=timeout)
        self._ldap = ldap3.Connection(
            server, authentication=ldap3.SIMPLE, auto_bind=ldap3.AUTO_BIND_NONE, client_strategy=ldap3.SYNC,
            auto_referrals=False, auto_range=False, check_names=False, raise_exceptions=True,
            receive_timeout=math.ceil(timeout), return_empty_attributes=False, fast_decoder=True)
        self._ldap.strategy.decode_control_fast = _raw_control  # response controls stay BER (see the docstring)

    @property
    def bound(self) -> bool:
        return bool(self._ldap.bound) and not self._ldap.closed

    @property
    def closed(self) -> bool:
        return bool(self._ldap.closed)

    def bind(self, dn: str, password: str) -> None:
        """StartTLS first when asked, then a simple bind; a TLS failure is told apart from an unreachable server."""
        try:
            with _decoded():
                self._ldap.open(read_server_info=False)
                if self.start_tls:
                    self._ldap.start_tls(read_server_info=False)
                    self.tls_started = True
        except _TLS_SETUP as exc:
            if self.tls is not None and reachable(self.url, self.timeout):
                raise TlsFailed(str(exc) or type(exc).__name__) from exc
            raise
        self._ldap.user, self._ldap.password = dn, password
        with _decoded():
            self._ldap.bind(read_server_info=False)
        _raise_unless_success(self._ldap.result)

    def search(self, search_base: str, search_filter: str, search_scope: str = SUBTREE,
               attributes: Sequence[str] | None = None, size_limit: int = 0, paged_size: int | None = None,
               paged_cookie: bytes | None = None, controls: Sequence[Control] | None = None,
               **_: Any) -> bool:
        """Entries into ``response``; a size limit reached keeps the entries received (as the limit means)."""
        sent = list(controls or [])
        if paged_size:
            sent.append(paged(paged_size, paged_cookie or b""))
        try:
            with _decoded():
                self._ldap.search(search_base, search_filter, search_scope=_SCOPES[search_scope],
                                  dereference_aliases=ldap3.DEREF_NEVER, attributes=list(attributes or ["*"]),
                                  size_limit=size_limit, controls=sent or None)
        except ldap3_exceptions.LDAPNoSuchObjectResult as exc:
            raise NoSuchObject(str(exc)) from exc
        _raise_unless_success(self._ldap.result, allowed=(_SIZE_LIMIT_EXCEEDED,))
        # the DN decoded strictly (ldap3 would hand back bytes): a name that is not UTF-8 is an error, as in libldap
        self.response = [{"type": ENTRY, "dn": bytes(r["raw_dn"]).decode("utf-8"), "attributes": r["raw_attributes"]}
                         for r in self._ldap.response or [] if r.get("type") == ENTRY]
        answers = (self._ldap.result or {}).get("controls") or {}
        self.result = {"result": 0, "controls": {
            oid: {"value": {"cookie": parse_paged(answer["value"])}} for oid, answer in answers.items()
            if oid == PAGED_RESULTS}}
        return True

    def modify(self, dn: str, changes: dict[str, list[tuple[str, list[Any]]]],
               controls: Sequence[Control] | None = None) -> bool:
        """One modify request (applied atomically by the server); a post-read answer into ``result``."""
        with _decoded():
            self._ldap.modify(dn, changes, controls=list(controls) if controls else None)
        _raise_unless_success(self._ldap.result)
        answers = (self._ldap.result or {}).get("controls") or {}
        self.result = {"result": 0, "controls": {
            oid: {"value": {"result": parse_entry(answer["value"])}} for oid, answer in answers.items()
            if oid == POST_READ}}
        return True

    def modify_password(self, dn: str, password: str) -> None:
        """RFC 3062 password modify: the server hashes the new password by its own policy."""
        with _decoded():
            self._ldap.extend.standard.modify_password(user=dn, new_password=password)
        _raise_unless_success(self._ldap.result)

    def unbind(self) -> None:
        self._ldap.unbind()
