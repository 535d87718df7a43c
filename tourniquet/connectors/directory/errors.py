"""python-ldap's exceptions, translated at the boundary into Tourniquet errors that say what to fix."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager

import ldap

from tourniquet.connectors.directory.controls import MalformedControl
from tourniquet.errors import AccountNotFound, PermanentError, TransientError

__all__ = ["ldap_errors", "describe", "TlsFailed", "SYSTEM"]

SYSTEM = "directory"

#: The server is down, slow or busy: worth another try on a fresh connection.
_TRANSIENT = (ldap.SERVER_DOWN, ldap.CONNECT_ERROR, ldap.TIMEOUT, ldap.BUSY, ldap.UNAVAILABLE,
              ldap.TIMELIMIT_EXCEEDED, ldap.ADMINLIMIT_EXCEEDED)


class TlsFailed(Exception):
    """The TCP port answered but the TLS handshake failed (raised by the connection, translated here)."""


def describe(exc: BaseException) -> str:
    """python-ldap's error (``{'desc': …, 'info': …}``) as one line."""
    detail = exc.args[0] if exc.args else {}
    if isinstance(detail, dict):
        return "; ".join(str(detail[k]) for k in ("desc", "info") if detail.get(k)) or type(exc).__name__
    return str(exc) or type(exc).__name__


@contextmanager
def ldap_errors(what: str) -> Iterator[None]:
    """Re-raise python-ldap's errors as Tourniquet errors, saying what to fix."""
    try:
        yield
    except ldap.INVALID_CREDENTIALS as exc:
        raise PermanentError(f"{what}: the bind identity or its password is wrong (invalidCredentials)",
                             system=SYSTEM) from exc
    except ldap.INSUFFICIENT_ACCESS as exc:
        raise PermanentError(f"{what}: the service identity lacks the rights (insufficientAccessRights: "
                             f"{describe(exc)})", system=SYSTEM) from exc
    except (ldap.STRONG_AUTH_REQUIRED, ldap.CONFIDENTIALITY_REQUIRED) as exc:
        raise PermanentError(f"{what}: the server requires an encrypted connection ({describe(exc)})",
                             system=SYSTEM) from exc
    except (TlsFailed, ssl.SSLError) as exc:
        raise PermanentError(f"{what}: TLS failed: the server certificate is not trusted by the CA file, does not "
                             f"name this host, or TLS is misconfigured ({str(exc)[:300]})", system=SYSTEM) from exc
    except _TRANSIENT as exc:
        raise TransientError(f"{what}: directory unreachable, too slow or busy ({describe(exc)})",
                             system=SYSTEM) from exc
    except ldap.NO_SUCH_OBJECT as exc:
        raise AccountNotFound(f"{what}: no such entry", system=SYSTEM) from exc
    except ldap.LDAPError as exc:
        raise PermanentError(f"{what}: {type(exc).__name__}: {describe(exc)}", system=SYSTEM) from exc
    except UnicodeDecodeError as exc:  # a DN or attribute name that is not UTF-8 (LDAP says it must be)
        raise PermanentError(f"{what}: the directory sent a name that is not UTF-8 ({exc.reason} at byte "
                             f"{exc.start})", system=SYSTEM) from exc
    except MalformedControl as exc:  # a control value from the server that does not parse
        raise PermanentError(f"{what}: the directory sent an answer that does not parse ({exc})",
                             system=SYSTEM) from exc
    except OSError as exc:  # a socket error the library did not wrap
        raise TransientError(f"{what}: directory unreachable ({exc})", system=SYSTEM) from exc
