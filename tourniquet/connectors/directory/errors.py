"""ldap3's exceptions, translated at the boundary into Tourniquet errors that say what to fix."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager

from ldap3.core import exceptions as ldap_exc

from tourniquet.errors import AccountNotFound, PermanentError, TransientError

__all__ = ["ldap_errors", "SYSTEM"]

SYSTEM = "directory"
_TLS_WORDS = ("certificate", "ssl", "tls", "handshake", "wrong version number")


@contextmanager
def ldap_errors(what: str) -> Iterator[None]:
    """Re-raise ldap3 errors as Tourniquet errors, saying what to fix."""
    try:
        yield
    except ldap_exc.LDAPInvalidCredentialsResult as exc:
        raise PermanentError(f"{what}: the bind identity or its password is wrong (invalidCredentials)",
                             system=SYSTEM) from exc
    except ldap_exc.LDAPInsufficientAccessRightsResult as exc:
        raise PermanentError(f"{what}: the service identity lacks the rights (insufficientAccessRights: "
                             f"{getattr(exc, 'message', '') or exc})", system=SYSTEM) from exc
    except ldap_exc.LDAPStrongerAuthRequiredResult as exc:
        raise PermanentError(f"{what}: the server requires an encrypted connection ({exc})", system=SYSTEM) from exc
    except (ldap_exc.LDAPSocketOpenError, ldap_exc.LDAPStartTLSError, ldap_exc.LDAPSSLConfigurationError,
            ldap_exc.LDAPCertificateError, ssl.SSLError) as exc:
        text = str(exc)
        if isinstance(exc, ldap_exc.LDAPSocketOpenError) and not any(w in text.lower() for w in _TLS_WORDS):
            raise TransientError(f"{what}: directory unreachable ({text})", system=SYSTEM) from exc
        raise PermanentError(f"{what}: TLS failed: the server certificate is not trusted by the CA file, does not "
                             f"name this host, or TLS is misconfigured ({text[:300]})", system=SYSTEM) from exc
    except (ldap_exc.LDAPSocketReceiveError, ldap_exc.LDAPSocketSendError,
            ldap_exc.LDAPSessionTerminatedByServerError, ldap_exc.LDAPResponseTimeoutError,
            ldap_exc.LDAPBusyResult, ldap_exc.LDAPUnavailableResult, ldap_exc.LDAPTimeLimitExceededResult,
            ldap_exc.LDAPServerPoolExhaustedError) as exc:
        raise TransientError(f"{what}: directory unreachable, too slow or busy ({exc})", system=SYSTEM) from exc
    except ldap_exc.LDAPNoSuchObjectResult as exc:
        raise AccountNotFound(f"{what}: no such entry", system=SYSTEM) from exc
    except ldap_exc.LDAPException as exc:
        raise PermanentError(f"{what}: {exc}", system=SYSTEM) from exc
    except OSError as exc:  # a socket error ldap3 did not wrap
        raise TransientError(f"{what}: directory unreachable ({exc})", system=SYSTEM) from exc
