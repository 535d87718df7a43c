"""Both LDAP libraries' exceptions become the same Tourniquet error, naming the operation, saying what to fix.

The same LDAP result reaches the connector as ldap3's ``LDAPInvalidCredentialsResult`` or python-ldap's
``INVALID_CREDENTIALS``: each pair below must give the same error class and the same words. And every exception
ldap3 defines — results, socket and decoding errors — leaves :func:`ldap_errors` as a Tourniquet error.
"""

from __future__ import annotations

import inspect
import socket

import ldap
import pytest
from ldap3.core import exceptions as ldap3_exceptions

from tourniquet.connectors.directory.errors import ldap_errors
from tourniquet.errors import AccountNotFound, ConnectorError, PermanentError, TransientError

WHAT = "modifying uid=jdupont,ou=people,dc=sante,dc=example"


def _ldap3(name: str, code: int) -> Exception:
    exception: Exception = getattr(ldap3_exceptions, name)(result=code, description="", message="detail")
    return exception


PAIRS = [
    (_ldap3("LDAPInvalidCredentialsResult", 49), ldap.INVALID_CREDENTIALS({"desc": "Invalid credentials"}),
     PermanentError, "the bind identity or its password is wrong"),
    (_ldap3("LDAPInsufficientAccessRightsResult", 50), ldap.INSUFFICIENT_ACCESS({"desc": "Insufficient access"}),
     PermanentError, "lacks the rights"),
    (_ldap3("LDAPConfidentialityRequiredResult", 13), ldap.CONFIDENTIALITY_REQUIRED({"desc": "Confidentiality"}),
     PermanentError, "requires an encrypted connection"),
    (_ldap3("LDAPStrongerAuthRequiredResult", 8), ldap.STRONG_AUTH_REQUIRED({"desc": "Strong(er) auth"}),
     PermanentError, "requires an encrypted connection"),
    (_ldap3("LDAPBusyResult", 51), ldap.BUSY({"desc": "Server is busy"}), TransientError, "too slow or busy"),
    (_ldap3("LDAPUnavailableResult", 52), ldap.UNAVAILABLE({"desc": "Server is unavailable"}), TransientError,
     "too slow or busy"),
    (_ldap3("LDAPTimeLimitExceededResult", 3), ldap.TIMELIMIT_EXCEEDED({"desc": "Time limit"}), TransientError,
     "too slow or busy"),
    (ldap3_exceptions.LDAPSocketOpenError("connection refused"), ldap.SERVER_DOWN({"desc": "Can't contact"}),
     TransientError, "unreachable"),
    (ldap3_exceptions.LDAPResponseTimeoutError("no answer"), ldap.TIMEOUT({"desc": "Timed out"}), TransientError,
     "unreachable"),
    (_ldap3("LDAPNoSuchObjectResult", 32), ldap.NO_SUCH_OBJECT({"desc": "No such object"}), AccountNotFound,
     "no such entry"),
    (_ldap3("LDAPObjectClassViolationResult", 65), ldap.OBJECT_CLASS_VIOLATION({"desc": "Object class violation"}),
     PermanentError, "LDAP result 65"),
]


@pytest.mark.parametrize(("from_ldap3", "from_libldap", "expected", "words"), PAIRS,
                         ids=[type(p[0]).__name__ for p in PAIRS])
def test_both_libraries_exceptions_give_the_same_error(from_ldap3: Exception, from_libldap: Exception,
                                                         expected: type[Exception], words: str) -> None:
    for exception in (from_ldap3, from_libldap):
        with pytest.raises(expected, match=f"^directory: {WHAT}: .*{words}") as raised:
            with ldap_errors(WHAT):
                raise exception
        assert raised.value.__cause__ is exception


def _every_ldap3_exception() -> list[type[BaseException]]:
    return [c for _, c in inspect.getmembers(ldap3_exceptions, inspect.isclass)
            if issubclass(c, ldap3_exceptions.LDAPException)]


@pytest.mark.parametrize("exception_class", _every_ldap3_exception(), ids=lambda c: c.__name__)
def test_every_ldap3_exception_becomes_a_tourniquet_error_naming_the_operation(
        exception_class: type[BaseException]) -> None:
    try:
        exception = exception_class(result=80, description="other", message="m")
    except TypeError:
        exception = exception_class("what ldap3 said")
    with pytest.raises(ConnectorError, match=f"{WHAT}: "):
        with ldap_errors(WHAT):
            raise exception


def test_a_socket_error_ldap3_did_not_wrap_is_transient() -> None:
    with pytest.raises(TransientError, match="unreachable"), ldap_errors(WHAT):
        raise socket.timeout("timed out")
