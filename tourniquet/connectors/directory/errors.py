"""Both LDAP libraries' exceptions, translated at the boundary into Tourniquet errors that say what to fix.

ldap3 and python-ldap name the same LDAP result differently (``LDAPInvalidCredentialsResult``,
``INVALID_CREDENTIALS``) but carry the same RFC 4511 result code, so the translation goes by the code:
one table, the same sentence whichever transport met it. What is not a result — a socket that
closed, a timeout, a TLS handshake — is each library's own class, sorted here too. python-ldap is
never imported by this module: an exception of its kind can only exist once it has been.

May import: ldap3's exception classes, ``directory.controls``, ``tourniquet.errors``. Imported by:
``directory.connections``, the transports, ``directory.flavors`` (``SYSTEM``).
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from ldap3.core import exceptions as ldap3_exceptions

from tourniquet.connectors.directory.controls import MalformedControl
from tourniquet.errors import AccountNotFound, PermanentError, TourniquetError, TransientError

__all__ = ["ldap_errors", "translate", "describe", "TlsFailed", "NoSuchObject", "MalformedAnswer", "SYSTEM"]

SYSTEM = "directory"

#: RFC 4511 result codes (and libldap's negative client codes) worth another try on a fresh connection:
#: server down (-1), timeout (-5), connect error (-11), timeLimitExceeded, adminLimitExceeded, busy, unavailable.
_TRANSIENT_CODES = frozenset({-1, -5, -11, 3, 11, 51, 52})
_INVALID_CREDENTIALS, _INSUFFICIENT_ACCESS, _NO_SUCH_OBJECT = 49, 50, 32
_NEEDS_ENCRYPTION = frozenset({8, 13})  # strongerAuthRequired, confidentialityRequired
#: ldap3's errors that are not a result: the network failed, or the server took longer than the timeout.
_LDAP3_TRANSIENT = (ldap3_exceptions.LDAPCommunicationError, ldap3_exceptions.LDAPResponseTimeoutError,
                    ldap3_exceptions.LDAPMaximumRetriesError)


class TlsFailed(Exception):
    """The TCP port answered but the TLS handshake failed (raised by a transport, translated here)."""


class NoSuchObject(Exception):
    """The base of a search or the target of a modify does not exist (result 32, said alike by both transports)."""


class MalformedAnswer(Exception):
    """The library could not decode what the server sent (raised by a transport, translated here)."""


def describe(exc: BaseException) -> str:
    """Either library's error as one line: python-ldap's ``{'desc': …, 'info': …}``, ldap3's description and message."""
    if isinstance(exc, ldap3_exceptions.LDAPOperationResult):
        return "; ".join(str(p) for p in (exc.description, exc.message) if p) or type(exc).__name__
    detail = exc.args[0] if exc.args else None
    if isinstance(detail, dict):
        return "; ".join(str(detail[k]) for k in ("desc", "info") if detail.get(k)) or type(exc).__name__
    return str(exc) or type(exc).__name__


def _result_code(exc: BaseException) -> int | None:
    """The LDAP result code an exception stands for, if it is one of either library's."""
    if isinstance(exc, ldap3_exceptions.LDAPOperationResult):
        return exc.result if isinstance(exc.result, int) else None
    python_ldap = sys.modules.get("ldap")
    if python_ldap is not None and isinstance(exc, python_ldap.LDAPError):
        code = getattr(type(exc), "errnum", None)
        return code if isinstance(code, int) else None
    return None


def _is_library_error(exc: BaseException) -> bool:
    python_ldap = sys.modules.get("ldap")
    return isinstance(exc, ldap3_exceptions.LDAPException) or (
        python_ldap is not None and isinstance(exc, python_ldap.LDAPError))


def translate(what: str, exc: BaseException) -> TourniquetError | None:
    """The Tourniquet error for a library exception met while doing ``what``; None for one that is not a library's."""
    code = _result_code(exc)
    if code == _INVALID_CREDENTIALS:
        return PermanentError(f"{what}: the bind identity or its password is wrong (invalidCredentials)", system=SYSTEM)
    if code == _INSUFFICIENT_ACCESS:
        return PermanentError(f"{what}: the service identity lacks the rights (insufficientAccessRights: "
                              f"{describe(exc)})", system=SYSTEM)
    if code in _NEEDS_ENCRYPTION:
        return PermanentError(f"{what}: the server requires an encrypted connection ({describe(exc)})", system=SYSTEM)
    if isinstance(exc, (TlsFailed, ssl.SSLError)):
        return PermanentError(f"{what}: TLS failed: the server certificate is not trusted by the CA file, does not "
                              f"name this host, or TLS is misconfigured ({str(exc)[:300]})", system=SYSTEM)
    if code in _TRANSIENT_CODES or isinstance(exc, _LDAP3_TRANSIENT):
        return TransientError(f"{what}: directory unreachable, too slow or busy ({describe(exc)})", system=SYSTEM)
    if code == _NO_SUCH_OBJECT or isinstance(exc, NoSuchObject):
        return AccountNotFound(f"{what}: no such entry", system=SYSTEM)
    if isinstance(exc, UnicodeDecodeError):  # a DN or attribute name that is not UTF-8 (LDAP says it must be)
        return PermanentError(f"{what}: the directory sent a name that is not UTF-8 ({exc.reason} at byte "
                              f"{exc.start})", system=SYSTEM)
    if isinstance(exc, (MalformedControl, MalformedAnswer)):  # a control value or message that does not parse
        return PermanentError(f"{what}: the directory sent an answer that does not parse ({exc})", system=SYSTEM)
    if code is not None and code > 0:  # a result the server sent: said alike whichever library carried it
        return PermanentError(f"{what}: {describe(exc)} (LDAP result {code})", system=SYSTEM)
    if _is_library_error(exc):
        return PermanentError(f"{what}: {type(exc).__name__}: {describe(exc)}", system=SYSTEM)
    if isinstance(exc, OSError):  # a socket error the library did not wrap
        return TransientError(f"{what}: directory unreachable ({exc})", system=SYSTEM)
    return None


@contextmanager
def ldap_errors(what: str) -> Iterator[None]:
    """Re-raise either library's errors as Tourniquet errors, saying what was being done and what to fix."""
    try:
        yield
    except Exception as exc:
        translated = translate(what, exc)
        if translated is None:
            raise
        raise translated from exc
