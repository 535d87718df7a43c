"""One LDAP connection through OpenLDAP's C client library (python-ldap): the few operations the client sends.

Why the C library: containing 1,000 accounts, or sweeping a million entries for hygiene, is mostly
encoding requests and decoding answers, which C does faster than pure Python
(``bench/bench_contain.py``, ``bench/bench_sweep.py``, docs/benchmarks/transports.md).

The ``libldap`` transport (the extra of that name; :mod:`.transport` chooses it when it is importable):
the interface is :class:`~.transport.DirectoryConnection`, the same as :mod:`.ldap3_connection`'s.
Controls travel as BER bytes (:mod:`.controls`); values come back as bytes. python-ldap's exceptions
leave this module untranslated (a missing entry as :class:`.errors.NoSuchObject`):
:func:`.errors.ldap_errors` translates them, in :mod:`.connections`, with what was being done.

May import: python-ldap, ``directory.controls``, ``directory.errors``, ``directory.transport``.
Imported by: ``directory.transport`` (when chosen).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ldap
from ldap.controls import RequestControl, ResponseControl

from tourniquet.connectors.directory.controls import PAGED_RESULTS, POST_READ, Control, paged, parse_entry, parse_paged
from tourniquet.connectors.directory.errors import MalformedAnswer, NoSuchObject, TlsFailed, describe
from tourniquet.connectors.directory.transport import (
    ADD,
    BASE,
    DELETE,
    ENTRY,
    MODIFY,
    REPLACE,
    SUBTREE,
    DirectoryConnection,
    TlsSettings,
    reachable,
)

__all__ = ["DirectoryConnection", "LdapConnection", "TlsSettings", "BASE", "SUBTREE", "REPLACE", "ADD", "DELETE",
           "MODIFY", "ENTRY"]

_SCOPES = {BASE: ldap.SCOPE_BASE, SUBTREE: ldap.SCOPE_SUBTREE}
_OPERATIONS = {REPLACE: ldap.MOD_REPLACE, ADD: ldap.MOD_ADD, DELETE: ldap.MOD_DELETE}


class _Raw(RequestControl):  # type: ignore[misc]  # python-ldap ships no type hints
    """A request control whose value is already BER."""

    def __init__(self, control: Control) -> None:
        super().__init__(control[0], control[1], control[2])

    def encodeControlValue(self) -> bytes:
        return self.encodedControlValue  # type: ignore[no-any-return]


class _RawAnswer(ResponseControl):  # type: ignore[misc]
    """A response control kept as BER (decoded by :mod:`.controls`, not by pyasn1)."""

    def decodeControlValue(self, encoded: bytes) -> None:
        self.encoded = encoded


_ANSWERS = {POST_READ: _RawAnswer, PAGED_RESULTS: _RawAnswer}


def _value(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


class LdapConnection:
    """A connection to ``url``: TLS as the settings say, every operation bounded by ``timeout`` seconds."""

    def __init__(self, url: str, *, timeout: float, tls: TlsSettings | None = None, start_tls: bool = False) -> None:
        self.url, self.timeout, self.tls, self.start_tls = url, timeout, tls, start_tls
        self.bound, self.closed, self.tls_started = False, False, False
        self.response: list[dict[str, Any]] = []
        self.result: dict[str, Any] = {}
        self._ldap = ldap.initialize(url)
        for option, value in ((ldap.OPT_PROTOCOL_VERSION, 3), (ldap.OPT_REFERRALS, 0), (ldap.OPT_DEREF, ldap.DEREF_NEVER),
                              (ldap.OPT_NETWORK_TIMEOUT, timeout), (ldap.OPT_TIMEOUT, timeout)):
            self._ldap.set_option(option, value)
        if tls is not None:
            try:
                self._ldap.set_option(ldap.OPT_X_TLS_REQUIRE_CERT,
                                      ldap.OPT_X_TLS_DEMAND if tls.verify else ldap.OPT_X_TLS_NEVER)
                if tls.ca_file:
                    self._ldap.set_option(ldap.OPT_X_TLS_CACERTFILE, tls.ca_file)
                self._ldap.set_option(ldap.OPT_X_TLS_PROTOCOL_MIN, ldap.OPT_X_TLS_PROTOCOL_TLS1_2)
                self._ldap.set_option(ldap.OPT_X_TLS_NEWCTX, 0)  # libldap reads the CA file here
            except ValueError as exc:  # python-ldap's "option error": the CA file is unreadable or not PEM
                raise TlsFailed(f"libldap refused the TLS settings (CA file {tls.ca_file!r}: {exc})") from exc

    def bind(self, dn: str, password: str) -> None:
        """StartTLS first when asked, then a simple bind; a TLS failure is told apart from an unreachable server."""
        try:
            if self.start_tls:
                self._ldap.start_tls_s()
                self.tls_started = True
            self._ldap.simple_bind_s(dn, password)
        except (ldap.SERVER_DOWN, ldap.CONNECT_ERROR) as exc:
            if self.tls is not None and reachable(self.url, self.timeout):
                raise TlsFailed(describe(exc)) from exc
            raise
        self.bound = True

    def search(self, search_base: str, search_filter: str, search_scope: str = SUBTREE,
               attributes: Sequence[str] | None = None, size_limit: int = 0, paged_size: int | None = None,
               paged_cookie: bytes | None = None, controls: Sequence[Control] | None = None,
               **_: Any) -> bool:
        """Entries into ``response``; a size limit reached keeps the entries received (as the limit means)."""
        sent = [_Raw(c) for c in controls or []]
        if paged_size:
            sent.append(_Raw(paged(paged_size, paged_cookie or b"")))
        message = self._ldap.search_ext(search_base, _SCOPES[search_scope], search_filter, list(attributes or ["*"]),
                                        serverctrls=sent or None, sizelimit=size_limit)
        entries: list[tuple[str, dict[str, list[bytes]]]] = []
        answers: list[Any] = []
        try:
            if size_limit:
                while True:  # one message at a time: the entries before sizeLimitExceeded are kept
                    kind, data, answers = self._result(message, everything=False)
                    entries.extend(data or [])
                    if kind == ldap.RES_SEARCH_RESULT:
                        break
            else:
                _, data, answers = self._result(message, everything=True)
                entries = data or []
        except ldap.SIZELIMIT_EXCEEDED:
            answers = []
        except ldap.NO_SUCH_OBJECT as exc:
            raise NoSuchObject(describe(exc)) from exc
        self.response = [{"type": ENTRY, "dn": dn, "attributes": values} for dn, values in entries if dn is not None]
        self.result = {"result": 0, "controls": {
            a.controlType: {"value": {"cookie": parse_paged(a.encoded)}} for a in answers
            if a.controlType == PAGED_RESULTS}}
        return True

    def _result(self, message: int, *, everything: bool) -> tuple[Any, Any, list[Any]]:
        """The answer to ``message`` (all of it, or its next message): its kind, data and response controls.

        python-ldap raises MemoryError when libldap cannot parse the controls of an answer (a hostile
        server's bytes, not a lack of memory): that is reported as an answer that does not parse.
        """
        try:
            kind, data, _, answers = self._ldap.result3(message, int(everything), self.timeout,
                                                        resp_ctrl_classes=_ANSWERS)
        except MemoryError as exc:
            raise MalformedAnswer("libldap could not parse the answer's controls") from exc
        return kind, data, answers

    def modify(self, dn: str, changes: dict[str, list[tuple[str, list[Any]]]],
               controls: Sequence[Control] | None = None) -> bool:
        """One modify request (applied atomically by the server); a post-read answer into ``result``."""
        modlist = [(_OPERATIONS[operation], name, [_value(v) for v in values] or None)
                   for name, operations in changes.items() for operation, values in operations]
        message = self._ldap.modify_ext(dn, modlist, serverctrls=[_Raw(c) for c in controls or []] or None)
        _, _, answers = self._result(message, everything=True)
        self.result = {"result": 0, "controls": {
            a.controlType: {"value": {"result": parse_entry(a.encoded)}} for a in answers if a.controlType == POST_READ}}
        return True

    def modify_password(self, dn: str, password: str) -> None:
        """RFC 3062 password modify: the server hashes the new password by its own policy."""
        self._ldap.passwd_s(dn, None, password)

    def unbind(self) -> None:
        self.closed = True
        self._ldap.unbind_ext_s()

